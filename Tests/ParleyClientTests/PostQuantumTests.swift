import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// `parley create --post-quantum` end to end on a real server: two users, three devices (alice
/// links a laptop), every device in the group by a KeyPackage of the post-quantum suite; and a
/// server that hands out a classical KeyPackage for a post-quantum group, refused.
@Suite(.serialized) struct PostQuantumTests {
    static func texts(_ history: [HistoryEntry]) -> [String] { history.filter { $0.kind == .text }.map(\.text) }

    /// Links a new home as a device of `approver`'s account, as `parley link` and `devices approve` do.
    static func linkDevice(
        _ home: ParleyClient,
        approvedBy approver: ParleyClient,
        user: String,
        url: String
    ) async throws -> LinkApproval {
        let code = try await home.startLink(
            server: url,
            username: user,
            password: "password of \(user)",
            deviceName: "laptop"
        )
        async let finished: Void = {
            for _ in 0..<300 {
                if try await home.finishLink(password: "password of \(user)") != nil { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw LinkError.noLinkInProgress
        }()
        let approval = try await approver.approveLink(code: code.description, deviceName: "phone")
        try await finished
        return approval
    }

    @Test func aPostQuantumGroupTalksAcrossTwoUsersAndThreeDevices() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        try await alice.createGroup("quantum", postQuantum: true)
        try await alice.add(["bob"], to: "quantum")
        try await bob.sync()
        let laptop = try harness.client("alice-laptop")
        let approval = try await Self.linkDevice(laptop, approvedBy: alice, user: "alice", url: harness.url)
        #expect(approval.addedTo == ["quantum"])
        try await laptop.sync()

        // Every device holds the group in the post-quantum suite, and says so.
        for client in [alice, bob, laptop] {
            let group = try await client.group("quantum")
            #expect(group.suite.suite == ParleySuites.postQuantum)
            let summary = try #require(await client.groupSummaries().first { $0.name == "quantum" })
            #expect(summary.postQuantum && summary.security == "post-quantum")
            #expect(summary.members == ["alice", "bob"])
        }
        #expect(try await alice.group("quantum").members.count == 3)

        _ = try await alice.send("hello from the phone", to: "quantum")
        _ = try await bob.send("hello from bob", to: "quantum")
        _ = try await laptop.send("hello from the laptop", to: "quantum")
        for client in [alice, bob, laptop] { try await client.sync() }
        let expected = ["hello from the phone", "hello from bob", "hello from the laptop"]
        for client in [alice, bob, laptop] {
            #expect(Self.texts(try await client.history("quantum")).suffix(3) == ArraySlice(expected))
        }
        // A classical group beside it is unchanged.
        try await alice.createGroup("classic")
        #expect(try await alice.group("classic").suite.suite == ParleySuites.standard)
        #expect(await alice.groupSummaries().first { $0.name == "classic" }?.postQuantum == false)
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// A hostile server answers alice's claim of carol's post-quantum KeyPackage with one of
    /// carol's real classical ones (claimed first, so it verifies as hers): alice refuses it,
    /// with a typed error, and the group does not move.
    @Test func aClassicalKeyPackageHandedOutForAPostQuantumGroupIsRefused() async throws {
        let homes = try await HostileHomes()
        let alice = try await homes.registered("alice")
        let carol = try await homes.registered("carol")
        try await alice.createGroup("quantum", postQuantum: true)
        let engine = try await alice.requireEngine()
        let classical = try await engine.transport.claimKeyPackages(
            of: "carol",
            skipping: [],
            suite: ParleySuites.standard
        )
        let forged = try WireJSON.encode(
            API.ClaimedKeyPackages(
                username: "carol",
                keyPackages: classical.map { API.ClaimedKeyPackages.Entry(deviceID: 1, keyPackage: $0) }
            )
        )
        homes.proxy.setHTTPRewrite { method, path, _, body in
            method == "POST" && path.hasSuffix("/users/carol/keypackages/claim") ? forged : body
        }
        let epoch = try await alice.group("quantum").epoch
        await #expect(throws: ClientError.wrongSuiteKeyPackage(user: "carol")) {
            try await alice.add(["carol"], to: "quantum")
        }
        #expect(try await alice.group("quantum").epoch == epoch)
        #expect(try await alice.members("quantum") == ["alice"])
        // The real directory, asked again, hands out a post-quantum one, and the add works.
        homes.proxy.setHTTPRewrite(nil)
        try await alice.add(["carol"], to: "quantum")
        try await carol.sync()
        #expect(try await carol.group("quantum").suite.suite == ParleySuites.postQuantum)
        for client in [alice, carol] { await client.close() }
        await homes.proxy.stop()
    }
}
