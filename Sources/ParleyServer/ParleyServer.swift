import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import ParleyProtocol
import ServiceLifecycle
import Synchronization

/// The Parley server: HTTPS and WebSocket on one port, TLS 1.3, state in the data directory.
public final class ParleyServer: Sendable {
    public let configuration: ServerConfiguration
    /// SHA-256 fingerprint of the server certificate, for clients to pin.
    public let fingerprint: String
    public let certificateDER: [UInt8]
    /// True when this run generated the self-signed certificate.
    public let createdCertificate: Bool
    let identity: ServerIdentity
    let storage: any ServerStorage
    let accounts: AccountService
    let directory: KeyPackageDirectory
    let delivery: DeliveryService
    let hub: ConnectionHub
    let sessionWatch: SessionWatch
    let linking: LinkService
    let metrics = ServerMetrics()
    let logger: Logger
    private let serviceGroup = Mutex<ServiceGroup?>(nil)

    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "parley")) throws {
        // Ranges first: no configured value may reach arithmetic that traps.
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        storage = try Self.openStorage(configuration)
        let (identity, created) = try ServerIdentity.load(configuration: configuration)
        self.identity = identity
        fingerprint = identity.fingerprint
        certificateDER = identity.certificateDER
        createdCertificate = created
        directory = KeyPackageDirectory(storage: storage, configuration: configuration)
        let hub = ConnectionHub(maxQueuedBytes: configuration.maxQueuedBytesPerConnection)
        self.hub = hub
        sessionWatch = SessionWatch(interval: .seconds(configuration.sessionCheckSeconds))
        accounts = AccountService(
            storage: storage,
            configuration: configuration,
            hub: hub,
            certificateDER: identity.certificateDER,
            logger: logger
        )
        linking = LinkService(storage: storage, accounts: accounts, logger: logger)
        delivery = DeliveryService(
            storage: storage,
            hub: hub,
            configuration: configuration,
            metrics: metrics,
            logger: logger
        )
    }

    /// PostgreSQL when `database` names it, else SQLite in the data directory.
    static func openStorage(_ configuration: ServerConfiguration) throws -> any ServerStorage {
        guard let database = configuration.database else { return try SQLiteStorage(path: configuration.databasePath) }
        return try PostgresStorage(url: try DatabaseURL(database))
    }

    /// Where the server keeps its state, for the operator: never shows a database password.
    public var storageDescription: String {
        if let postgres = storage as? PostgresStorage { return "database: \(postgres.url)" }
        return "data: \(configuration.dataDirectory)"
    }

    /// The HTTP API's routes over this server's services (also what router-mode tests drive).
    var routes: Routes {
        Routes(
            accounts: accounts,
            directory: directory,
            delivery: delivery,
            metrics: metrics,
            hub: hub,
            configuration: configuration,
            linking: linking
        )
    }

    /// Serves until a graceful shutdown: SIGTERM or SIGINT when `handleSignals`,
    /// or ``shutdown()``. Shutdown stops accepting, closes WebSockets with
    /// 1001 (going away), drains in-flight requests and returns.
    ///
    /// - Parameter onRunning: called with the bound port once the server listens.
    public func run(
        handleSignals: Bool = true,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        // Storage that blocks on the network gets threads of its own (see BlockingStorageExecutor).
        let executor: (any TaskExecutor)? = storage is PostgresStorage ? BlockingStorageExecutor.shared : nil
        try await withTaskExecutorPreference(executor) {
            try await serve(handleSignals: handleSignals, onRunning: onRunning)
        }
    }

    private func serve(
        handleSignals: Bool,
        onRunning: @escaping @Sendable (Int) async -> Void
    ) async throws {
        let router = routes.router()
        router.get("v1/ws") { _, _ -> Response in throw ErrorBody(.unauthorized) }
        let app = Application(
            router: router,
            server: try serverBuilder(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "Parley"
            ),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: app),
            .init(service: CloseConnectionsOnShutdown(hub: hub, writer: delivery.writer)),
            .init(service: sessionWatch),
            .init(
                service: RetentionService(
                    storage: storage,
                    delivery: delivery,
                    days: configuration.retentionDays,
                    logger: logger
                )
            ),
        ]
        // Several nodes on one PostgreSQL: what the others store reaches this node's devices.
        // It listens before the HTTP service starts, so no client is served while events are missed.
        if let postgres = storage as? PostgresStorage {
            services.append(.init(service: try await ClusterEventsService.start(storage: postgres, delivery: delivery)))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                logger: logger
            )
        )
        serviceGroup.withLock { $0 = group }
        try await group.run()
    }

    /// HTTP/1.1 with WebSocket upgrade inside TLS 1.3, with every connection bounded in time
    /// (finding 12): TLS handshake plus first request head, HTTP keep-alive idle, WebSocket ping;
    /// and in number per client address.
    private func serverBuilder() throws -> HTTPServerBuilder {
        let sessionParts = (storage, delivery, hub, configuration, accounts, sessionWatch)
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: .init(idleTimeout: .seconds(Int64(max(1, configuration.idleTimeoutSeconds)))),
            ws: .init(
                maxFrameSize: configuration.maxFrameBytes * 4,
                autoPing: .enabled(timePeriod: .seconds(max(1, configuration.pingIntervalSeconds)))
            )
        )
        typealias Upgrade = ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
        let shouldUpgrade: @Sendable (HTTPRequest, any Channel, Logger) async throws -> Upgrade = {
            request,
            channel,
            logger in
            let (storage, delivery, hub, configuration, accounts, sessionWatch) = sessionParts
            guard request.path == "/v1/ws",
                let token = Routes.token(from: request.headerFields[.authorization]),
                let device = try? accounts.authenticate(token: token)
            else {
                return .dontUpgrade
            }
            let check = SessionCheck(storage: storage, tokenHash: SessionToken.hash(token))
            let session = WebSocketSession(
                device: device,
                storage: storage,
                delivery: delivery,
                hub: hub,
                configuration: configuration,
                logger: logger,
                channel: channel,
                session: check,
                sessionWatch: sessionWatch
            )
            return .upgrade([:]) { inbound, outbound, _ in
                await session.run(inbound: inbound, outbound: outbound)
            }
        }
        let tls = try identity.tlsConfiguration()
        let deadline = TimeAmount.seconds(Int64(max(1, configuration.handshakeTimeoutSeconds)))
        let counter = ConnectionCounter(
            limit: configuration.maxConnectionsPerAddress,
            exemptsLoopback: configuration.connectionLimitExemptsLoopback
        )
        return HTTPServerBuilder { responder in
            let http = HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: channelConfiguration,
                shouldUpgrade: shouldUpgrade
            )
            // Inside TLS: the deadline sees the first request's plaintext, and the coalescer
            // gathers what the HTTP and WebSocket encoders write into few records per flush.
            let tlsChannel = try TLSChannel(
                ConnectionDeadlineChannel(base: WriteCoalescingChannel(base: http), timeout: deadline),
                tlsConfiguration: tls
            )
            return ConnectionLimitChannel(base: tlsChannel, counter: counter)
        }
    }

    /// Begins a graceful shutdown of a running server.
    public func shutdown() async {
        let group = serviceGroup.withLock { $0 }
        await group?.triggerGracefulShutdown()
    }

    /// Closes the database's connections once `run` has returned, for a server run in-process
    /// (`parley-bench load`); SQLite's file closes with the last reference.
    public func closeStorage() { (storage as? PostgresStorage)?.close() }

    // MARK: Operator commands (`parley admin`), also while the server runs

    public func addUser(name: String, password: String) throws {
        try accounts.addUser(name: name, password: password)
    }

    public func listUsers() throws -> [(name: String, created: Date, devices: Int)] {
        try storage.users().map {
            (
                $0.name, Date(timeIntervalSince1970: Double($0.createdAt) / 1000),
                try storage.devices(ofUser: $0.id).count
            )
        }
    }

    public func removeUser(name: String) throws -> Bool {
        try accounts.removeUser(name: name)
    }

    /// The user's devices (id and SHA-256 fingerprint of the signature key); nil for no such user.
    public func listDevices(user name: String) throws -> [(id: Int64, keyFingerprint: String)]? {
        try accounts.devices(ofUser: name)?.map { ($0.id, DeviceFingerprint.of($0.signatureKey)) }
    }

    /// Removes one device of the user: its signature key is tombstoned (never accepted again),
    /// its sessions end and its WebSocket closes, here at once, in a server running in another
    /// process at its next session check. False when the user has no such device.
    public func removeDevice(user name: String, deviceID: Int64) throws -> Bool {
        try accounts.removeDevice(user: name, deviceID: deviceID)
    }
}

