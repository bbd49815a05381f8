import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import ParleyProtocol
import Synchronization

@testable import ParleyServer

/// A hostile server for the tests: a TLS proxy in front of a real ``ParleyServer``, between
/// real clients and it. Clients talk to the proxy as to their server (a fresh home pins its
/// certificate on first use, as a user would); the proxy forwards HTTP and the WebSocket and,
/// per recipient, drops, delays, holds and reorders, duplicates, replays and rewrites frames,
/// injects forged ones, and rewrites HTTP responses.
///
/// The operator of a compromised server holds its TLS key, so the proxy and the real server
/// share one self-signed identity: the login proof a client binds to the pinned certificate
/// (API.Login) is then valid at the real server, exactly as at a server whose operator turned.
final class HostileServerProxy: Sendable {
    /// What the proxy does with one server frame on its way to one recipient.
    enum Verdict: Sendable {
        /// Deliver these frames instead (none drops it; the same twice duplicates it).
        case deliver([ServerFrame])
        /// Keep it until ``release(to:reversed:)``.
        case hold
        /// Deliver these after a pause; later frames wait behind them.
        case delay(Duration, [ServerFrame])
    }

    /// A rule sees each server frame for a recipient (a username) and decides its fate.
    typealias Rule = @Sendable (_ recipient: String, _ frame: ServerFrame) -> Verdict
    /// Rewrites an HTTP response body: (method, path, recipient, body) -> body.
    typealias HTTPRewrite = @Sendable (_ method: String, _ path: String, _ recipient: String?, _ body: Data) -> Data

    private struct State {
        var rule: Rule?
        var httpRewrite: HTTPRewrite?
        var usersByToken: [String: String] = [:]
        var connections: [String: [UUID: AsyncStream<String>.Continuation]] = [:]
        var held: [String: [ServerFrame]] = [:]
        var delivered: [String: [ServerFrame]] = [:]
        var fromClients: [String: [ClientFrame]] = [:]
    }

    let upstream: ParleyServer
    private let upstreamTask: Task<Void, Error>
    private let upstreamPort: Int
    private let identity: ServerIdentity
    private let client: HTTPClient
    private let state = Mutex(State())
    private let proxyTask = Mutex<Task<Void, Error>?>(nil)
    private let portValue = Mutex(0)
    let logger: Logger

    var port: Int { portValue.withLock { $0 } }
    var url: String { "https://127.0.0.1:\(port)" }
    var certificateDER: [UInt8] { identity.certificateDER }

    /// Starts a real server in `directory` and the proxy in front of it, both on loopback.
    static func start(directory: String) async throws -> HostileServerProxy {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (identity, pem) = try ServerIdentity.generate(host: "127.0.0.1")
        let certificatePath = directory + "/hostile-certificate.pem"
        let keyPath = directory + "/hostile-key.pem"
        try pem.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try identity.privateKeyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory + "/server"
        configuration.port = 0
        configuration.passwordHashCost = Harness.passwordHashCost
        configuration.tlsCertificate = certificatePath
        configuration.tlsPrivateKey = keyPath
        var logger = Logger(label: "hostile-server")
        logger.logLevel = .error
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run(handleSignals: false) { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let upstreamPort = await iterator.next() ?? 0
        let proxy = try HostileServerProxy(
            upstream: server,
            task: task,
            port: upstreamPort,
            identity: identity,
            logger: logger
        )
        try await proxy.listen()
        return proxy
    }

    private init(
        upstream: ParleyServer,
        task: Task<Void, Error>,
        port: Int,
        identity: ServerIdentity,
        logger: Logger
    )
        throws
    {
        self.upstream = upstream
        upstreamTask = task
        upstreamPort = port
        self.identity = identity
        self.logger = logger
        var configuration = HTTPClient.Configuration(tlsConfiguration: try Self.pinned(identity.certificateDER))
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func pinned(_ der: [UInt8]) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try NIOSSLCertificate(bytes: der, format: .der)])
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    func stop() async {
        proxyTask.withLock { $0 }?.cancel()
        _ = try? await proxyTask.withLock { $0 }?.value
        try? await client.shutdown()
        await upstream.shutdown()
        _ = try? await upstreamTask.value
    }

