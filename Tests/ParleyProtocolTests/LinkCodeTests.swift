import Foundation
import MLS
import Testing

@testable import ParleyProtocol

/// The link code binds the new device's keys: any field the server changes changes the check digits.
@Suite struct LinkCodeTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func request(name: String = "laptop") throws -> LinkRequest {
        LinkRequest(
            username: "alice",
            deviceName: name,
            signatureKey: Data(suite.generateSignatureKeyPair().publicKey.bytes),
            hpkePublicKey: Data(try suite.generateHPKEKeyPair().publicKey.bytes),
            nonce: Data(suite.randomBytes(LinkRequest.nonceLength))
        )
    }

    func secret() -> String { LinkCode.randomSecret(suite.randomBytes(LinkCode.secretRandomBytes)) }

    /// 20 bits of lookup id, 80 check bits and 40 bits of secret: seven groups of four.
    @Test func aCodeIsTwentyEightCharactersInGroupsOfFourAndParsesBackAsTyped() throws {
        let request = try request()
        let code = try LinkCode(
            lookupID: LinkCode.randomLookupID(suite.randomBytes(3)),
            request: request,
            secret: secret()
        )
        let shown = code.description
        #expect(shown.count == 34)
        #expect(shown.split(separator: "-").map(\.count) == [4, 4, 4, 4, 4, 4, 4])
        #expect(code.check.count * 5 == 80 && code.secret.count * 5 == 40)
        #expect(code.secretMatches(Array(code.secret.utf8)))
        #expect(!code.secretMatches(Array(code.secret.utf8.dropLast())))
        #expect(try LinkCode(parsing: shown) == code)
        // Typed in lower case, without dashes, with O for 0 and l for 1 (Crockford): the same code.
        let sloppy = shown.lowercased().replacingOccurrences(of: "-", with: " ")
            .replacingOccurrences(of: "0", with: "o").replacingOccurrences(of: "1", with: "l")
        #expect(try LinkCode(parsing: sloppy) == code)
        #expect(try LinkCode(parsing: shown).matches(request))
    }

    @Test func malformedCodesAreRefusedWithTheirOwnError() {
        let valid = "7KQ2-MX4P-93TD-R8VW-2C5N-KJ7A-Q3XE"
        #expect(throws: Never.self) { try LinkCode(parsing: valid) }
        for text in [
            "", "7KQ2-MX4P-93TD-R8VW", valid + "-1", String(valid.dropLast()) + "U", String(valid.dropLast()) + "!",
        ] {
            #expect(throws: LinkError.malformedCode) { try LinkCode(parsing: text) }
        }
    }

    /// A hostile server that swaps any one field of the request — the signature key, the HPKE key,
    /// the nonce, the name shown, the account — fails the check the approving device makes.
    @Test func everySwappedFieldFailsTheCheck() throws {
        let genuine = try request()
        let code = try LinkCode(lookupID: "7KQ2", request: genuine, secret: secret())
        let other = try request()
        var swaps: [LinkRequest] = []
        for keyPath in [\LinkRequest.signatureKey, \.hpkePublicKey, \.nonce] {
            var swapped = genuine
            swapped[keyPath: keyPath] = other[keyPath: keyPath]
            swaps.append(swapped)
        }
        var renamed = genuine
        renamed.deviceName = "laptop2"
        var moved = genuine
        moved.username = "mallory"
        for swapped in swaps + [renamed, moved] {
            #expect(try !code.matches(swapped))
        }
        #expect(try code.matches(genuine))
    }

    @Test func requestsOfTheWrongShapeAreRefused() throws {
        let good = try request()
        var badKey = good
        badKey.signatureKey = Data(repeating: 1, count: 31)
        var badHPKE = good
        badHPKE.hpkePublicKey = Data()
        var badNonce = good
        badNonce.nonce = Data(repeating: 0, count: 8)
        var badName = good
        badName.deviceName = "evil\u{1B}[2J"
        #expect(throws: LinkError.malformedRequest(.signatureKey)) { try badKey.validate() }
        #expect(throws: LinkError.malformedRequest(.hpkeKey)) { try badHPKE.validate() }
        #expect(throws: LinkError.malformedRequest(.nonce)) { try badNonce.validate() }
        #expect(throws: LinkError.malformedRequest(.deviceName)) { try badName.validate() }
        #expect(!LinkRequest.isValidDeviceName(""))
        #expect(!LinkRequest.isValidDeviceName(String(repeating: "a", count: 65)))
        #expect(LinkRequest.isValidDeviceName("Alice's laptop"))
        try good.validate()
    }

    @Test func lookupIDsAreFourCodeCharacters() {
        for _ in 0..<100 {
            #expect(LinkCode.isLookupID(LinkCode.randomLookupID(suite.randomBytes(3))))
        }
        #expect(!LinkCode.isLookupID("7KQ"))
        #expect(!LinkCode.isLookupID("7KQU"))
        #expect(!LinkCode.isLookupID("../x"))
    }
}
