import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Attacks on the group engine by a hostile server (issue 13), through the ``FakeServer``:
/// each test performs the attack and asserts what the user is left with. These are the
/// attacks the engine withstands; they guard against regressions.
@Suite struct AttackerReviewEngineTests {
    /// Frames for a group this device never joined are not applied, do not create the
    /// group, and do not disturb the groups it is in.
    @Test func framesForAGroupTheClientIsNotInChangeNothing() async throws {
        let scene = try await EngineScene()
        let foreign = try scene.alice.encrypt(try ApplicationContent.text("not for you").encoded())
        scene.server.deliver(
            .message(
                .init(group: "h", seq: 1, time: scene.now, sender: "alice", message: Data(try foreign.tlsEncoded()))
            ),
            .groupDestroyed(.init(group: "h")),
            .error(.init(id: "nobody", group: "h", error: ErrorBody(.internalError, "boom")))
        )
        scene.server.deliver(try scene.fromAlice("for g"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.bob.groupSummaries().map(\.name) == ["g"])
        #expect(try await scene.bob.history("h").isEmpty)
        #expect(try await scene.texts() == ["for g"])
    }

    /// A seq ≥ 2^63 in a Welcome (as in a message) is refused without a trap, and the
    /// group the device is in keeps its cursor and its messages.
    @Test func aWelcomeNumberedBeyondAnyLogIsRefused() async throws {
        let scene = try await EngineScene()
        for seq in [UInt64(1) << 63, .max] {
            scene.server.deliver(.welcome(.init(group: "g", seq: seq, time: .max, welcome: Data([0x00, 0x01]))))
        }
        scene.server.deliver(try scene.fromAlice("still in order"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["still in order"])
        #expect(await scene.summary()?.lastSeq == 2)
        #expect(await scene.summary()?.active == true)
    }

    /// Out of order: a message ahead of the next one is applied with a gap line; the one
    /// skipped, delivered afterwards, is not applied twice nor does it move the cursor back.
    @Test func outOfOrderFramesNeverMoveTheCursorBack() async throws {
        let scene = try await EngineScene()
        let two = try scene.fromAlice("two")
        let three = try scene.fromAlice("three")
        scene.server.deliver(three, two, three)
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["three"])
        #expect(try await scene.notices().contains("Messages 2 to 2 were not delivered by the server."))
        #expect(await scene.summary()?.lastSeq == 3)
        scene.server.deliver(try scene.fromAlice("four"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["three", "four"])
    }

    /// Extreme server times (0 and UInt64.max) neither trap nor go unflagged.
    @Test func extremeServerTimesAreFlaggedNotTrusted() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(
            try scene.frame(try scene.alice.encrypt(try ApplicationContent.text("epoch").encoded()), time: 0)
        )
        scene.server.deliver(
            try scene.frame(try scene.alice.encrypt(try ApplicationContent.text("end").encoded()), time: .max)
        )
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let lines = try await scene.bob.history("g").filter { $0.kind == .text }
        #expect(lines.map(\.text) == ["epoch", "end"])
        #expect(lines.allSatisfy { $0.note != nil })
    }

    /// The frame's `sender` is the server's word: a message signed by alice and labelled
    /// "mallory" is shown as alice's.
    @Test func aForgedSenderFieldIsNotShown() async throws {
        let scene = try await EngineScene()
        let message = try scene.alice.encrypt(try ApplicationContent.text("signed by alice").encoded())
        scene.seq += 1
        scene.server.deliver(
            .message(
                .init(
                    group: "g",
                    seq: scene.seq,
                    time: scene.now,
                    sender: "mallory",
                    message: Data(try message.tlsEncoded())
                )
            )
        )
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let line = try #require(try await scene.bob.history("g").last)
        #expect(line.sender == "alice" && line.text == "signed by alice")
    }

    /// An error frame naming a pending send with a code that is not worth retrying parks
    /// the message with a line (not lost silently, not reported as sent); other groups'
    /// state is untouched and the next message goes out.
    @Test func anErrorNamingAPendingSendParksItVisibly() async throws {
        let scene = try await EngineScene()
        scene.server.script(.refuse(.notPermitted, before: []))
        #expect(try await scene.bob.send("refused", to: "g") == .queued)
        #expect(try await scene.notices().contains { $0.contains("\u{201C}refused\u{201D} was not sent") })
        #expect(try await scene.bob.store.outbox().isEmpty)
        #expect(try await scene.bob.send("accepted", to: "g") == .sent(seq: 2))
        #expect(try await scene.texts() == ["accepted"])
    }

    /// A connection that drops before the server took the message keeps it queued; the
    /// next sync sends it once.
    @Test func aReconnectInTheMiddleOfASendLosesNothing() async throws {
        let scene = try await EngineScene()
        scene.server.script(.acceptThenDrop)
        #expect(try await scene.bob.send("first", to: "g") == .queued)
        #expect(try await scene.bob.send("second", to: "g") == .sent(seq: 3))
        #expect(try await scene.texts() == ["first", "second"])
        #expect(try await scene.bob.store.outbox().isEmpty)
        #expect(scene.server.sends.count == 2)
    }

    /// `groupDestroyed` while a message waits in the outbox deletes neither the group nor
    /// the message; and one for a group the device is not in creates nothing.
    @Test func anUnsignedDestroyKeepsTheOutbox() async throws {
        let scene = try await EngineScene()
        scene.server.setReachable(false)
        await scene.bob.close()
        #expect(try await scene.bob.send("queued", to: "g") == .queued)
        scene.server.setReachable(true)
        scene.server.deliver(.groupDestroyed(.init(group: "g")), .groupDestroyed(.init(group: "nowhere")))
        try await scene.bob.sync()
        #expect(try await scene.texts() == ["queued"])
        #expect(await scene.bob.groupSummaries().map(\.name) == ["g"])
    }

    /// A huge message (1 MB of random bytes) is a line in its group, not a trap, and the
    /// group carries on.
    @Test func aHugeJunkMessageIsALine() async throws {
        let scene = try await EngineScene()
        scene.seq += 1
        let junk = Data((0..<1_000_000).map { _ in UInt8.random(in: 0...255) })
        scene.server.deliver(
            .message(.init(group: "g", seq: scene.seq, time: scene.now, sender: "alice", message: junk))
        )
        scene.server.deliver(try scene.fromAlice("after"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["after"])
        #expect(await scene.summary()?.problem == nil)
    }

    /// The server answers a new send with a forged "echo": the send's id on bytes bob sent
    /// earlier. The new text was never logged: it stays queued and is not shown as sent.
    @Test func aForgedEchoOfAnOldOwnMessageConfirmsNothing() async throws {
        let scene = try await EngineScene()
        #expect(try await scene.bob.send("first", to: "g") == .sent(seq: 2))
        let old = try #require(scene.server.sends.last).message
        try scene.store.enqueue(OutboxItem(id: "known", group: "g", text: "second, never sent"))
        let forged = ServerFrame.message(
            .init(group: "g", seq: 3, time: scene.now, sender: "bob", message: old, id: "known")
        )
        scene.server.script(.refuse(.internalError, before: [forged]))
        try await scene.bob.flushOutbox()
        #expect(await scene.bob.confirmedSends["known"] == nil)
        #expect(try scene.store.outbox().map(\.item.text) == ["second, never sent"])
        #expect(try await !scene.texts().contains("second, never sent"))
        // The next flush sends it for real, once.
        try await scene.bob.flushOutbox()
        #expect(try await scene.texts() == ["first", "second, never sent"])
        #expect(try scene.store.outbox().isEmpty)
    }

    /// A forged echo naming the pending send's id with junk bytes does not confirm it.
    @Test func aForgedEchoWithJunkBytesConfirmsNothing() async throws {
        let scene = try await EngineScene()
        try scene.store.enqueue(OutboxItem(id: "known", group: "g", text: "never logged"))
        let forged = ServerFrame.message(
            .init(group: "g", seq: 2, time: scene.now, sender: "bob", message: Data([1, 2, 3]), id: "known")
        )
        scene.server.script(.refuse(.internalError, before: [forged]))
        try await scene.bob.flushOutbox()
        #expect(await scene.bob.confirmedSends["known"] == nil)
        #expect(try scene.store.outbox().map(\.item.text) == ["never logged"])
    }

    /// A junk Welcome for a group bob is in, numbered far ahead, neither moves his cursor
    /// nor is acknowledged: the next real message still arrives.
    @Test func aJunkWelcomeForAFollowedGroupDoesNotMoveItsCursor() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(.welcome(.init(group: "g", seq: 1_000, time: scene.now, welcome: Data([1, 2, 3]))))
        scene.server.deliver(try scene.fromAlice("two"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["two"])
        #expect(await scene.summary()?.lastSeq == 2)
        #expect(scene.server.state.withLock { $0.acks["g"] } == 2)
    }

    /// carol's group, bob added with his last-resort KeyPackage (which stays usable): her
    /// Welcome. Only the server and carol need to collude to replay it.
    /// `named` gives her group that name in its GroupContext, as a colluder would to look
    /// like the group she imitates.
    static func carolsWelcome(_ scene: EngineScene, named: String? = nil) throws -> Data {
        var carol = try Group.create(
            scene.suite,
            groupID: scene.suite.randomBytes(32),
            credential: .basic(identity: Array("carol".utf8)),
            signatureKeys: scene.suite.generateSignatureKeyPair(),
            extensions: [try ParleyGroupPolicy.adminsExtension(["carol"])]
                + (try named.map { [try ParleyGroupPolicy.groupNameExtension($0)] } ?? []),
            policy: ParleyGroupPolicy.groupPolicy()
        )
        let encoded = try #require(scene.server.uploaded.last)
        guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](encoded)) else {
            throw ClientError.invalid("no KeyPackage")
        }
        #expect(package.isLastResort)
        let output = try carol.addMembers([package])
        _ = try carol.process(output.message)
        return Data(try #require(output.welcome).tlsEncoded())
    }

    /// The same Welcome replayed under a second name does not make a second local copy of
    /// one MLS group: it is refused with a line, and the first copy carries on.
    @Test func aWelcomeReplayedUnderAnotherNameIsRefused() async throws {
        let scene = try await EngineScene()
        let welcome = try Self.carolsWelcome(scene)
        scene.server.deliver(.welcome(.init(group: "h", seq: 1, time: scene.now, welcome: welcome)))
        scene.server.deliver(.welcome(.init(group: "h2", seq: 1, time: scene.now, welcome: welcome)))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let followed = await scene.bob.groupSummaries().filter { $0.problem == nil }.map(\.name)
        #expect(followed == ["g", "h"])
        #expect(try await scene.bob.group("h").groupID != scene.bob.group("g").groupID)
        #expect(
            try await scene.bob.history("h2").contains { $0.text.contains("already in as h") }
        )
    }

