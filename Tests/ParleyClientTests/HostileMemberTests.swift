import Foundation
import ParleyProtocol
import Testing

@testable import MLS
@testable import ParleyClient

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

    /// Finding 4: any user claims the victim's KeyPackage and commits an Add
    /// whose Welcome carries random bytes as the victim's group secrets. The
    /// victim's client reports it once, acknowledges it and keeps working.
    @Test func aWelcomeOfRandomBytesIsReportedOnceAndLocksNobodyOut() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let mallory = try await harness.registered("mallory")
        try await mallory.createGroup("trap")
        let (api, token) = try await mallory.requireAPI()
        let claimed = try await api.call(
            .POST,
            "/v1/users/bob/keypackages/claim",
            token: token,
            as: API.ClaimedKeyPackages.self
        )
        let packages = claimed.keyPackages.compactMap { entry -> KeyPackage? in
            guard case .keyPackage(let package) = try? MLSMessage(tlsEncoded: [UInt8](entry.keyPackage)) else {
                return nil
            }
            return package
        }
        #expect(!packages.isEmpty)
        try await mallory.submit(in: "trap") { group in
            let output = try group.commit(CommitOptions(add: packages, includePendingProposals: false))
            guard case .welcome(var welcome) = output.welcome else { throw ClientError.invalid("no Welcome") }
            welcome.secrets = welcome.secrets.map {
                EncryptedGroupSecrets(
                    newMember: $0.newMember,
                    encryptedGroupSecrets: HPKECiphertext(
                        kemOutput: (0..<32).map { _ in UInt8.random(in: 0...255) },
                        ciphertext: (0..<80).map { _ in UInt8.random(in: 0...255) }
                    )
                )
            }
            return (output.message, .welcome(welcome))
        }

        try await bob.sync()
        await bob.close()
        // A fresh process on the same home: the Welcome is not replayed or reported again.
        let victim = try harness.client("bob")
        try await victim.unlock(password: "password of bob")
        try await victim.sync()
        try await victim.sync()
        let notices = try await victim.history("trap").filter { $0.kind == .system }
        #expect(notices.count == 1 && notices.first?.text.contains("could not be opened") == true)
        #expect(await victim.groupSummaries().first { $0.name == "trap" }?.problem != nil)

        // Everything else works: new groups, sending and receiving, later real Welcomes.
        try await victim.createGroup("bobs-own")
        #expect(try await victim.send("still here", to: "g") != .queued)
        try await alice.sync()
        #expect(try await alice.history("g").last?.text == "still here")
        _ = try await alice.send("welcome back", to: "g")
        try await alice.createGroup("g2")
        try await alice.add(["bob"], to: "g2")
        try await victim.sync()
        #expect(try await victim.history("g").last?.text == "welcome back")
        let joined = await victim.groupSummaries().first { $0.name == "g2" }
        #expect(joined?.problem == nil && joined?.members == ["alice", "bob"])
        for client in [alice, victim, mallory] { await client.close() }
        await harness.stop()
    }

    /// Finding 5: a member commits something the others cannot process (here a
    /// self-update with a junk confirmation tag, which the server cannot check).
    /// The victim marks that group as one it can no longer follow, parks its
    /// queued message there with a notice, parks a message the server keeps
    /// refusing, and every command in other groups works.
    @Test func aGroupThisMemberCannotFollowIsMarkedOnceAndOtherGroupsCarryOn() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        let charlie = try await harness.registered("charlie")
        try await alice.createGroup("g")
        try await alice.add(["bob", "charlie"], to: "g")
        try await alice.createGroup("other")
        try await alice.add(["bob"], to: "other")
        for client in [bob, charlie, alice] { try await client.sync() }

        try await bob.queue(OutboxItem(id: UUID().uuidString, group: "g", text: "stuck"))
        try await bob.queue(
            OutboxItem(id: UUID().uuidString, group: "other", text: String(repeating: "x", count: 1_200_000))
        )
        try await charlie.submit(in: "g") { group in
            guard case .publicMessage(let message) = try group.selfUpdate().message else {
                throw ClientError.invalid("not public")
            }
            var content = AuthenticatedContent(wireFormat: .publicMessage, content: message.content, auth: message.auth)
            content.auth.confirmationTag = (0..<32).map { _ in UInt8.random(in: 0...255) }
            group.discardPendingCommit()
            let forged = try PublicMessage.protect(
                content,
                membershipKey: group.epochSecrets.membershipKey,
                context: group.context,
                group.suite
            )
            return (.publicMessage(forged), nil)
        }

        try await bob.sync()
        try await bob.sync()
        let lines = try await bob.history("g").filter { $0.kind == .system }.map(\.text)
        #expect(lines.filter { $0.hasPrefix("You can no longer follow this group") }.count == 1)
        #expect(lines.contains { $0.contains("\u{201C}stuck\u{201D} was not sent") })
        #expect(try await bob.history("other").contains { $0.kind == .system && $0.text.contains("was not sent") })
        #expect(try await bob.outbox().isEmpty)
        #expect(await bob.groupSummaries().first { $0.name == "g" }?.problem != nil)
        await #expect { try await bob.send("to g", to: "g") } throws: { error in
            guard case ClientError.groupUnusable = error else { return false }
            return true
        }

        #expect(try await bob.send("in the other group", to: "other") != .queued)
        try await bob.createGroup("fresh")
        try await alice.sync()
        #expect(try await alice.history("other").last?.text == "in the other group")
        _ = try await alice.send("reply", to: "other")
        try await bob.sync()
        #expect(try await bob.history("other").last?.text == "reply")
        for client in [alice, bob, charlie] { await client.close() }
        await harness.stop()
    }
}
