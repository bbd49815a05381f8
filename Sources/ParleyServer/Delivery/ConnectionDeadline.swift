import HummingbirdCore
import Logging
import NIOCore

/// Wraps a child channel so that a connection which has not finished its TLS handshake
/// and sent a whole first request head within `timeout` of being accepted is closed
/// (finding 12). Placed inside TLS, it sees decrypted bytes: nothing arrives until the
/// handshake completes, and the head is complete at the first blank line.
///
/// Later requests on a kept-alive connection are bounded by the HTTP idle timeout, and
/// WebSockets by the ping interval (hummingbird-websocket's auto-ping closes a socket
/// whose pong has not come back by the next ping).
struct ConnectionDeadlineChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FirstRequestDeadlineHandler(timeout: timeout))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Closes the channel unless the end of the first request head ("\r\n\r\n") is read in
/// time; then steps out of the pipeline.
final class FirstRequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// The last bytes seen, so a blank line split across reads is still found.
    private var tail: [UInt8] = []
    private static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if deadline != nil {
            tail += buffer.readableBytesView
            if tail.firstRange(of: Self.headEnd) != nil {
                deadline?.cancel()
                deadline = nil
                tail = []
                context.fireChannelRead(data)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            // Only the last few bytes matter for a split "\r\n\r\n".
            tail = Array(tail.suffix(Self.headEnd.count - 1))
        }
        context.fireChannelRead(data)
    }
}