    /// A server colluding with carol delivers her valid Welcome under "g", the name of the
    /// group bob is in with alice, and carol named her group "g" too. bob's group keeps its
    /// name, history, outbox and cursor: the message he typed offline and the one he sends
    /// now go to alice (she decrypts both), alice's next message lands there, and carol's
    /// group is the newcomer, shown as g#2 with a warning, also after a restart.
    @Test func aWelcomeUnderAnExistingNameIsANewcomerNotAReplacement() async throws {
        let scene = try await EngineScene()
        scene.server.setReachable(false)
        await scene.bob.close()
        #expect(try await scene.bob.send("for alice only", to: "g") == .queued)
        let welcome = try Self.carolsWelcome(scene, named: "g")
        scene.seq += 1
        scene.server.deliver(.welcome(.init(group: "g", seq: scene.seq, time: scene.now, welcome: welcome)))
        scene.server.deliver(try scene.fromAlice("still alice"))
        scene.server.setReachable(true)
        #expect(try await scene.bob.send("second", to: "g") != .queued)

        #expect(await scene.bob.groupSummaries().map(\.name) == ["g", "g#2"])
        #expect(try await scene.bob.group("g").groupID == scene.alice.groupID)
        #expect(try await scene.texts() == ["still alice", "for alice only", "second"])
        #expect(try scene.store.outbox().isEmpty)
        var read: [String] = []
        for send in scene.server.sends {
            guard
                case .application(let message) = try scene.alice.process(MLSMessage(tlsEncoded: [UInt8](send.message)))
            else { continue }
            if case .text(let text) = try ApplicationContent(decoding: message.data) { read.append(text) }
        }
        #expect(read == ["for alice only", "second"])
        #expect(scene.server.sends.allSatisfy { $0.group == "g" })
        #expect(
            try await scene.notices().contains(
                "You were invited to a different group also called g; it is g#2. "
                    + "This group is unchanged."
            )
        )
        let newcomer = try await scene.bob.history("g#2").map(\.text)
        #expect(newcomer.first == "You joined g.")
        #expect(newcomer.contains { $0.hasPrefix("Warning: the server gave this group the name g") })
        #expect(try await scene.bob.resolve("g") == "g")

