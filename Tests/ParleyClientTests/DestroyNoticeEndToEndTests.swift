import Foundation
import Testing

@testable import ParleyClient

/// The admin's signed destroy, kept by a real server for a member who was offline.
@Suite(.serialized) struct DestroyNoticeEndToEndTests {
    /// bob's device is off while alice destroys g (the server deletes the log then). When
    /// he comes back, the server hands him `groupDestroyed` with alice's signed notice: his
    /// client verifies it against his own state of g and deletes the group, naming her.
    @Test func aMemberOfflineDuringTheDestroyDeletesTheGroupWhenHeReturns() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await alice.send("before the end", to: "g")
        await bob.close()
        try await alice.destroy("g")
        let back = try harness.client("bob")
        try await back.unlock(password: "password of bob")
        try await back.sync()
        #expect(await back.groupSummaries().isEmpty)
        let lines = try await back.history("g").map(\.text)
        #expect(lines.last == "alice (an admin) destroyed this group.")
        #expect(!lines.contains { $0.contains("not confirmed by an admin") })
        for client in [alice, back] { await client.close() }
        await harness.stop()
    }
}
