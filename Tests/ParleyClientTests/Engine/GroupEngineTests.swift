import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// bob's engine on an in-memory store and a ``FakeServer``, in group "g" with alice, whose
/// side is a bare MLS `Group` the test drives. No server process, no TLS: milliseconds.
final class EngineScene {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let server = FakeServer(user: "bob")
    let store = InMemoryHomeStore()
    let bobKeys: SignatureKeyPair
    var bob: GroupEngine
    var alice: Group
    /// The seq of the last frame of "g" delivered.
    var seq: UInt64 = 0
    /// KeyPackages of bob's already claimed (the server hands each out once).
    var claimed = 0

    init() async throws {
        bobKeys = suite.generateSignatureKeyPair()
        bob = try GroupEngine(
            identity: LocalIdentity(username: "bob", signatureKeys: bobKeys),
            store: store,
            transport: server,
            suite: suite,
            timeout: .seconds(5)
        )
        alice = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            extensions: [try ParleyGroupPolicy.adminsExtension(["alice"])],
            policy: ParleyGroupPolicy.groupPolicy()
        )
        try await addBob()
        #expect(try await bob.pump(timeout: .milliseconds(1)) == ["g"])
    }

    /// alice adds bob with one of the KeyPackages his engine uploaded; the Welcome is delivered.
    func addBob() async throws {
        try await bob.topUpKeyPackages(minimum: 1)
        claimed += 1
        guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](server.uploaded[claimed - 1])) else {
            throw ClientError.invalid("no KeyPackage")
        }
        let output = try alice.addMembers([package])
        _ = try alice.process(output.message)
        seq += 1
        guard let welcome = output.welcome else { throw ClientError.invalid("no Welcome") }
        server.deliver(.welcome(.init(group: "g", seq: seq, time: now, welcome: Data(try welcome.tlsEncoded()))))
    }

    var now: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    /// A frame of "g" from alice at the next seq (or the one given).
    func frame(_ message: MLSMessage, seq given: UInt64? = nil, time: UInt64? = nil) throws -> ServerFrame {
        if let given { seq = given } else { seq += 1 }
        return .message(
            .init(group: "g", seq: seq, time: time ?? now, sender: "alice", message: Data(try message.tlsEncoded()))
        )
    }

    func fromAlice(_ text: String) throws -> ServerFrame {
        try frame(try alice.encrypt(try ApplicationContent.text(text).encoded()))
    }

    /// bob's engine after a restart: a new engine on the same store.
    func restart() async throws {
        await bob.close()
        bob = try GroupEngine(
            identity: LocalIdentity(username: "bob", signatureKeys: bobKeys),
            store: store,
            transport: server,
            suite: suite,
            timeout: .seconds(5)
        )
    }

    func texts() async throws -> [String] {
        try await bob.history("g").filter { $0.kind == .text }.map(\.text)
    }

    func notices() async throws -> [String] {
        try await bob.history("g").filter { $0.kind == .system }.map(\.text)
    }

    func summary() async -> GroupSummary? { await bob.groupSummaries().first { $0.name == "g" } }
}

@Suite struct GroupEngineTests {
    @Test func aReplayedSeqIsIgnored() async throws {
        let scene = try await EngineScene()
        let first = try scene.fromAlice("one")
        scene.server.deliver(first)
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        // The same frame again (a reconnect's replay, or a server replaying on purpose):
        // its keys are spent, so processing it again would be a decryption failure line.
        scene.server.deliver(first, try scene.fromAlice("two"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["one", "two"])
        #expect(try await scene.notices() == ["You joined g."])
        #expect(await scene.summary()?.lastSeq == 3)
    }

    @Test func aGapIsReportedAndLaterMessagesStillArrive() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(try scene.fromAlice("two"))
        _ = try scene.fromAlice("three, withheld")
        scene.server.deliver(try scene.fromAlice("four"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["two", "four"])
        #expect(try await scene.notices().contains("Messages 3 to 3 were not delivered by the server."))
        #expect(await scene.summary()?.lastSeq == 4)
    }

    /// Issue 13: a seq ≥ 2^63 fits no log (the server stores Int64): refused with a line,
    /// never a trap, and the next real message still applies.
    @Test func aSeqBeyondAnyLogIsRefusedWithoutMovingTheCursor() async throws {
        let scene = try await EngineScene()
        for seq in [UInt64(1) << 63, .max] {
            scene.server.deliver(
                try scene.frame(try scene.alice.encrypt(try ApplicationContent.text("forged").encoded()), seq: seq)
            )
            _ = try await scene.bob.pump(timeout: .milliseconds(1))
        }
        #expect(await scene.summary()?.lastSeq == 1)
        #expect(try await scene.notices().contains { $0.contains("numbered 9223372036854775808") })
        scene.server.deliver(
            try scene.frame(try scene.alice.encrypt(try ApplicationContent.text("after").encoded()), seq: 2)
        )
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["after"])
        #expect(await scene.summary()?.lastSeq == 2)
    }