        try await scene.restart()
        #expect(await scene.bob.groupSummaries().map(\.name) == ["g", "g#2"])
        scene.seq = scene.server.state.withLock { $0.nextSeq["g"] ?? 1 } - 1
        scene.server.deliver(try scene.fromAlice("after the restart"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts().last == "after the restart")
        #expect(try await scene.bob.history("g#2").allSatisfy { $0.kind == .system })
    }

    /// Two groups whose admins both named them "team" (under other server names): a command
    /// that says "team" is refused with a sentence naming both, never guessed.
    @Test func aNameTwoGroupsShareIsRefusedWithASentence() async throws {
        let scene = try await EngineScene()
        for (server, seq) in [("h", UInt64(1)), ("k", 1)] {
            let welcome = try Self.carolsWelcome(scene, named: "team")
            scene.server.deliver(.welcome(.init(group: server, seq: seq, time: scene.now, welcome: welcome)))
        }
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.bob.groupSummaries().map(\.title) == ["g", "team", "team"])
        await #expect(throws: ClientError.ambiguousGroup("team", candidates: ["h", "k"])) {
            try await scene.bob.resolve("team")
        }
        #expect(
            ClientError.ambiguousGroup("team", candidates: ["h", "k"]).description
                == "2 of your groups are called team; use h or k to say which."
        )
        #expect(try await scene.bob.resolve("h") == "h")
    }
}
