import Foundation
import HummingbirdWSClient
import Logging
import MLS
import NIOSSL
import ParleyProtocol
import Synchronization

/// One device's TLS WebSocket to the server, shared by the benches (`load`, `large-group`):
/// it writes the frames it is given in order and hands every server frame it decodes to its
/// owner, with when it arrived.
final class BenchSocket: Sendable {
    /// When a frame arrived, read before it was decoded, and whether the connection's replay
    /// had finished before it (`replayFinished` came earlier).
    struct Arrival: Sendable {
        var instant: ContinuousClock.Instant
        var uptimeNanoseconds: UInt64
        var live: Bool
    }

    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<Void, Never>

    /// - Parameters:
    ///   - maxFrameSize: the largest frame and message accepted from the server.
    ///   - onEnd: called once the connection is over unless it was closed here (`close`), with
    ///     whether it got as far as `replayFinished`.
    ///   - onFrame: each server frame, in order.
    init(
        url: String,
        token: String,
        tls: TLSConfiguration,
        maxFrameSize: Int,
        onEnd: @escaping @Sendable (_ wasReady: Bool) -> Void = { _ in },
        onFrame: @escaping @Sendable (ServerFrame, Arrival) -> Void
    ) {
        let (stream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        var logger = Logger(label: "bench-ws")
        logger.logLevel = .critical
        task = Task {
            let ready = ReadyFlag()
            defer { if !Task.isCancelled { onEnd(ready.isSet) } }
            _ = try? await WebSocketClient.connect(
                url: url,
                configuration: .init(
                    maxFrameSize: maxFrameSize,
                    additionalHeaders: [.authorization: "Bearer \(token)"],
                    sniHostname: "localhost"
                ),
                tlsConfiguration: tls,
                logger: logger
            ) { inbound, outbound, _ in
                let writer = Task { for await text in stream { try await outbound.write(.text(text)) } }
                defer { writer.cancel() }
                for try await message in inbound.messages(maxSize: maxFrameSize) {
                    let arrival = Arrival(
                        instant: .now,
                        uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds,
                        live: ready.isSet
                    )
                    guard case .text(let text) = message,
                        let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8))
                    else { continue }
                    if case .replayFinished = frame { ready.set() }
                    onFrame(frame, arrival)
                }
            }
        }
    }

    func send(_ frame: ClientFrame) {
        outgoing.yield(String(decoding: (try? WireJSON.encode(frame)) ?? Data(), as: UTF8.self))
    }

    func close() {
        outgoing.finish()
        task.cancel()
    }

    /// The send time a bench message carries in its authenticated data (8 bytes, big-endian
    /// `DispatchTime` uptime nanoseconds), if the message is one.
    static func sentAt(_ message: ServerFrame.Message) -> UInt64? {
        guard case .privateMessage(let decoded)? = try? MLSMessage(tlsEncoded: [UInt8](message.message)),
            decoded.authenticatedData.count == 8
        else { return nil }
        return decoded.authenticatedData.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Whether a connection got as far as `replayFinished`.
final class ReadyFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
