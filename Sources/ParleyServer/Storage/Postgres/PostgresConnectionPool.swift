import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// A bounded set of connections to one database for blocking callers.
///
/// `ServerStorage` is synchronous (the delivery actor, the log writer's thread and the routes call
/// it and wait), so each call waits here for a future of postgres-nio's. The connections live on
/// an event loop group of their own, never the server's: a caller on one of the server's loops
/// (or the cooperative pool) blocks only itself, while our loop stays free to complete the future
/// it waits on. Waiting on our own loop would deadlock, so it is refused
/// (``PostgresStorageError/calledOnEventLoop``); nothing of ours calls storage from there.
final class PostgresConnectionPool: Sendable {
    let url: DatabaseURL
    private let eventLoops: MultiThreadedEventLoopGroup
    private let configuration: PostgresConnection.Configuration
    /// postgres-nio logs queries with their bound values at debug level: kept to warnings, so
    /// password hashes and session token hashes never reach a log.
    let logger: Logger
    private let idle = Mutex<[PostgresConnection]>([])
    private let permits: DispatchSemaphore
    private let nextID = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)

    init(url: DatabaseURL, maxConnections: Int) throws {
        self.url = url
        var logger = Logger(label: "parley.postgres")
        logger.logLevel = .warning
        self.logger = logger
        let tls: PostgresConnection.Configuration.TLS
        if url.requireTLS {
            tls = .require(try NIOSSLContext(configuration: try Self.tlsConfiguration(url)))
        } else {
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: tls
        )
        configuration.options.additionalStartupParameters = Self.sessionSettings
        self.configuration = configuration
        eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        permits = DispatchSemaphore(value: max(1, maxConnections))
    }

    /// The server's certificate is verified: against the system's roots, or the CA at `sslrootcert`.
    private static func tlsConfiguration(_ url: DatabaseURL) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        guard let path = url.rootCertificate else { return configuration }
        do {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
        } catch {
            throw PostgresStorageError.unreachable(url, reason: "the CA certificate sslrootcert names cannot be read")
        }
        return configuration
    }

    /// Set on every connection at startup, whatever the role's or the database's defaults say.
    /// `synchronous_commit = on`: a message is acknowledged only once its COMMIT is flushed (a
    /// role default of `off` would acknowledge messages a crash then loses). The timeouts bound
    /// what a stuck peer can hold: a lock held elsewhere (lock_timeout) fails only the entries of
    /// the group it guards, never the batch (``PostgresStorage/append(batch:)``); a statement or
    /// an open transaction cannot hold a connection and its locks forever.
    static let sessionSettings: [(String, String)] = [
        ("synchronous_commit", "on"),
        ("lock_timeout", "5s"),
        ("statement_timeout", "30s"),
        ("idle_in_transaction_session_timeout", "60s"),
    ]

    /// Runs `body` on a connection of the pool, waiting for one when all are busy. A connection
    /// that broke is dropped, never handed out again.
    func withConnection<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        guard !isClosed.load(ordering: .acquiring) else { throw PostgresStorageError.closed }
        guard !eventLoops.makeIterator().contains(where: { $0.inEventLoop }) else {
            throw PostgresStorageError.calledOnEventLoop
        }
        permits.wait()
        defer { permits.signal() }
        let connection = try take()
        defer { giveBack(connection) }
        return try body(PostgresSession(connection: connection, logger: logger))
    }

    /// A new connection (the pool's, or the listener's outside it). The socket is opened here, with
    /// TCP keepalive, so a peer that vanished without a FIN (a crashed host, a dropped NAT entry)
    /// is noticed by the kernel instead of leaving a connection that waits forever.
    func connect(applicationName: String = "parley") -> EventLoopFuture<PostgresConnection> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let loop = eventLoops.next()
        let (configuration, logger, host) = (configuration, logger, url.host)
        return Self.bootstrap(loop).connect(host: url.host, port: url.port).flatMap { channel in
            var established = PostgresConnection.Configuration(
                establishedChannel: channel,
                tls: configuration.tls,
                username: configuration.username,
                password: configuration.password,
                database: configuration.database
            )
            established.options = configuration.options
            established.options.additionalStartupParameters.append(("application_name", applicationName))
            // As postgres-nio does for a host it connects to itself: SNI and verification by name,
            // except for an address literal.
            if (try? SocketAddress(ipAddress: host, port: 0)) == nil { established.options.tlsServerName = host }
            return PostgresConnection.connect(on: loop, configuration: established, id: id, logger: logger)
                .flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
        }
    }

    /// Seconds of TCP keepalive: idle before the first probe, between probes, and probes lost
    /// before the kernel closes the connection (about a minute in all).
    static let keepAlive = (idle: 30, interval: 10, count: 3)

    private static func bootstrap(_ loop: any EventLoop) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        #if os(Linux)
        bootstrap =
            bootstrap
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: keepAlive.idle)
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: keepAlive.interval)
            .channelOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: keepAlive.count)
        #endif
        return bootstrap
    }

    var eventLoop: any EventLoop { eventLoops.next() }

    private func take() throws -> PostgresConnection {
        if let connection = idle.withLock({ $0.popLast() }) { return connection }
        do {
            return try connect().wait()
        } catch {
            throw PostgresStorageError.unreachable(url, reason: Self.reason(error))
        }
    }

    private func giveBack(_ connection: PostgresConnection) {
        guard !connection.isClosed, !isClosed.load(ordering: .acquiring) else {
            _ = try? connection.close().wait()
            return
        }
        idle.withLock { $0.append(connection) }
    }

    /// Closes every idle connection and the event loop; later calls fail with ``PostgresStorageError/closed``.
    func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for connection in idle.withLock({ connections in
            defer { connections.removeAll() }
            return connections
        }) {
            _ = try? connection.close().wait()
        }
        try? eventLoops.syncShutdownGracefully()
    }

    /// The server's message for an error, or its kind: postgres-nio's own description is a
    /// generic "Database error" on purpose (it may hold bound values); the server's message
    /// names no bound value.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(type(of: error))"
    }
}

