import Foundation
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Issue 13 item 5: a hostile server shows members different histories, withholds and
/// reorders messages, renames a group and forges its destruction, through
/// ``HostileServerProxy`` in front of a real server. Each test asserts the sentence the
/// victim reads, that nothing it already had is lost, and that it keeps working.
@Suite(.serialized) struct HostileServerHistoryTests {
    /// Rewrites `g`'s message frames after `base` for one recipient: `drop` lists the
    /// offsets (seq - base) it never sees, later ones are renumbered to close the gap.
    static func hide(_ drop: Set<UInt64>, from victim: String, after base: UInt64) -> HostileServerProxy.Rule {
        { recipient, frame in
            guard recipient == victim, case .message(var message) = frame, message.group == "g", message.seq > base
            else { return .deliver([frame]) }
            let offset = message.seq - base
            if drop.contains(offset) { return .deliver([]) }
            message.seq -= UInt64(drop.filter { $0 < offset }.count)
            return .deliver([.message(message)])
        }
    }

    /// The server shows alice and bob different messages at the same seq (carol's "for
    /// alice" to alice, her "for bob" to bob), each log gapless. alice's next message
    /// reveals it to bob, and bob's to alice.
    @Test func aForkIsWarnedAboutOnBothSidesAndTheGroupKeepsWorking() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        _ = try await alice.send("before", to: "g")
        try await bob.sync()
        let base = try await homes.summary(alice).lastSeq
        #expect(try await homes.summary(bob).lastSeq == base)
        let aliceRule = Self.hide([2], from: "alice", after: base)
        let bobRule = Self.hide([1], from: "bob", after: base)
        homes.proxy.setRule { recipient, frame in
            recipient == "alice" ? aliceRule(recipient, frame) : bobRule(recipient, frame)
        }
        _ = try await carol.send("for alice", to: "g")
        _ = try await carol.send("for bob", to: "g")
        try await alice.sync()
        _ = try await alice.send("after", to: "g")
        try await bob.sync()
        let warning = "Warning: the server showed you and alice different histories of g after #\(base - 1)."
        #expect(try await homes.texts(bob) == ["before", "for bob", "after"])
        #expect(try await homes.lines(bob).contains(warning))
        #expect(try await homes.summary(bob).warnings.contains(warning))
        _ = try await bob.send("still talking", to: "g")
        try await alice.sync()
        #expect(try await homes.texts(alice) == ["before", "for alice", "after", "still talking"])
        #expect(
            try await homes.lines(alice).contains { $0.contains("the server showed you and bob different histories") }
        )
        await homes.stop([alice, bob, carol])
    }

    /// The server drops carol's message for bob and renumbers the rest, so bob's log has no
    /// gap: alice's next claim is ahead of what bob was shown, and carol's next message
    /// reveals the one withheld before it.
    @Test func aMessageWithheldAndRenumberedAwayIsReported() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        let base = try await homes.summary(alice).lastSeq
        homes.proxy.setRule(Self.hide([1], from: "bob", after: base))
        _ = try await carol.send("hidden from bob", to: "g")
        try await alice.sync()
        _ = try await alice.send("seen by all", to: "g")
        try await carol.sync()
        _ = try await carol.send("carol again", to: "g")
        try await bob.sync()
        let lines = try await homes.lines(bob)
        #expect(try await homes.texts(bob) == ["seen by all", "carol again"])
        #expect(
            lines.contains("Warning: the server withheld from you messages of g that alice received (#\(base + 1)).")
        )
        #expect(lines.contains("Warning: the server withheld 1 message from carol in g."))
        _ = try await bob.send("still here", to: "g")
        try await carol.sync()
        #expect(try await homes.texts(carol).last == "still here")
        await homes.stop([alice, bob, carol])
    }

    /// The server swaps two of carol's messages for bob (renumbered, so bob's log looks
    /// fine): bob is told one was withheld, then that it arrived out of order.
    @Test func aReorderIsReported() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        let base = try await homes.summary(alice).lastSeq
        let stash = FrameStash()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame, message.seq > base else {
                return .deliver([frame])
            }
            if message.seq == base + 1 {
                message.seq = base + 2
                stash.keep(.message(message))
                return .deliver([])
            }
            guard message.seq == base + 2, let first = stash.take() else { return .deliver([frame]) }
            message.seq = base + 1
            return .deliver([.message(message), first])
        }
        _ = try await carol.send("first", to: "g")
        _ = try await carol.send("second", to: "g")
        try await bob.sync()
        let lines = try await homes.lines(bob)
        #expect(try await homes.texts(bob) == ["second", "first"])
        #expect(lines.contains("Warning: the server withheld 1 message from carol in g."))
        #expect(lines.contains("Warning: the server delivered a message from carol in g out of order."))
        await homes.stop([alice, bob, carol])
    }

    /// Issue 13: an unsigned `groupDestroyed` frame made clients delete the group. Forged
    /// by the proxy now, it is a note and deletes nothing; an admin's destroy, MLS-signed,
    /// deletes the group on a member's device.
    @Test func aForgedDestroyDeletesNothingAndAnAdminsSignedDestroyDeletes() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        _ = try await alice.send("kept", to: "g")
        try await bob.sync()
        try homes.proxy.inject(.groupDestroyed(.init(group: "g")), to: "bob")
        _ = try await bob.pump(timeout: .seconds(1))
        #expect(try await homes.lines(bob).contains { $0.contains("not confirmed by an admin") })
        #expect(try await homes.texts(bob) == ["kept"])
        _ = try await bob.send("still here", to: "g")
        try await alice.sync()
        #expect(try await homes.texts(alice) == ["kept", "still here"])
        try await alice.destroy("g")
        _ = try await bob.pump(timeout: .seconds(2))
        #expect(await !bob.groupSummaries().contains { $0.name == "g" })
        await homes.stop([alice, bob])
    }

    /// Issue 13: the server renamed "board-secrets" to "family-chat" and the victim posted
    /// into it. The name bob is shown comes from the group's MLS GroupContext, and he is
    /// told what the server calls it.
    @Test func aGroupRenamedByTheServerShowsTheNameItsAdminsGaveIt() async throws {
        let homes = try await HostileHomes()
        let alice = try await homes.registered("alice")
        let bob = try await homes.registered("bob")
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .welcome(var welcome) = frame else { return .deliver([frame]) }
            welcome.group = "family-chat"
            return .deliver([.welcome(welcome)])
        }
        try await alice.createGroup("board-secrets")
        try await alice.add(["bob"], to: "board-secrets")
        try await bob.sync()
        let summary = try await homes.summary(bob, "family-chat")
        #expect(summary.title == "board-secrets")
        let warning = "Warning: the server calls this group family-chat, but its admins named it board-secrets."
        #expect(summary.warnings.contains(warning))
        #expect(try await homes.lines(bob, "family-chat").starts(with: ["You joined board-secrets.", warning]))
        await homes.stop([alice, bob])
    }

    /// A server time a day ahead of the local clock is shown with a note on the line.
    @Test func aTimeFarFromTheLocalClockIsFlagged() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame else { return .deliver([frame]) }
            message.time += 86_400_000
            return .deliver([.message(message)])
        }
        _ = try await alice.send("from tomorrow", to: "g")
        try await bob.sync()
        let line = try #require(try await bob.history("g").first { $0.text == "from tomorrow" })
        #expect(line.note != nil)
        await homes.stop([alice, bob])
    }
}