/// On graceful shutdown, ends every WebSocket (each closes with 1001), then stops the log
/// writer after its transaction in progress (sends still waiting are refused, not acknowledged).
private struct CloseConnectionsOnShutdown: Service {
    let hub: ConnectionHub
    let writer: LogWriter
    func run() async throws {
        try? await gracefulShutdown()
        hub.closeAll()
        writer.stop()
    }
}

/// Deletes acknowledged messages and those past the retention period, hourly.
private struct RetentionService: Service {
    let storage: any ServerStorage
    let delivery: DeliveryService
    let days: Int
    let logger: Logger

    func run() async throws {
        // Checked: a configured period longer than the clock's reading keeps everything.
        let (period, overflow) = UInt64(max(0, days)).multipliedReportingOverflow(by: 86_400_000)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let (cutoff, underflow) = Clock.milliseconds().subtractingReportingOverflow(period)
            if let pruned = try? storage.prune(olderThan: overflow || underflow ? 0 : cutoff), pruned > 0 {
                logger.info("messages pruned", metadata: ["count": "\(pruned)"])
                // Quotas count what is kept: recount after pruning.
                delivery.forgetStoredBytes()
            }
            // Link requests and history bundles nobody will fetch (LinkService).
            _ = try? storage.deleteExpiredLinks(now: Clock.milliseconds())
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
