import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyClient
@testable import ParleyServer

/// Review s5 M4: closing a ``ServerSocket`` must end the connection whatever the server does.
@Suite struct ServerSocketCloseTests {
    typealias Upgrade = ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>

    /// Whether the hostile server saw its connection end.
    final class Ended: Sendable {
        let value = Mutex(false)
    }

    /// A TLS WebSocket server that never reads what the client sends, so it never answers
    /// (completes) the client's close, and keeps sending a frame every 20 ms until a write
    /// fails. Returns its port, certificate and task.
    static func neverClosingServer(_ ended: Ended) async throws -> (Int, [UInt8], Task<Void, any Error>) {
        let (identity, _) = try ServerIdentity.generate(host: "127.0.0.1")
        let tls = try identity.tlsConfiguration()
        let frame = String(decoding: try WireJSON.encode(ServerFrame.replayFinished), as: UTF8.self)
        let port = Mutex(0)
        var logger = Logger(label: "never-closing-server")
        logger.logLevel = .critical
        let shouldUpgrade: @Sendable (HTTPRequest, any Channel, Logger) async throws -> Upgrade = { _, _, _ in
            .upgrade([:]) { _, outbound, _ in
                do {
                    while true {
                        try await outbound.write(.text(frame))
                        try await Task.sleep(for: .milliseconds(20))
                    }
                } catch {}
                ended.value.withLock { $0 = true }
            }
        }
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { _, _ in Response(status: .notFound) },
            server: HTTPServerBuilder { responder in
                let http = HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: .init(),
                    shouldUpgrade: shouldUpgrade
                )
                return try TLSChannel(http, tlsConfiguration: tls)
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "Parley"),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port ?? 0 } },
            logger: logger
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for _ in 0..<2000 where port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        return (port.withLock { $0 }, identity.certificateDER, task)
    }

    /// The server keeps the connection open after the client closed it: the client's side
    /// must still end at once (closed inbox, no more frames kept) and its socket must close,
    /// which the server sees as its writes failing.
    @Test func closingEndsTheConnectionEvenIfTheServerNeverCompletesTheClose() async throws {
        let ended = Ended()
        let (port, certificate, server) = try await Self.neverClosingServer(ended)
        defer { server.cancel() }
        #expect(port != 0)
        let api = try ServerAPI(url: "https://127.0.0.1:\(port)", certificate: certificate)
        let socket = try ServerSocket(api: api, token: "token")
        #expect(try await socket.next(timeout: .seconds(10)) == .replayFinished)
        socket.close()
        #expect(socket.isClosed, "the inbox stayed open after close()")
        // TLS waits for the peer's close_notify, which this server never sends, up to NIOSSL's
        // shutdown timeout (5 s), then the socket closes: bounded, where it used to be never.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, !ended.value.withLock({ $0 }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(ended.value.withLock { $0 }, "the socket stayed open for a server that never completed the close")
        await #expect(throws: ClientError.self) { try await socket.next(timeout: .milliseconds(10)) }
        await api.shutdown()
    }
}
