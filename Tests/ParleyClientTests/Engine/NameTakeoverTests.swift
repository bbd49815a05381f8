import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// A group of the server's making must never take the local name of a group bob holds, and
/// a text typed in one group is never encrypted into another (review s5, H1 and M2;
/// docs/SECURITY.md).
@Suite struct NameTakeoverTests {
    /// A commit of alice's group at bob's epoch with a broken signature or tag: it fails to
    /// process and shows the group moved on, so bob can no longer follow it.
    static func forgedCommit(_ scene: EngineScene) throws -> MLSMessage {
        var copy = scene.alice
        switch try copy.commit(.selfUpdate).message {
        case .publicMessage(var framed):
            framed.membershipTag = framed.membershipTag.map { $0.map { $0 ^ 0xFF } }
            framed.auth.signature = framed.auth.signature.map { $0 ^ 0xFF }
            return .publicMessage(framed)
        case .privateMessage(var framed):
            framed.ciphertext = framed.ciphertext.map { $0 ^ 0xFF }
            return .privateMessage(framed)
        default:
            throw ClientError.invalid("a commit is a framed message")
        }
    }

    /// H1: bob typed in g (alice's group) while offline. The server then replays a forged
    /// commit that makes g unfollowable, and a Welcome labelled g into a group it built with
    /// bob's KeyPackage. That group must not take the name g: bob's text is never encrypted
    /// into it, and g keeps alice's group, its history and a line saying the text was not sent.
    @Test func aServersGroupNeverTakesTheNameOfAnUnfollowableGroup() async throws {
        let scene = try await EngineScene()
        scene.server.setReachable(false)
        await scene.bob.close()
        #expect(try await scene.bob.send("for alice only", to: "g") == .queued)
        scene.server.deliver(try scene.frame(try Self.forgedCommit(scene)))
        let welcome = try AttackerReviewEngineTests.carolsWelcome(scene, named: "g")
        scene.seq += 1
        scene.server.deliver(.welcome(.init(group: "g", seq: scene.seq, time: scene.now, welcome: welcome)))
        scene.server.setReachable(true)
        try await scene.bob.sync()

        #expect(await scene.bob.groupSummaries().map(\.name) == ["g", "g#2"])
        #expect(try await scene.bob.group("g").groupID == scene.alice.groupID)
        for send in scene.server.sends {
            guard case .privateMessage(let framed) = try MLSMessage(tlsEncoded: [UInt8](send.message)),
                framed.contentType == .application
            else { continue }
            #expect(framed.groupID == scene.alice.groupID, "a text went into a group bob never typed in")
        }
        #expect(try scene.store.outbox().isEmpty)
        #expect(try await scene.notices().contains { $0.contains("\u{201C}for alice only\u{201D} was not sent") })
    }

    /// H1, the outbox's own check: a queued text bound to another MLS group than the one
    /// its name holds now is parked with a line, never encrypted into this one.
    @Test func aQueuedTextForAnotherGroupIDIsParked() async throws {
        let scene = try await EngineScene()
        let elsewhere = Data(scene.suite.randomBytes(32))
        try scene.store.enqueue(OutboxItem(id: "typed", group: "g", text: "for X", groupID: elsewhere))
        try await scene.bob.sync()
        #expect(scene.server.sends.allSatisfy { $0.id != "typed" })
        #expect(try scene.store.outbox().isEmpty)
        #expect(try await scene.notices().contains { $0.contains("g is no longer the group it was typed in") })
    }

    /// M2: bob still holds g, far along its log (seq 500; say its destroy notice could not
    /// be verified). A new group the server also calls g invites him at seq 2 of its own log:
    /// the Welcome is joined under a new local name, not dropped because 2 <= 500.
    @Test func aWelcomeNumberedBelowAnotherGroupsCursorIsJoined() async throws {
        let scene = try await EngineScene()
        scene.server.deliver(
            try scene.frame(try scene.alice.encrypt(ApplicationContent.text("far").encoded()), seq: 500)
        )
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.summary()?.lastSeq == 500)
        let welcome = try AttackerReviewEngineTests.carolsWelcome(scene, named: "g")
        scene.server.deliver(.welcome(.init(group: "g", seq: 2, time: scene.now, welcome: welcome)))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.bob.groupSummaries().map(\.name) == ["g", "g#2"])
        #expect(try await scene.bob.history("g#2").first?.text == "You joined g.")
        #expect(try await scene.texts() == ["far"])
    }
}