/// One connection, used by one caller at a time, with synchronous queries.
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func query(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try connection.query(query, logger: logger).wait()
    }

    /// Rows changed by an INSERT, UPDATE or DELETE.
    func execute(_ query: PostgresQuery) throws -> Int {
        try self.query(query).metadata.rows ?? 0
    }

    func rows(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try self.query(query).rows.map { $0.makeRandomAccess() }
    }

    func row(_ query: PostgresQuery) throws -> PostgresRandomAccessRow? {
        try rows(query).first
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. A
    /// connection whose rollback fails is closed, so no half-done transaction is ever reused.
    func transaction<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try query("BEGIN")
        let value: T
        do {
            value = try body(self)
        } catch {
            do {
                try query("ROLLBACK")
            } catch {
                _ = try? connection.close().wait()
            }
            throw error
        }
        // A transaction PostgreSQL already failed "commits" with the answer ROLLBACK, not an error.
        guard try query("COMMIT").metadata.command == "COMMIT" else {
            _ = try? connection.close().wait()
            throw PostgresStorageError.notCommitted
        }
        return value
    }

    /// Runs `body` inside a savepoint: on a throw, only its own writes are undone.
    func savepoint<T>(_ body: () throws -> T) throws -> T {
        try query("SAVEPOINT entry")
        do {
            let value = try body()
            try query("RELEASE SAVEPOINT entry")
            return value
        } catch {
            try query("ROLLBACK TO SAVEPOINT entry")
            try query("RELEASE SAVEPOINT entry")
            throw error
        }
    }
}

extension PostgresRandomAccessRow {
    func int(_ column: String) throws -> Int64 { try self[column].decode(Int64.self) }

    func optionalInt(_ column: String) throws -> Int64? { try self[column].decode(Int64?.self) }

    /// A non-negative integer column as UInt64: a negative value is corruption, not a trap.
    func unsigned(_ column: String) throws -> UInt64 {
        guard let value = UInt64(exactly: try int(column)) else { throw StorageError.corrupt(column) }
        return value
    }

    func bytes(_ column: String) throws -> [UInt8] { [UInt8](try self[column].decode(Data.self)) }

    func text(_ column: String) throws -> String { try self[column].decode(String.self) }

    func bool(_ column: String) throws -> Bool { try self[column].decode(Bool.self) }
}

/// SQLSTATE codes the storage acts on (PostgreSQL manual, Appendix A).
enum SQLState {
    static let uniqueViolation = "23505"

    static func of(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }
}
