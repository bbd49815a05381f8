import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Frames a hostile server could send, fed to the client's frame handler.
@Suite(.serialized) struct HostileServerTests {
    @Test func extremeSeqsTimesAndJunkInFramesNeitherTrapNorStopTheClient() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let max = UInt64.max
        let frames: [ServerFrame] = [
            .message(
                .init(
                    group: "g",
                    seq: UInt64(Int64.max),
                    time: max,
                    sender: "\u{1b}]0;pwn\u{07}",
                    message: Data([0, 1, 2])
                )
            ),
            .message(
                .init(group: "g", seq: max, time: max, sender: "x", message: Data(repeating: 0xFF, count: 1 << 20))
            ),
            .message(.init(group: "nowhere", seq: max, time: 0, sender: "x", message: Data())),
            .welcome(.init(group: "g", seq: max, time: max, welcome: Data([1, 2, 3]))),
            .welcome(.init(group: "junk", seq: max, time: max, welcome: Data(repeating: 7, count: 4096))),
            .groupDestroyed(.init(group: "nowhere")),
            .error(
                .init(id: nil, group: nil, error: ErrorBody(.internalError, String(repeating: "\u{1b}", count: 10)))
            ),
        ]
        // Offline, so the seqs these frames claim are never acknowledged to the
        // real server (which is not the hostile one here).
        await bob.close()
        for frame in frames { try await bob.apply(frame) }
        let history = try await bob.history("g")
        #expect(history.contains { $0.text.contains("could not be decrypted") })
        #expect(history.contains { $0.text.contains("were not delivered") })
        #expect(history.contains { $0.text.contains("no group's log reaches") })
        #expect(await bob.groupSummaries().first { $0.name == "junk" }?.problem != nil)
        // The extreme values survive being stored and loaded, and the client
        // still works with the server.
        let reopened = try harness.client("bob")
        try await reopened.unlock(password: "password of bob")
        #expect(await reopened.groupSummaries().first { $0.name == "g" }?.lastSeq == UInt64(Int64.max))
        #expect(try await reopened.history("g").count == history.count)
        try await reopened.createGroup("after")
        #expect(await reopened.groupSummaries().contains { $0.name == "after" })
        for client in [alice, bob, reopened] { await client.close() }
        await harness.stop()
    }

    /// The server writes each frame's `sender`; a hostile one rewrites it so
    /// the history would say "mallory removed carol" when alice did. The
    /// history names whoever signed the commit, from the MLS tree.
    @Test func aForgedSenderFieldDoesNotChangeWhoTheHistoryNames() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let carol = try await harness.registered("carol")
        try await alice.add(["carol"], to: "g")
        try await bob.sync()
        var aliceGroup = try await alice.group("g")
        let carolLeaf = try #require(
            aliceGroup.members.first { ParleyGroupPolicy.username(of: $0.credential) == "carol" }
        )
        let removal = try aliceGroup.removeMembers([carolLeaf.index])
        await bob.close()
        let last = try #require(await bob.groupSummaries().first { $0.name == "g" }).lastSeq
        let forged = ServerFrame.Message(
            group: "g",
            seq: last + 1,
            time: 1,
            sender: "mallory",
            message: Data(try removal.message.tlsEncoded())
        )
        try await bob.apply(.message(forged))
        let lines = try await bob.history("g").map(\.text)
        #expect(lines.contains("alice removed carol."))
        #expect(!lines.contains { $0.contains("mallory") })
        #expect(try await bob.members("g") == ["alice", "bob"])
        for client in [alice, bob, carol] { await client.close() }
        await harness.stop()
    }
}
