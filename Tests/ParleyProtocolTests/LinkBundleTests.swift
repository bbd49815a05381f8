import Foundation
import MLS
import Testing

@testable import ParleyProtocol

/// The history bundle opens only on the device it was sealed to, only for its link request, only
/// with the approving device's signature, and decodes strictly.
@Suite struct LinkBundleTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    struct Device {
        var signature: SignatureKeyPair
        var hpke: HPKEKeyPair
        var request: LinkRequest
        var code: LinkCode
    }

    let identity = AccountIdentity()

    func device(_ name: String) throws -> Device {
        let signature = suite.generateSignatureKeyPair()
        let hpke = try suite.generateHPKEKeyPair()
        let request = LinkRequest(
            username: "alice",
            deviceName: name,
            signatureKey: Data(signature.publicKey.bytes),
            hpkePublicKey: Data(hpke.publicKey.bytes),
            nonce: Data(suite.randomBytes(LinkRequest.nonceLength))
        )
        let code = try LinkCode(
            lookupID: "7KQ2",
            request: request,
            secret: LinkCode.randomSecret(suite.randomBytes(LinkCode.secretRandomBytes))
        )
        return Device(signature: signature, hpke: hpke, request: request, code: code)
    }

    func bundle(from sender: SignatureKeyPair, to device: Device) -> HistoryBundle {
        HistoryBundle(
            sender: sender.publicKey,
            senderDeviceName: "desktop",
            request: device.request,
            code: device.code,
            createdAt: 1_700_000_000_000,
            accountIdentitySeed: identity.seed,
            groups: [
                .init(
                    group: "team",
                    lines: [
                        .init(seq: 3, time: 1, sender: "bob", text: "hello"),
                        .init(seq: 4, time: 2, sender: "alice", text: "caf\u{E9} \u{1F600}"),
                    ]
                ),
                .init(group: "empty", lines: []),
            ]
        )
    }

    func open(_ sealed: [UInt8], as device: Device) throws(LinkError) -> HistoryBundle {
        try HistoryBundle.open(
            sealed,
            recipient: device.signature.publicKey,
            hpkeKey: device.hpke,
            linkNonce: [UInt8](device.request.nonce),
            code: device.code
        )
    }

    @Test func aBundleOpensOnItsDeviceAsSent() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let sent = bundle(from: desktop, to: laptop)
        let opened = try open(try sent.sealed(signingWith: desktop.privateKey), as: laptop)
        #expect(opened == sent)
        #expect(opened.senderSignatureKey == desktop.publicKey.bytes)
    }

    @Test func aBundleSealedToAnotherDeviceDoesNotOpen() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let phone = try device("phone")
        let sealed = try bundle(from: desktop, to: laptop).sealed(signingWith: desktop.privateKey)
        #expect(throws: LinkError.bundleNotForThisDevice) { try open(sealed, as: phone) }
        // The phone's HPKE key but the laptop's identity (a server replaying it elsewhere): the
        // HPKE info names the recipient, so it still does not open.
        var mixed = phone
        mixed.hpke = laptop.hpke
        #expect(throws: LinkError.bundleNotForThisDevice) { try open(sealed, as: mixed) }
    }

    /// A hostile server knows the new device's HPKE key, so it can seal anything to it; it cannot
    /// sign as the approving device.
    @Test func aBundleForgedInAnotherDevicesNameIsRefused() throws {
        let desktop = suite.generateSignatureKeyPair()
        let server = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let forged = try bundle(from: desktop, to: laptop).sealed(signingWith: server.privateKey)
        #expect(throws: LinkError.bundleSignatureInvalid) { try open(forged, as: laptop) }
    }

    @Test func aBundleForAnOlderRequestOfTheSameDeviceIsRefused() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        var earlier = laptop
        earlier.request.nonce = Data(suite.randomBytes(LinkRequest.nonceLength))
        let replayed = try bundle(from: desktop, to: earlier).sealed(signingWith: desktop.privateKey)
        #expect(throws: LinkError.bundleForAnotherRequest) { try open(replayed, as: laptop) }
    }

    @Test func everyTruncationAndEveryFlippedByteIsRefused() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let sealed = try bundle(from: desktop, to: laptop).sealed(signingWith: desktop.privateKey)
        for length in 0..<sealed.count {
            #expect(throws: LinkError.self) { try open(Array(sealed[..<length]), as: laptop) }
        }
        #expect(throws: LinkError.malformedBundle) { try open(sealed + [0], as: laptop) }
        for index in stride(from: 0, to: sealed.count, by: 7) {
            var flipped = sealed
            flipped[index] ^= 0x01
            #expect(throws: LinkError.self) { try open(flipped, as: laptop) }
        }
    }

    @Test func theContentDecodesStrictly() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let good = try bundle(from: desktop, to: laptop).encoded()
        var reader = TLSReader(good)
        #expect(try HistoryBundle(from: &reader) == bundle(from: desktop, to: laptop))
        #expect(reader.isAtEnd)

        var wrongVersion = good
        wrongVersion[1] = 2
        var versionReader = TLSReader(wrongVersion)
        #expect(throws: LinkError.malformedBundle) { try HistoryBundle(from: &versionReader) }

        var twice = bundle(from: desktop, to: laptop)
        twice.groups.append(twice.groups[0])
        var twiceReader = TLSReader(try twice.encoded())
        #expect(throws: LinkError.malformedBundle) { try HistoryBundle(from: &twiceReader) }

        var long = bundle(from: desktop, to: laptop)
        long.groups[0].lines = Array(
            repeating: .init(seq: 1, time: 1, sender: "bob", text: ""),
            count: HistoryBundle.maxLinesPerGroup + 1
        )
        var longReader = TLSReader(try long.encoded())
        #expect(throws: LinkError.bundleTooLarge) { try HistoryBundle(from: &longReader) }

        var badUTF8 = bundle(from: desktop, to: laptop)
        badUTF8.groups[0].lines[0].text = "x"
        var bytes = try badUTF8.encoded()
        let index = try #require(bytes.lastIndex(of: UInt8(ascii: "x")))
        bytes[index] = 0xFF
        var utf8Reader = TLSReader(bytes)
        #expect(throws: LinkError.malformedBundle) { try HistoryBundle(from: &utf8Reader) }
    }

    @Test func theAccountIdentitySeedTravelsSealedAndMustBe32Bytes() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        var sent = bundle(from: desktop, to: laptop)
        let opened = try open(try sent.sealed(signingWith: desktop.privateKey), as: laptop)
        #expect(opened.accountIdentitySeed == identity.seed)
        #expect(try AccountIdentity(seed: opened.accountIdentitySeed).publicKey == identity.publicKey)

        // Short, or missing (a bundle without a seed): refused.
        for seed in [Array(identity.seed.dropLast()), []] {
            sent.accountIdentitySeed = seed
            var reader = TLSReader(try sent.encoded())
            #expect(throws: LinkError.malformedBundle) { try HistoryBundle(from: &reader) }
        }
    }

    /// Anyone who knows the new device's HPKE key (the server does) can seal and sign a bundle of
    /// its own; without the code's secret, which only the device the user typed the code into
    /// knows, it is refused before anything in it is used, however close the guess.
    @Test func aBundleWithoutTheCodesSecretIsRefused() throws {
        let server = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        var guessed = laptop
        guessed.code.secret = LinkCode.randomSecret(suite.randomBytes(LinkCode.secretRandomBytes))
        var offByOne = Array(laptop.code.secret.utf8)
        offByOne[7] = offByOne[7] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        var close = laptop
        close.code.secret = String(decoding: offByOne, as: UTF8.self)
        for attempt in [guessed, close] where attempt.code.secret != laptop.code.secret {
            let forged = try bundle(from: server, to: attempt).sealed(signingWith: server.privateKey)
            #expect(throws: LinkError.linkSecretMismatch) { try open(forged, as: laptop) }
        }
        var empty = bundle(from: server, to: laptop)
        empty.linkSecret = []
        #expect(throws: LinkError.linkSecretMismatch) {
            try open(try empty.sealed(signingWith: server.privateKey), as: laptop)
        }
        #expect(
            try open(try bundle(from: server, to: laptop).sealed(signingWith: server.privateKey), as: laptop).linkSecret
                == Array(laptop.code.secret.utf8)
        )
    }

    /// Contact pins travel sealed, one signed list per contact, decoded strictly.
    @Test func contactPinsTravelSealedOnePerContact() throws {
        let desktop = suite.generateSignatureKeyPair()
        let laptop = try device("laptop")
        let bob = AccountIdentity()
        let bobsList = try bob.sign(
            try DeviceList.first(
                user: "bob",
                identityKey: bob.publicKey,
                device: DeviceEntry(
                    signatureKey: suite.generateSignatureKeyPair().publicKey.bytes,
                    name: "b",
                    addedAt: 1
                )
            )
        )
        var sent = bundle(from: desktop, to: laptop)
        sent.contacts = [bobsList]
        let opened = try open(try sent.sealed(signingWith: desktop.privateKey), as: laptop)
        #expect(opened.contacts == [bobsList])
        sent.contacts = [bobsList, bobsList]
        var twice = TLSReader(try sent.encoded())
        #expect(throws: LinkError.malformedBundle) { try HistoryBundle(from: &twice) }
    }

    @Test func anOversizedSealedBundleIsRefusedBeforeAnyWork() throws {
        let laptop = try device("laptop")
        #expect(throws: LinkError.bundleTooLarge) {
            try open([UInt8](repeating: 0, count: HistoryBundle.maxSealedBytes + 1), as: laptop)
        }
    }
}
