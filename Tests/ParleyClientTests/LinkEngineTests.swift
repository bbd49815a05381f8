import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// The engine's part in linking, on ``EngineScene`` (bob's engine, alice a bare MLS group, a
/// ``FakeServer``): which history is exported, who counts as one of this account's devices, and
/// that transferred lines are history only. Milliseconds, no server process.
@Suite struct LinkEngineTests {
    @Test func theExportIsTheLastTextLinesOfEachGroupOldestFirst() async throws {
        let scene = try await EngineScene()
        for text in ["one", "two", "three"] { scene.server.deliver(try scene.fromAlice(text)) }
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        let export = try await scene.bob.exportHistory(limit: 2)
        #expect(export.map(\.group) == ["g"])
        #expect(export.first?.lines.map(\.text) == ["two", "three"])
        #expect(export.first?.lines.map(\.sender) == ["alice", "alice"])
        // A negative or huge limit is clamped, never trusted.
        #expect(try await scene.bob.exportHistory(limit: -5).first?.lines.isEmpty == true)
        #expect(try await scene.bob.exportHistory(limit: .max).first?.lines.count == 3)
    }

    /// A member of another account (alice, in the same group) — or any key the server picks — is
    /// not "your device": only a leaf of this very account in the group's own tree is.
    @Test func onlyALeafOfThisAccountInTheGroupCountsAsOwnDevice() async throws {
        let scene = try await EngineScene()
        let aliceKey = try #require(
            scene.alice.tree.members.first { ParleyGroupPolicy.username(of: $0.leaf.credential) == "alice" }
        ).leaf.signatureKey.bytes
        #expect(await scene.bob.isOwnDevice(scene.bobKeys.publicKey.bytes, in: "g"))
        #expect(await !scene.bob.isOwnDevice(aliceKey, in: "g"))
        #expect(await !scene.bob.isOwnDevice(scene.suite.generateSignatureKeyPair().publicKey.bytes, in: "g"))
        #expect(await !scene.bob.isOwnDevice(scene.bobKeys.publicKey.bytes, in: "no such group"))
    }

    @Test func transferredLinesAreMarkedAndNeverSent() async throws {
        let scene = try await EngineScene()
        let lines: [HistoryBundle.Line] = [
            .init(seq: 1, time: 10, sender: "alice", text: "from before"),
            .init(seq: 2, time: 20, sender: "bob", text: "mine, from before"),
        ]
        try await scene.bob.importTransferred(lines, to: "g", from: "desktop")
        try await scene.bob.sync()
        let history = try await scene.bob.history("g")
        let transferred = history.filter { $0.note == "from your device desktop" }
        #expect(transferred.map(\.text) == ["from before", "mine, from before"])
        #expect(transferred.map(\.seq) == [1, 2])
        #expect(history.contains { $0.kind == .system && $0.text == "2 earlier messages from your device desktop:" })
        #expect(try scene.store.outbox().isEmpty)
        // What the sync sent is bob's self-update after joining (a PublicMessage commit); no
        // application message, so nothing of the transferred lines went to the server.
        let sent = try scene.server.state.withLock { $0.sends }.map { try MLSMessage(tlsEncoded: [UInt8]($0.message)) }
        #expect(!sent.contains { if case .privateMessage = $0 { true } else { false } })
    }
}