    /// Issue 13: a server time far from the local clock, or running backwards within the
    /// group, is flagged on the line, not trusted silently; the next plausible one is not.
    @Test func anImplausibleServerTimeIsFlagged() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(try scene.fromAlice("now"))
        let tomorrow = scene.now + 86_400_000
        scene.server.deliver(
            try scene.frame(try scene.alice.encrypt(try ApplicationContent.text("tomorrow").encoded()), time: tomorrow)
        )
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let minuteAgo = scene.now - 60_000
        scene.server.deliver(
            try scene.frame(
                try scene.alice.encrypt(try ApplicationContent.text("backwards").encoded()),
                time: minuteAgo - 1
            )
        )
        scene.server.deliver(try scene.fromAlice("later"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let lines = try await scene.bob.history("g").filter { $0.kind == .text }
        #expect(lines.map(\.text) == ["now", "tomorrow", "backwards", "later"])
        #expect(lines[0].note == nil && lines[3].note == nil)
        #expect(lines[1].note?.contains("ahead of your clock") == true)
        #expect(lines[2].note?.contains("earlier than for the message before it") == true)
    }

    @Test func anUndecryptableMessageIsALineAndTheGroupCarriesOn() async throws {
        let scene = try await EngineScene()
        var junk = try scene.alice.encrypt(try ApplicationContent.text("tampered").encoded())
        if case .privateMessage(var message) = junk {
            message.ciphertext[message.ciphertext.count / 2] ^= 0xFF
            junk = .privateMessage(message)
        }
        scene.server.deliver(try scene.frame(junk), try scene.fromAlice("fine"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.notices().contains { $0.hasPrefix("A message from alice could not be decrypted") })
        #expect(try await scene.texts() == ["fine"])
        #expect(await scene.summary()?.problem == nil)
    }

    /// The server refuses bob's message with `wrongEpoch` after delivering alice's commit:
    /// the engine processes the commit, rebuilds the message on the new epoch, sends it
    /// again under the same id, and knows it went out by that id's echo.
    @Test func aWrongEpochSendIsRebuiltOnTheNewEpochAndSentAgain() async throws {
        let scene = try await EngineScene()
        let update = try scene.alice.selfUpdate()
        _ = try scene.alice.process(update.message)
        let commit = try scene.frame(update.message)
        scene.server.script(.refuse(.wrongEpoch, before: [commit]))
        #expect(try await scene.bob.send("hi", to: "g") == .sent(seq: 3))
        let sends = scene.server.sends
        #expect(sends.count == 2 && sends[0].id == sends[1].id && sends[0].message != sends[1].message)
        guard case .privateMessage(let retried) = try MLSMessage(tlsEncoded: [UInt8](sends[1].message)) else {
            Issue.record("not a PrivateMessage")
            return
        }
        #expect(retried.epoch == 2)
        guard case .application(let received) = try scene.alice.process(.privateMessage(retried)) else {
            Issue.record("alice could not read it")
            return
        }
        #expect(try ApplicationContent(decoding: received.data) == .text("hi"))
        #expect(try await scene.texts() == ["hi"])
        #expect(try await scene.bob.store.outbox().isEmpty)
    }

    @Test func theOutboxSurvivesARestartAndGoesOutOnce() async throws {
        let scene = try await EngineScene()
        scene.server.setReachable(false)
        await scene.bob.close()
        #expect(try await scene.bob.send("while offline", to: "g") == .queued)
        try await scene.restart()
        #expect(try await scene.bob.store.outbox().map(\.item.text) == ["while offline"])
        scene.server.setReachable(true)
        try await scene.bob.sync()
        #expect(try await scene.texts() == ["while offline"])
        #expect(try await scene.bob.store.outbox().isEmpty)
        let applicationSends = try scene.server.sends.filter {
            if case .privateMessage = try MLSMessage(tlsEncoded: [UInt8]($0.message)) { return true }
            return false
        }
        #expect(applicationSends.count == 1)
    }

    /// Issue 13 item 4: the connection drops after the server accepted bob's message and
    /// before its echo. On reconnect the replay carries bob's own copy (without its id):
    /// it confirms the queued message by its bytes, which is not sent again.
    @Test func aSendWhoseEchoArrivesInTheReplayIsConfirmedNotResent() async throws {
        let scene = try await EngineScene()
        scene.server.script(.acceptThenDrop)
        #expect(try await scene.bob.send("once", to: "g") == .queued)
        try await scene.restart()
        _ = try await scene.bob.connect()
        try await scene.bob.flushOutbox()
        #expect(scene.server.sends.count == 1)
        #expect(try await scene.texts() == ["once"])
        #expect(try await scene.bob.history("g").last?.seq == 2)
        #expect(try await scene.bob.store.outbox().isEmpty)
    }

    @Test func theEchoOfOwnCommitIsMergedLiveAndAfterARestart() async throws {
        let scene = try await EngineScene()
        try await scene.bob.commit(in: "g", .selfUpdate)
        #expect(await scene.summary()?.epoch == 2)
        // Accepted, then the connection drops: the pending commit was saved before sending,
        // so its echo in the replay after a restart is merged, not an unknown commit.
        scene.server.script(.acceptThenDrop)
        await #expect(throws: ClientError.self) { try await scene.bob.commit(in: "g", .selfUpdate) }
        try await scene.restart()
        #expect(await scene.summary()?.epoch == 2)
        _ = try await scene.bob.connect()
        #expect(await scene.summary()?.epoch == 3)
        #expect(await scene.summary()?.problem == nil)
        #expect(try await !scene.notices().contains { $0.contains("could not") })
    }

    /// Issue 13 item 4: when the server delivers the sender's copy like any other message,
    /// without the `send` id, the engine still knows its commit and its text went out (by
    /// their exact bytes), and acknowledges them like any other message.
    @Test func echoesWithoutTheirIDStillConfirmSends() async throws {
        let scene = try await EngineScene()
        scene.server.state.withLock { $0.echoesCarryID = false }
        try await scene.bob.commit(in: "g", .selfUpdate)
        #expect(await scene.summary()?.epoch == 2)
        #expect(try await scene.bob.send("no id", to: "g") == .sent(seq: 3))
        #expect(try await scene.texts() == ["no id"])
        #expect(scene.server.state.withLock { $0.acks["g"] } == 3)
    }

    @Test func beingRemovedEndsTheGroupAndParksItsMessages() async throws {
        let scene = try await EngineScene()
        let bobLeaf = try #require(scene.alice.members.first { $0.index != scene.alice.ownLeaf }).index
        let removal = try scene.alice.removeMembers([bobLeaf])
        _ = try scene.alice.process(removal.message)
        scene.server.deliver(try scene.frame(removal.message))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.notices().contains("You were removed from the group."))
        #expect(await scene.summary()?.active == false)
        #expect(try await scene.bob.send("anyone?", to: "g") == .queued)
        #expect(try await scene.notices().contains { $0.contains("\u{201C}anyone?\u{201D} was not sent") })
        #expect(try await scene.bob.store.outbox().isEmpty)
    }

    /// Issue 13 item 3: removed, then added back to the same group under the same name, bob
    /// rejoins (the Welcome is not ignored and replayed forever), and a restart does not
    /// apply it twice.
    @Test func aRemovedMemberAddedBackRejoinsTheSameGroup() async throws {
        let scene = try await EngineScene()
        let bobLeaf = try #require(scene.alice.members.first { $0.index != scene.alice.ownLeaf }).index
        let removal = try scene.alice.removeMembers([bobLeaf])
        _ = try scene.alice.process(removal.message)
        scene.server.deliver(try scene.frame(removal.message))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        try await scene.addBob()
        scene.server.deliver(try scene.fromAlice("welcome back"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.summary()?.active == true)
        #expect(try await scene.notices().contains("You were added to g again."))
        #expect(try await scene.texts() == ["welcome back"])
        let lines = try await scene.bob.history("g").count
        try await scene.restart()
        _ = try await scene.bob.connect()
        #expect(try await scene.bob.history("g").count == lines)
    }

    /// Issue 13 item 2: the server alone cannot delete a group: an unsigned `groupDestroyed`
    /// keeps it, says so once, and marks its status.
    @Test func anUnsignedDestroyDeletesNothing() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(.groupDestroyed(.init(group: "g")), .groupDestroyed(.init(group: "g")))
        scene.server.deliver(try scene.fromAlice("still here"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let said = try await scene.notices().filter {
            $0.contains("the server says this group was destroyed (not confirmed by an admin)")
        }
        #expect(said.count == 1)
        #expect(await scene.summary()?.warnings.count == 1)
        #expect(try await scene.texts() == ["still here"])
        #expect(try await scene.bob.members("g") == ["alice", "bob"])
    }
}
