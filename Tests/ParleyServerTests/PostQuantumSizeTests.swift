import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// What the server's `max_frame_bytes` allows a post-quantum group (docs/PROTOCOL.md, "Limits"):
/// X-Wing keys are 1,216 bytes and encapsulations 1,120, against 32 each in suite 1, so a
/// KeyPackage, an Add and a Welcome grow about tenfold. Sizes are measured on real MLS
/// messages as Parley's clients send them (the tree inside the Welcome); no timing here.
@Suite struct PostQuantumSizeTests {
    let suite = try! ParleySuites.postQuantum.provider()
    let limit = ServerConfiguration().maxFrameBytes

    func bundle(_ index: Int) throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array("user\(index)".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
    }

    /// A one-member group adds `count` devices in one commit: the commit's and the Welcome's bytes.
    func addAll(_ count: Int) throws -> (commit: Int, welcome: Int, keyPackage: Int) {
        var group = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: .basic(identity: Array("creator".utf8)),
            signatureKeys: suite.generateSignatureKeyPair()
        )
        let packages = try (0..<count).map { try bundle($0).keyPackage }
        let output = try group.addMembers(packages)
        let welcome = try #require(output.welcome)
        return (
            try output.message.tlsEncoded().count, try welcome.tlsEncoded().count,
            try MLSMessage.keyPackage(packages[0]).tlsEncoded().count
        )
    }

    @Test func theFrameLimitAllowsAHundredDevicesPerPostQuantumCommitAndWelcome() throws {
        let small = try addAll(8)
        let large = try addAll(72)
        // Bytes each added device costs, from two sizes (the fixed part cancels out).
        let perDeviceInCommit = (large.commit - small.commit) / 64
        let perDeviceInWelcome = (large.welcome - small.welcome) / 64
        print(
            "PQ sizes: KeyPackage \(small.keyPackage) B; per added device: commit \(perDeviceInCommit) B,"
                + " Welcome \(perDeviceInWelcome) B; adding 72: commit \(large.commit) B, Welcome \(large.welcome) B"
        )
        #expect(small.keyPackage > 2_000 && small.keyPackage < 3_000)
        // A commit carries each KeyPackage whole; the Welcome a secret and a leaf per device.
        #expect(perDeviceInCommit >= small.keyPackage - 100 && perDeviceInCommit < small.keyPackage + 200)
        #expect(limit / perDeviceInCommit >= 350)
        #expect(limit / perDeviceInWelcome >= 350)
        // The documented bound, built for real: 100 devices in one commit, both under the limit.
        let hundred = try addAll(100)
        #expect(hundred.commit < limit && hundred.welcome < limit)
    }
}
