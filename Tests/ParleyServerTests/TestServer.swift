import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import MLS
import NIOCore
import NIOHTTP1
import NIOSSL
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyServer

/// A real server on an ephemeral loopback port with its own data directory.
final class TestServer: LoginTransport, @unchecked Sendable {
    let server: ParleyServer
    let port: Int
    let directory: String
    let client: HTTPClient
    private let task: Task<Void, Error>

    static func start(
        directory: String? = nil,
        logger custom: Logger? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory ?? NSTemporaryDirectory() + "parley-test-" + UUID().uuidString
        configuration.port = 0
        configuration.passwordHashCost = TestServer.passwordHashCost
        configure(&configuration)
        if StorageKind.current == .postgres, configuration.database == nil {
            configuration.database = try TestPostgres.database(for: configuration.dataDirectory)
        }
        var logger = custom ?? Logger(label: "parley-test")
        if custom == nil { logger.logLevel = .warning }
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run(handleSignals: false) { port in portContinuation.yield(port) } }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ServerError.configuration("the server did not start") }
        return TestServer(server: server, port: port, directory: configuration.dataDirectory, task: task)
    }

    /// scrypt's cost for test servers: 2^10 instead of 2^15, so the suites' thousands of password
    /// hashes (a debug build's scrypt is slow) do not crowd out everything else on two cores.
    static let passwordHashCost = 10

    /// Runs `body` against a fresh server and always stops it afterwards.
    static func with(
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: (TestServer) async throws -> Void
    ) async throws {
        let server = try await start(configure: configure)
        do {
            try await body(server)
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }

    private init(server: ParleyServer, port: Int, directory: String, task: Task<Void, Error>) {
        self.server = server
        self.port = port
        self.directory = directory
        self.task = task
        client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(tlsConfiguration: Self.pinned(server.certificateDER))
        )
    }

    /// A test that throws before `stop()` fails alone instead of crashing the whole test process:
    /// AsyncHTTPClient traps (debug builds) on a client released while still running.
    deinit {
        task.cancel()
        client.shutdown { _ in }
    }

    /// Trusts exactly the server's certificate: pinning, as the client does.
    static func pinned(_ der: [UInt8]) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try! NIOSSLCertificate(bytes: der, format: .der)])
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    var tls: TLSConfiguration { Self.pinned(server.certificateDER) }

    func stop() async throws {
        await server.shutdown()
        _ = try await task.value
        try await client.shutdown()
        server.storage.closeForTest()
    }

    func postJSON(_ path: String, _ body: Data) async throws -> Data { try await request(.POST, path, body: body) }

    /// One HTTP request; a non-2xx answer is thrown as its `ErrorBody`.
    @discardableResult
    func request(_ method: HTTPMethod, _ path: String, token: String? = nil, body: Data? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)\(path)")
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw (try? WireJSON.decode(API.ErrorResponse.self, from: data).error)
                ?? ErrorBody(.internalError, "HTTP \(response.status.code)")
        }
        return data
    }

    func request<T: Decodable>(
        _ method: HTTPMethod,
        _ path: String,
        token: String? = nil,
        json: some Encodable,
        as _: T.Type
    ) async throws -> T {
        try WireJSON.decode(T.self, from: try await request(method, path, token: token, body: WireJSON.encode(json)))
    }

    /// The login flow the client uses: a challenge for `username`, signed with `keys` (the
    /// device's signature key pair).
    func login(_ username: String, password: String, keys: SignatureKeyPair) async throws -> API.Session {
        try await API.openSession(
            via: self,
            username: username,
            password: password,
            keys: keys,
            serverCertificate: server.certificateDER
        )
    }

    func get<T: Decodable>(_ path: String, token: String?, as _: T.Type) async throws -> T {
        try WireJSON.decode(T.self, from: try await request(.GET, path, token: token))
    }
}

/// A device's WebSocket: received frames queue up for `next()`; `send` writes one.
final class TestSocket: Sendable {
    final class Buffer: Sendable {
        let state = Mutex<(frames: [ServerFrame], finished: Bool)>(([], false))
    }
    private let buffer = Buffer()
    private let outgoing: AsyncStream<String>.Continuation
    let closed: Task<WebSocketCloseFrame?, Error>

    init(server: TestServer, token: String) {
        let (outgoingStream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        var logger = Logger(label: "test-ws")
        logger.logLevel = .warning
        let buffer = self.buffer
        closed = Task {
            defer { buffer.state.withLock { $0.finished = true } }
            return try await WebSocketClient.connect(
                url: "wss://127.0.0.1:\(server.port)/v1/ws",
                configuration: .init(
                    maxFrameSize: 8 << 20,
                    additionalHeaders: [.authorization: "Bearer \(token)"],
                    sniHostname: "localhost"
                ),
                tlsConfiguration: server.tls,
                logger: logger
            ) { inbound, outbound, _ in
                let writer = Task {
                    for await text in outgoingStream { try await outbound.write(.text(text)) }
                }
                defer { writer.cancel() }
                for try await message in inbound.messages(maxSize: 8 << 20) {
                    if case .text(let text) = message,
                        let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8))
                    {
                        buffer.state.withLock { $0.frames.append(frame) }
                    }
                }
            }
        }
    }

    func send(_ frame: ClientFrame) throws {
        outgoing.yield(String(decoding: try WireJSON.encode(frame), as: UTF8.self))
    }

    func sendRaw(_ text: String) { outgoing.yield(text) }

    /// The next frame, or nil if none arrives in time or the socket closed.
    func next(timeout: Duration = .seconds(10)) async -> ServerFrame? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (frame, finished) = buffer.state.withLock { state -> (ServerFrame?, Bool) in
                state.frames.isEmpty ? (nil, state.finished) : (state.frames.removeFirst(), false)
            }
            if let frame { return frame }
            if finished { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Frames until `replayFinished`, which is not included.
    func replay() async -> [ServerFrame] {
        var frames: [ServerFrame] = []
        while let frame = await next(), frame != .replayFinished { frames.append(frame) }
        return frames
    }

    func close() {
        outgoing.finish()
        closed.cancel()
    }
}

/// Every frame a socket receives until it closes; fails the test if it is still open after `timeout`
/// (far above any wait the server has: a closed socket returns at once, so only a failure waits).
func framesUntilClosed(
    _ socket: TestSocket,
    timeout: Duration = .seconds(45),
    sourceLocation: SourceLocation = #_sourceLocation
) async -> [ServerFrame] {
    var frames: [ServerFrame] = []
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        guard let frame = await socket.next(timeout: deadline - ContinuousClock.now) else { break }
        frames.append(frame)
    }
    // `next` gives nil before the deadline only when the socket has closed.
    #expect(ContinuousClock.now < deadline, "the socket is still open", sourceLocation: sourceLocation)
    return frames
}
