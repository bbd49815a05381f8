import Foundation
import ParleyProtocol
import Testing

@testable import ParleyClient

/// A server that sends faster than the client processes must not grow client memory, and a
/// lost connection must not wedge the client.
@Suite(.serialized) struct ServerFloodTests {
    private static func frame(_ seq: UInt64, bytes: Int = 16) -> ServerFrame {
        .message(.init(group: "g", seq: seq, time: 0, sender: "x", message: Data(repeating: 1, count: bytes)))
    }

    @Test func aFullInboxRefusesMoreFramesByCountUntilOneIsTaken() async throws {
        let inbox = FrameInbox(maxFrames: 4, maxBytes: 1 << 20)
        for seq in 1...4 { #expect(inbox.offer(Self.frame(UInt64(seq)), size: 100)) }
        #expect(!inbox.offer(Self.frame(5), size: 100))
        // `put` (what the socket's reader does) waits: the socket is not read meanwhile.
        let putter = Task { try await inbox.put(Self.frame(5), size: 100) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(inbox.count == 4)
        #expect(try inbox.take() == Self.frame(1))
        try await putter.value
        #expect(inbox.count == 4 && inbox.peakCount == 4)
        for seq in 2...5 { #expect(try inbox.take() == Self.frame(UInt64(seq))) }
        #expect(try inbox.take() == nil)
    }

    @Test func aFullInboxRefusesMoreFramesByBytesButAlwaysTakesOneWhenEmpty() throws {
        let inbox = FrameInbox(maxFrames: 100, maxBytes: 1000)
        #expect(inbox.offer(Self.frame(1), size: 600))
        #expect(!inbox.offer(Self.frame(2), size: 600))
        #expect(inbox.bytes == 600)
        _ = try inbox.take()
        // Larger than the whole bound, but alone: accepted, so one big frame cannot wedge it.
        #expect(inbox.offer(Self.frame(2), size: 5000))
        #expect(!inbox.offer(Self.frame(3), size: 1))
        // Hostile sizes neither trap nor get in.
        #expect(!inbox.offer(Self.frame(4), size: .max))
        _ = try inbox.take()
        #expect(inbox.offer(Self.frame(5), size: .max))
        #expect(!inbox.offer(Self.frame(6), size: .max))
        #expect(inbox.bytes == .max)
        _ = try inbox.take()
        #expect(inbox.bytes == 0)
    }

    @Test func aClosedInboxHandsOutWhatItHeldThenItsError() throws {
        let inbox = FrameInbox(maxFrames: 4, maxBytes: 1000)
        #expect(inbox.offer(Self.frame(1), size: 10))
        inbox.close(error: .frameTooLarge(limit: FrameInbox.maxFrameBytes))
        #expect(!inbox.isFinished)
        #expect(try inbox.take() == Self.frame(1))
        #expect(inbox.isFinished)
        #expect(throws: ClientError.frameTooLarge(limit: FrameInbox.maxFrameBytes)) { try inbox.take() }
        #expect(ClientError.frameTooLarge(limit: 1).isConnectionLoss)
    }

    /// A real server sends a burst of 60 messages to a client whose inbox holds 4 frames: the
    /// inbox never holds more, and every message arrives, in order.
    @Test func aBurstThroughASmallInboxArrivesWholeWithoutGrowingIt() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        await bob.close()
        for index in 0..<60 { _ = try await alice.send("burst \(index)", to: "g") }
        let original = FrameInbox.defaultBounds.withLock { $0 }
        FrameInbox.defaultBounds.withLock { $0 = (4, 1 << 20) }
        defer { FrameInbox.defaultBounds.withLock { $0 = original } }
        try await bob.sync()
        let texts = try await bob.history("g").map(\.text).filter { $0.hasPrefix("burst ") }
        #expect(texts == (0..<60).map { "burst \($0)" })
        let peak = await bob.peakQueuedFrames ?? .max
        #expect(peak <= 4)
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }

    /// The server goes away under an open connection: once the client has seen that connection
    /// end, the next command reconnects and replays from the acknowledged cursor, instead of
    /// failing on the dead socket until the program restarts.
    @Test func aLostConnectionIsReplacedByTheNextCommand() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await bob.pump(timeout: .milliseconds(100))
        let port = harness.port
        await harness.stop()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let aliceDone = await alice.isConnectionClosed
            let bobDone = await bob.isConnectionClosed
            if aliceDone && bobDone { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let aliceClosed = await alice.isConnectionClosed
        let bobClosed = await bob.isConnectionClosed
        #expect(aliceClosed == true && bobClosed == true)
        try await harness.start(port: port)
        #expect(try await alice.send("after the restart", to: "g") != .queued)
        let changed = try await bob.pump(timeout: .seconds(2))
        #expect(changed == ["g"])
        #expect(try await bob.history("g").last?.text == "after the restart")
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }
}
