import Foundation
import HummingbirdWSClient
import Logging
import NIOSSL
import ParleyProtocol
import Synchronization

/// The device's WebSocket: incoming frames queue up for ``next(timeout:)``.
final class ServerSocket: Sendable {
    private final class State: Sendable {
        let inner = Mutex<(frames: [ServerFrame], closed: Bool, error: String?)>(([], false, nil))
    }

    private let state = State()
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<Void, Never>

    init(api: ServerAPI, token: String) throws {
        let (stream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        let state = self.state
        let tls = try CertificatePin.pinned(api.certificate)
        let url = "wss://\(api.host):\(api.port)/v1/ws"
        // NIOSSL refuses IP addresses as SNI; the server does not need SNI.
        let sni = api.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? "localhost" : api.host
        var logger = Logger(label: "parley-client-ws")
        logger.logLevel = .critical
        task = Task {
            do {
                _ = try await WebSocketClient.connect(
                    url: url,
                    configuration: .init(maxFrameSize: 16 << 20, additionalHeaders: [.authorization: "Bearer \(token)"], autoPing: .enabled(timePeriod: .seconds(30)), sniHostname: sni),
                    tlsConfiguration: tls, logger: logger
                ) { inbound, outbound, _ in
                    let writer = Task {
                        for await text in stream { try await outbound.write(.text(text)) }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    defer { writer.cancel() }
                    for try await message in inbound.messages(maxSize: 16 << 20) {
                        guard case .text(let text) = message, let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8)) else { continue }
                        state.inner.withLock { $0.frames.append(frame) }
                    }
                }
                state.inner.withLock { $0.closed = true }
            } catch {
                state.inner.withLock { $0.closed = true; $0.error = "\(error)" }
            }
        }
    }

    func send(_ frame: ClientFrame) throws {
        outgoing.yield(String(decoding: try WireJSON.encode(frame), as: UTF8.self))
    }

    /// The next frame; nil when none arrives within `timeout`.
    /// Throws once the connection is closed and every frame has been read.
    func next(timeout: Duration) async throws -> ServerFrame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (frame, closed, error) = state.inner.withLock { s -> (ServerFrame?, Bool, String?) in
                s.frames.isEmpty ? (nil, s.closed, s.error) : (s.frames.removeFirst(), false, nil)
            }
            if let frame { return frame }
            if closed { throw ClientError.unreachable(error ?? "the connection closed") }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func close() {
        outgoing.finish()
    }
}
