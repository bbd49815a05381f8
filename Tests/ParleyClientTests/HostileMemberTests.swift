import Foundation
import MLS
@testable import ParleyClient
import ParleyProtocol
import Testing

/// Attacks by members of a group (and by any registered user) on other
/// members' clients, performed for real through the server.
@Suite(.serialized) struct HostileMemberTests {
    /// Finding 3 and 6: a non-admin proposes itself as sole admin and the
    /// admin's removal (and a second GroupContextExtensions, which would make
    /// any commit covering both fail RFC 9420 §12.2). The admin's client must
    /// commit none of it, and its own commands must keep working.
    @Test func aMemberCannotMakeTheAdminsClientCommitATakeover() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await harness.registered("carol")
        try await alice.sync()
        let aliceLeaves = try await bob.group("g").members
            .filter { ParleyGroupPolicy.username(of: $0.credential) == "alice" }.map(\.index)
        var attacks: [Proposal] = [
            .groupContextExtensions([try ParleyGroupPolicy.adminsExtension(["bob"])]),
            .groupContextExtensions([try ParleyGroupPolicy.adminsExtension(["bob", "mallory"])]),
        ]
        attacks += aliceLeaves.map { Proposal.remove(removed: $0) }
        for proposal in attacks {
            // The server may refuse the proposal (policy at receipt); either way
            // the admin's client must not act on it.
            _ = try? await bob.submit(in: "g") { group in (try group.propose(proposal), nil) }
        }

        try await alice.sync()
        try await alice.add(["carol"], to: "g")
        try await alice.remove("carol", from: "g")
        try await alice.update("g")
        #expect(await alice.isAdmin(of: "g"))
        let aliceView = try #require(await alice.groupSummaries().first)
        #expect(aliceView.admins == ["alice"] && aliceView.members == ["alice", "bob"])
        try await bob.sync()
        let bobView = try #require(await bob.groupSummaries().first)
        #expect(bobView.admins == ["alice"] && bobView.members == ["alice", "bob"] && bobView.epoch == aliceView.epoch)

        // A member's own leave is still committed for it.
        try await bob.leave("g")
        try await alice.sync()
        #expect(await alice.groupSummaries().first?.members == ["alice"])
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }
}
