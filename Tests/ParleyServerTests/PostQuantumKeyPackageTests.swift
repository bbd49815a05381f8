import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// The KeyPackage directory keeps a pool per cipher suite (RFC 9420 §10): a claim for a
/// post-quantum group gets post-quantum KeyPackages only, and a device without any is not
/// offered with a KeyPackage of the other suite.
@Suite struct PostQuantumKeyPackageTests {
    let postQuantum = try! ParleySuites.postQuantum.provider()

    func pqUpload(_ user: TestUser, count: Int, lastResort: Bool = true) async throws -> API.KeyPackageStock {
        let make = { (last: Bool) in
            try KeyPackageBundle(
                self.postQuantum,
                credential: user.credential,
                signatureKeys: user.signatureKeys,
                lifetime: Lifetime(notBefore: 0, notAfter: .max),
                lastResort: last
            )
        }
        let packages = try (0..<count).map { _ in Data(try MLSMessage.keyPackage(make(false).keyPackage).tlsEncoded()) }
        let last = lastResort ? Data(try MLSMessage.keyPackage(make(true).keyPackage).tlsEncoded()) : nil
        return try await user.server.request(
            .POST,
            "/v1/keypackages",
            token: user.token,
            json: API.UploadKeyPackages(keyPackages: packages, lastResort: last),
            as: API.KeyPackageStock.self
        )
    }

    func claim(_ username: String, suite: CipherSuite, by user: TestUser) async throws -> [KeyPackage] {
        let claimed = try await user.server.request(
            .POST,
            "/v1/users/\(username)/keypackages/claim",
            token: user.token,
            json: API.ClaimKeyPackages(skip: [], suite: suite.rawValue),
            as: API.ClaimedKeyPackages.self
        )
        return try claimed.keyPackages.map { entry in
            guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](entry.keyPackage)) else {
                throw ErrorBody(.invalidKeyPackage)
            }
            return package
        }
    }

    func stock(_ user: TestUser, suite: CipherSuite) async throws -> Int {
        let body = try await user.server.request(.GET, "/v1/keypackages?suite=\(suite.rawValue)", token: user.token)
        return try WireJSON.decode(API.KeyPackageStock.self, from: body).available
    }

    @Test func eachSuiteHasItsOwnPoolAndAClaimGetsOnlyTheSuiteAskedFor() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server, keyPackages: 3)
            // Bob has no post-quantum KeyPackage yet: his classical ones are not handed out instead.
            await #expect(throws: ErrorBody(.noKeyPackages)) {
                _ = try await claim("bob", suite: ParleySuites.postQuantum, by: alice)
            }
            #expect(try await stock(bob, suite: ParleySuites.standard) == 3)
            _ = try await pqUpload(bob, count: 2)
            #expect(try await stock(bob, suite: ParleySuites.postQuantum) == 2)
            #expect(try await stock(bob, suite: ParleySuites.standard) == 3)

            // Two one-time, then the last resort of that suite, again and again; never a classical one.
            var lastResorts = 0
            for _ in 0..<4 {
                let packages = try await claim("bob", suite: ParleySuites.postQuantum, by: alice)
                #expect(packages.count == 1 && packages[0].cipherSuite == ParleySuites.postQuantum)
                if packages[0].isLastResort { lastResorts += 1 }
            }
            #expect(lastResorts == 2)
            #expect(try await stock(bob, suite: ParleySuites.postQuantum) == 0)
            // The post-quantum last resort did not replace the classical one, nor the claims spend classical ones.
            #expect(try await stock(bob, suite: ParleySuites.standard) == 3)
            let classical = try await claim("bob", suite: ParleySuites.standard, by: alice)
            #expect(classical.count == 1 && classical[0].cipherSuite == ParleySuites.standard)
            #expect(try await stock(bob, suite: ParleySuites.standard) == 2)
        }
    }

    @Test func aKeyPackageOfASuiteParleyDoesNotUseIsRefused() async throws {
        try await TestServer.with { server in
            let bob = try await TestUser.ready("bob", on: server, keyPackages: 1)
            let other = try CipherSuite.mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519.provider()
            let bundle = try KeyPackageBundle(
                other,
                credential: bob.credential,
                signatureKeys: bob.signatureKeys,
                lifetime: Lifetime(notBefore: 0, notAfter: .max)
            )
            let refused = await #expect(throws: ErrorBody.self) {
                _ = try await server.request(
                    .POST,
                    "/v1/keypackages",
                    token: bob.token,
                    json: API.UploadKeyPackages(keyPackages: [
                        Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded())
                    ]),
                    as: API.KeyPackageStock.self
                )
            }
            #expect(refused?.code == .invalidKeyPackage)
            let unknown = await #expect(throws: ErrorBody.self) {
                _ = try await claim("bob", suite: other.suite, by: bob)
            }
            #expect(unknown?.code == .malformedRequest)
        }
    }
}