    // MARK: Tampering

    /// Sets the rule every server frame passes (nil: deliver everything unchanged).
    func setRule(_ rule: Rule?) { state.withLock { $0.rule = rule } }

    /// Sets the HTTP response rewrite (nil: responses unchanged).
    func setHTTPRewrite(_ rewrite: HTTPRewrite?) { state.withLock { $0.httpRewrite = rewrite } }

    /// Sends `frame` to every open connection of `recipient`, as if the server had.
    func inject(_ frame: ServerFrame, to recipient: String) throws {
        let text = String(decoding: try WireJSON.encode(frame), as: UTF8.self)
        let sinks = state.withLock { Array(($0.connections[recipient] ?? [:]).values) }
        for sink in sinks { sink.yield(text) }
        state.withLock { $0.delivered[recipient, default: []].append(frame) }
    }

    /// Delivers the frames held for `recipient`, in order or reversed (a reorder).
    func release(to recipient: String, reversed: Bool = false) throws {
        let frames = state.withLock { state in
            defer { state.held[recipient] = [] }
            return state.held[recipient] ?? []
        }
        for frame in reversed ? frames.reversed() : frames { try inject(frame, to: recipient) }
    }

    /// Frames held for `recipient` so far.
    func held(for recipient: String) -> [ServerFrame] { state.withLock { $0.held[recipient] ?? [] } }

    /// Every frame delivered to `recipient`, forged ones included: material for replays.
    func delivered(to recipient: String) -> [ServerFrame] { state.withLock { $0.delivered[recipient] ?? [] } }

    /// Every frame `recipient`'s devices sent on their WebSockets.
    func sent(by recipient: String) -> [ClientFrame] { state.withLock { $0.fromClients[recipient] ?? [] } }

    /// Whether `recipient` has a WebSocket open through the proxy.
    func isConnected(_ recipient: String) -> Bool {
        state.withLock { !($0.connections[recipient] ?? [:]).isEmpty }
    }
}

// MARK: - HTTP

extension HostileServerProxy {
    private func listen() async throws {
        let tls = try identity.tlsConfiguration()
        let configuration = HTTP1WebSocketUpgradeChannel.Configuration(ws: .init(maxFrameSize: 64 << 20))
        let shouldUpgrade = webSocketUpgrade()
        // Cancelling the proxy at the end of a test is its normal shutdown, not an error to log.
        var quiet = logger
        quiet.logLevel = .critical
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { [self] request, _ in try await forward(request) },
            server: HTTPServerBuilder { responder in
                let http = HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: configuration,
                    shouldUpgrade: shouldUpgrade
                )
                return try TLSChannel(http, tlsConfiguration: tls)
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "Parley"),
            onServerRunning: { [self] channel in portValue.withLock { $0 = channel.localAddress?.port ?? 0 } },
            logger: quiet
        )
        proxyTask.withLock { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        for _ in 0..<2000 where port == 0 { try await Task.sleep(for: .milliseconds(5)) }
        guard port != 0 else { throw ServerError.configuration("the hostile proxy did not start") }
    }

    /// Forwards one request to the real server and its response back, rewritten if a rewrite
    /// is set; learns which user each session token belongs to.
    private func forward(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 4 << 20)
        var upstreamRequest = HTTPClientRequest(url: "https://127.0.0.1:\(upstreamPort)\(request.uri.string)")
        upstreamRequest.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where field.name == .authorization || field.name == .contentType {
            upstreamRequest.headers.add(name: field.name.rawName, value: field.value)
        }
        upstreamRequest.body = .bytes(body)
        let response = try await client.execute(upstreamRequest, timeout: .seconds(60))
        var data = Data(buffer: try await response.body.collect(upTo: 32 << 20))
        let token = request.headers[.authorization].flatMap { Routes.token(from: $0) }
        learnSession(requestBody: Data(buffer: body), responseBody: data)
        let (rewrite, recipient) = state.withLock { state in
            (state.httpRewrite, token.flatMap { state.usersByToken[$0] })
        }
        if let rewrite { data = rewrite(request.method.rawValue, request.uri.path, recipient, data) }
        var headers = HTTPFields()
        if let type = response.headers.first(name: "Content-Type") { headers[.contentType] = type }
        return Response(
            status: .init(code: Int(response.status.code)),
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(data: data))
        )
    }

    /// A response carrying a session token answers a request naming the user (a login).
    private func learnSession(requestBody: Data, responseBody: Data) {
        struct Named: Decodable { var username: String }
        guard let session = try? WireJSON.decode(API.Session.self, from: responseBody),
            let named = try? WireJSON.decode(Named.self, from: requestBody)
        else { return }
        state.withLock { $0.usersByToken[session.token] = named.username }
    }
}

