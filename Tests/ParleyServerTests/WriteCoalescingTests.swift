import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ParleyServer

/// The server's outbound writes are gathered per connection and flushed once per turn of the
/// event loop (issue 15): several frames leave as one buffer, in order, and nothing written
/// and flushed is lost to a close that follows it.
@Suite struct WriteCoalescingTests {
    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        return channel
    }

    private func buffer(_ byte: UInt8, count: Int) -> ByteBuffer {
        ByteBuffer(bytes: [UInt8](repeating: byte, count: count))
    }

    /// How a future ended, nil while it has not (an embedded loop completes them inline;
    /// `wait()` would block for ever on one left pending).
    private func outcome(_ future: EventLoopFuture<Void>) -> Result<Void, any Error>? {
        let box = OutcomeBox()
        future.whenComplete { result in box.result.withLock { $0 = result } }
        return box.result.withLock { $0 }
    }

    private func succeeded(_ future: EventLoopFuture<Void>) -> Bool {
        if case .success? = outcome(future) { return true }
        return false
    }

    /// Everything the channel has sent on, one array per buffer.
    private func sent(_ channel: EmbeddedChannel) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.append(Array(buffer.readableBytesView)) }
        return out
    }

    @Test func framesFlushedOneByOneLeaveAsOneBufferAtTheEndOfTheTurn() throws {
        let channel = try channel()
        var futures: [EventLoopFuture<Void>] = []
        for byte in UInt8(1)...3 {
            futures.append(channel.write(buffer(byte, count: 100)))
            channel.flush()
        }
        // Still gathered: the flush waits for the tasks queued on the loop.
        #expect(try sent(channel).isEmpty)
        channel.embeddedEventLoop.run()
        let out = try sent(channel)
        #expect(out.count == 1)
        #expect(
            out.first == [UInt8](repeating: 1, count: 100) + [UInt8](repeating: 2, count: 100)
                + [UInt8](repeating: 3, count: 100)
        )
        #expect(futures.allSatisfy(succeeded))
        _ = try channel.finish()
    }

    /// An empty write with a promise (NIOHTTP1 writes one for the end of a response), right
    /// after a large write left nothing gathered: its promise completes with the flush.
    @Test func anEmptyWritesPromiseCompletes() throws {
        let channel = try channel()
        channel.write(buffer(1, count: WriteCoalescingHandler.copyLimit + 10), promise: nil)
        let empty = channel.write(ByteBuffer())
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(succeeded(empty))
        _ = try channel.finish()
    }

    @Test func aLargeWritePassesAsItIsAndKeepsTheOrder() throws {
        let channel = try channel()
        let large = WriteCoalescingHandler.copyLimit + 10
        channel.write(buffer(1, count: 10), promise: nil)
        channel.write(buffer(2, count: large), promise: nil)
        channel.write(buffer(3, count: 10), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        let out = try sent(channel)
        #expect(out.map(\.count) == [10, large, 10])
        #expect(out.map { $0.first } == [1, 2, 3])
        _ = try channel.finish()
    }

    @Test func gatheredBytesArePassedOnAtTheLimitWithoutWaitingForTheTurn() throws {
        let channel = try channel()
        let frame = 1000
        let frames = WriteCoalescingHandler.gatherLimit / frame + 2
        for _ in 0..<frames { channel.write(buffer(7, count: frame), promise: nil) }
        channel.flush()
        channel.embeddedEventLoop.run()
        let out = try sent(channel)
        // One buffer as soon as the limit is reached, then the rest: never one unbounded buffer.
        #expect(out.count == 2)
        #expect(out.allSatisfy { $0.count < WriteCoalescingHandler.gatherLimit + frame })
        #expect(out.reduce(0) { $0 + $1.count } == frames * frame)
        _ = try channel.finish()
    }

    @Test func aCloseRightAfterAFlushStillSendsWhatWasFlushed() throws {
        let channel = try channel()
        // A WebSocket close frame, then the close, in the same turn of the loop.
        let written = channel.write(buffer(9, count: 4))
        channel.flush()
        let closed = channel.close()
        channel.embeddedEventLoop.run()
        #expect(succeeded(written))
        #expect(succeeded(closed))
        #expect(try sent(channel) == [[9, 9, 9, 9]])
    }

    @Test func writesNeverFlushedAreNotSentByAClose() throws {
        let channel = try channel()
        let written = channel.write(buffer(5, count: 8))
        let closed = channel.close()
        channel.embeddedEventLoop.run()
        #expect(succeeded(closed))
        #expect(!succeeded(written))
        #expect(try sent(channel).isEmpty)
    }
}

private final class OutcomeBox: Sendable {
    let result = Mutex<Result<Void, any Error>?>(nil)
}
