import HummingbirdCore
import Logging
import NIOCore

/// Wraps a child channel so that what its handlers write goes out in as few TLS records and
/// system calls as possible (issue 15). Placed right inside TLS, it sees the plaintext the
/// HTTP and WebSocket encoders write.
struct WriteCoalescingChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Gathers the bytes written to one connection into one buffer and flushes them once per turn
/// of the event loop, however many frames were written and flushed meanwhile.
///
/// Without it, every WebSocket frame the server sends costs two TLS records (NIO's frame
/// encoder writes the header as its own buffer, and NIOSSL seals each buffer as a record),
/// one pass of `NIOSSLHandler.flush` and one `write(2)`: the largest single cost in the
/// session 7 profile, paid per frame per recipient. Here the frames written to a socket
/// while the event loop works through its queued tasks become one buffer, sealed as few
/// 16 KiB records, written with one system call.
///
/// What is not changed: the order of bytes (a large buffer passed on as it is goes after
/// what was gathered before it); backpressure (everything gathered is passed on by the end
/// of the loop's current batch of tasks, where the channel counts it against its
/// writability as before, so the session's bounded queue still fills behind a client that
/// does not read); and a close (what was flushed is passed on before the close, so a close
/// frame written just before it is still sent).
final class WriteCoalescingHandler: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A write at least this large is passed on as it is, not copied: a gathered buffer is
    /// only worth it for the small frames a busy connection sends many of.
    static let copyLimit = 16 << 10
    /// Gathered bytes are passed on (without a flush) once they reach this, so one buffer
    /// never grows past a few records' worth.
    static let gatherLimit = 64 << 10

    private var gathered: ByteBuffer?
    private var promises: [EventLoopPromise<Void>] = []
    private var flushScheduled = false
    /// False once the handler left the pipeline (the channel closed): a flush scheduled
    /// before that finds nothing to do.
    private var inPipeline = true

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        guard buffer.readableBytes < Self.copyLimit else {
            passOnGathered(context: context)
            context.write(data, promise: promise)
            return
        }
        if gathered == nil {
            gathered = context.channel.allocator.buffer(capacity: max(4096, buffer.readableBytes))
        }
        gathered?.writeBuffer(&buffer)
        if let promise { promises.append(promise) }
        if let count = gathered?.readableBytes, count >= Self.gatherLimit {
            passOnGathered(context: context)
        }
    }

    /// Flushes at the end of the tasks already queued on the event loop: the writes of other
    /// frames for this connection that are queued there join this flush.
    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushNow(context: context)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What was written and flushed before the close goes out before it, as without this
        // handler; what was written and never flushed is passed on unflushed, as it was.
        passOnGathered(context: context)
        if flushScheduled {
            flushScheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        inPipeline = false
        gathered = nil
        let failed = promises
        promises = []
        for promise in failed { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    private func flushNow(context: ChannelHandlerContext) {
        guard flushScheduled, inPipeline else { return }
        flushScheduled = false
        passOnGathered(context: context)
        context.flush()
    }

    /// Writes the gathered bytes on as one buffer; their writers' promises complete with it.
    private func passOnGathered(context: ChannelHandlerContext) {
        // An empty write with a promise still goes on, so its promise completes.
        guard let buffer = gathered, buffer.readableBytes > 0 || !promises.isEmpty else { return }
        gathered = nil
        let waiting = promises
        promises = []
        var promise: EventLoopPromise<Void>?
        if waiting.count == 1 {
            promise = waiting[0]
        } else if !waiting.isEmpty {
            let combined = context.eventLoop.makePromise(of: Void.self)
            for each in waiting { combined.futureResult.cascade(to: each) }
            promise = combined
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