// MARK: - WebSocket

extension HostileServerProxy {
    typealias Upgrade = ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>

    private func webSocketUpgrade() -> @Sendable (HTTPRequest, any Channel, Logger) async throws -> Upgrade {
        { [self] request, _, _ in
            guard request.path == "/v1/ws", let authorization = request.headerFields[.authorization] else {
                return .dontUpgrade
            }
            let recipient = Routes.token(from: authorization).flatMap { token in
                state.withLock { $0.usersByToken[token] }
            }
            return .upgrade([:]) { inbound, outbound, _ in
                await self.relay(
                    recipient: recipient ?? "?",
                    authorization: authorization,
                    inbound: inbound,
                    outbound: outbound
                )
            }
        }
    }

    /// Connects to the real server as the client and relays both ways; server frames go
    /// through the rule. Every frame for the client leaves through one writer, injected
    /// ones included, so frames are never interleaved mid-write.
    private func relay(
        recipient: String,
        authorization: String,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async {
        let id = UUID()
        let (toClient, sink) = AsyncStream<String>.makeStream()
        state.withLock { $0.connections[recipient, default: [:]][id] = sink }
        defer { state.withLock { _ = $0.connections[recipient]?.removeValue(forKey: id) } }
        let writer = Task {
            for await text in toClient { try await outbound.write(.text(text)) }
        }
        defer { writer.cancel() }
        var logger = logger
        logger.logLevel = .critical
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: 64 << 20,
            additionalHeaders: [.authorization: authorization],
            sniHostname: "localhost"
        )
        _ = try? await WebSocketClient.connect(
            url: "wss://127.0.0.1:\(upstreamPort)/v1/ws",
            configuration: configuration,
            tlsConfiguration: try Self.pinned(identity.certificateDER),
            logger: logger
        ) { [self] upInbound, upOutbound, _ in
            let up = Task {
                for try await message in inbound.messages(maxSize: 64 << 20) {
                    guard case .text(let text) = message else { continue }
                    if let frame = try? WireJSON.decode(ClientFrame.self, from: Data(text.utf8)) {
                        state.withLock { $0.fromClients[recipient, default: []].append(frame) }
                    }
                    try await upOutbound.write(.text(text))
                }
                try await upOutbound.close(.normalClosure, reason: nil)
            }
            defer { up.cancel() }
            for try await message in upInbound.messages(maxSize: 64 << 20) {
                guard case .text(let text) = message else { continue }
                await pass(text, to: recipient, sink: sink)
            }
        }
        sink.finish()
        _ = await writer.result
    }

    /// Applies the rule to one server frame for `recipient`.
    private func pass(_ text: String, to recipient: String, sink: AsyncStream<String>.Continuation) async {
        guard let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8)) else {
            sink.yield(text)
            return
        }
        let verdict = state.withLock { $0.rule }?(recipient, frame) ?? .deliver([frame])
        let frames: [ServerFrame]
        switch verdict {
        case .deliver(let replacement):
            frames = replacement
        case .hold:
            state.withLock { $0.held[recipient, default: []].append(frame) }
            return
        case .delay(let pause, let replacement):
            try? await Task.sleep(for: pause)
            frames = replacement
        }
        for frame in frames {
            guard let encoded = try? WireJSON.encode(frame) else { continue }
            sink.yield(String(decoding: encoded, as: UTF8.self))
            state.withLock { $0.delivered[recipient, default: []].append(frame) }
        }
    }
}
