import ArgumentParser
import Foundation
import Histogram
import Logging
import MLS
import NIOHTTP1
import NIOSSL
import ParleyClient
import ParleyProtocol
import ParleyServer
import Synchronization

/// `parley-bench load`: real TLS WebSocket clients against a Parley server,
/// one it starts in-process, a running one (`--server`), or `--nodes` `parley serve` processes
/// on one database, each group's members spread over them.
struct LoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Message throughput and send-to-delivery latency, then idle connections held."
    )

    @Option(help: "Client devices sending.") var clients = 40
    @Option(help: "Groups the clients are spread over.") var groups = 4
    @Option(help: "Messages per second in total.") var rate = 400
    @Option(help: "Seconds of load.") var seconds = 10
    @Option(help: "Extra idle authenticated connections to open afterwards.") var idle = 1000
    @Option(
        help: ArgumentHelp(
            "A running Parley server (https://host:port) instead of one started in-process.",
            discussion: """
                It must allow registration, its per-device send limit must cover rate/clients, and its \
                max_devices_per_account and logins_per_minute_per_address must cover --idle. \
                Needed for more idle connections than one process has file descriptors for.
                """
        )
    )
    var server: String?
    @Option(
        help: ArgumentHelp(
            "Start this many parley serve processes on one database and spread the clients over them.",
            discussion: """
                Client i connects to node (i / groups) mod N, so each group's members are on every node. More \
                than one node needs --database. The parley executable beside parley-bench is used.
                """
        )
    )
    var nodes: Int?
    @Option(help: "The server's PostgreSQL database, postgres://user@host:port/db (default: SQLite).")
    var database: String?
    @Flag(help: "One JSON object per line.") var json = false

    func validate() throws {
        if server != nil, nodes != nil || database != nil {
            throw ValidationError(
                "--server names a running server: --nodes and --database are for servers started here."
            )
        }
        if let nodes, !(1...16).contains(nodes) {
            throw ValidationError("--nodes must be from 1 to 16.")
        }
        if (nodes ?? 1) > 1, database == nil {
            throw ValidationError("Several nodes share one PostgreSQL database: give --database postgres://….")
        }
        if let database, !DatabaseURL.isPostgres(database) || (try? DatabaseURL(database)) == nil {
            throw ValidationError("--database must be a postgres:// URL: postgres://user@host:port/database.")
        }
    }

    func run() async throws {
        let fileLimit = ProcessResources.raiseOpenFileLimit()
        // Each connection is one descriptor on each side; in-process both sides share the limit.
        let needed = (server == nil && nodes == nil ? 2 : 1) * (clients + idle) + 200
        if needed > fileLimit {
            throw ValidationError(
                """
                \(clients + idle) connections need about \(needed) file descriptors in this process, and the limit is \(fileLimit). \
                Run the server on its own (parley serve) and pass --server, or ask for fewer.
                """
            )
        }
        let target = try await LoadTarget.start(
            server: server,
            nodes: nodes,
            database: database,
            rate: rate,
            status: status
        )
        do {
            try await measureThroughput(target)
            if idle > 0 { try await measureIdleConnections(target) }
        } catch {
            await target.stop()
            throw error
        }
        await target.stop()
    }

    /// One load client: a logged-in device's token and the group it sends to.
    struct Sender {
        var token: String
        var group: String
        var groupID: [UInt8]
        var epoch: UInt64
    }

    /// Each client sends at rate/clients per second; every copy delivered is timed.
    func measureThroughput(_ target: LoadTarget) async throws {
        let senders = try await setUpSenders(target)
        let stats = LoadStats()
        let sockets = senders.enumerated().map {
            BenchSocket.load(
                url: target.nodeWebSocketURL(client: $0.offset, groups: groups),
                token: $0.element.token,
                tls: target.tls,
                stats: stats
            )
        }
        try await Task.sleep(for: .seconds(1))
        status("sending \(rate) messages/s for \(seconds) s")
        await offerLoad(senders: senders, sockets: sockets, stats: stats)
        try await Task.sleep(for: .seconds(2))
        let result = stats.snapshot()
        let elapsed = Double(seconds)
        report([
            "op": "load", "clients": clients, "groups": groups, "rate": rate, "seconds": seconds, "server": target.kind,
            "nodes": target.urls.count, "storage": target.storage,
            "sent": result.sent, "accepted_per_s": Double(result.accepted) / elapsed,
            "deliveries_per_s": Double(result.deliveries) / elapsed,
            "latency_p50_ms": result.p50, "latency_p99_ms": result.p99, "latency_p999_ms": result.p999,
            "errors": result.errors,
        ])
        for socket in sockets { socket.close() }
    }

    /// Setup with real MLS: every group has an admin who adds its members; then each client's
    /// session and group identity are kept and its engine closed, so the load is raw frames.
    func setUpSenders(_ target: LoadTarget) async throws -> [Sender] {
        status("setting up \(clients) clients in \(groups) groups")
        var users: [ParleyClient] = []
        for index in 0..<clients {
            let user = try ParleyClient(home: target.root + "/u\(index)")
            try await user.register(
                server: target.nodeURL(client: index, groups: groups),
                username: target.name("u\(index)"),
                password: "load test password"
            )
            users.append(user)
        }
        for group in 0..<groups {
            let members = stride(from: group, to: clients, by: groups).map { $0 }
            try await users[members[0]].createGroup(target.name("g\(group)"))
            if members.count > 1 {
                try await users[members[0]].add(
                    members.dropFirst().map { target.name("u\($0)") },
                    to: target.name("g\(group)")
                )
            }
        }
        for user in users { try await user.sync() }
        for user in users { try await user.sync() }
        var senders: [Sender] = []
        for (index, user) in users.enumerated() {
            let name = target.name("g\(index % groups)")
            let identity = try await user.wireIdentity(of: name)
            senders.append(
                Sender(token: await user.token!, group: name, groupID: identity.groupID, epoch: identity.epoch)
            )
            await user.close()
        }
        return senders
    }

    /// Every sender at its share of the rate for `seconds`, each message an opaque
    /// PrivateMessage whose authenticated data carries its send time.
    func offerLoad(senders: [Sender], sockets: [LoadSocket], stats: LoadStats) async {
        let interval = Duration.seconds(Double(clients) / Double(rate))
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for (index, sender) in senders.enumerated() {
                group.addTask {
                    var next = start + interval * (Double(index) / Double(clients))
                    var count = 0
                    while next < start + .seconds(seconds) {
                        try? await Task.sleep(until: next)
                        count += 1
                        sockets[index].send(.send(loadFrame(sender, id: "\(index)-\(count)")))
                        stats.sent()
                        next += interval
                    }
                }
            }
        }
    }

    /// Opaque to the server; the send time rides in the authenticated data.
    func loadFrame(_ sender: Sender, id: String) -> ClientFrame.Send {
        let message = MLSMessage.privateMessage(
            PrivateMessage(
                groupID: sender.groupID,
                epoch: sender.epoch,
                contentType: .application,
                authenticatedData: withUnsafeBytes(of: DispatchTime.now().uptimeNanoseconds.bigEndian, Array.init),
                encryptedSenderData: [UInt8](repeating: 7, count: 28),
                ciphertext: [UInt8](repeating: 9, count: 1024)
            )
        )
        return .init(id: id, group: sender.group, message: Data((try? message.tlsEncoded()) ?? []))
    }

    /// Idle connections: one device each (a device's new connection replaces
    /// its old one), logged in directly over HTTP — a session is all a
    /// connection needs, so no home store or KeyPackages are made for them.
    func measureIdleConnections(_ target: LoadTarget) async throws {
        status("logging in \(idle) devices")
        let password = "idle connections"
        // As many accounts as the devices need (each may have at most 1,000).
        let accounts = (idle + LoadTarget.devicesPerAccount - 1) / LoadTarget.devicesPerAccount
        let users = (0..<accounts).map { target.name("idle\($0)") }
        for user in users { try await target.createUser(user, password: password) }
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let setupStart = ContinuousClock.now
        var tokens: [String] = []
        try await withThrowingTaskGroup(of: String.self) { group in
            // A few logins in flight keep the server's password hashing busy on every core.
            var next = 0
            func login() {
                let keys = suite.generateSignatureKeyPair()
                let user = users[next / LoadTarget.devicesPerAccount]
                group.addTask {
                    try await ParleyClient.openSession(
                        api: target.api,
                        username: user,
                        password: password,
                        keys: keys
                    ).token
                }
                next += 1
            }
            while next < min(idle, 8) { login() }
            for try await token in group {
                tokens.append(token)
                if next < idle { login() }
            }
        }
        status("opening \(idle) idle connections")
        let idleStats = LoadStats()
        let held = try await openIdleConnections(tokens, target: target, stats: idleStats)
        // Wait until every connection has finished its replay, or stops making progress.
        var settled = 0
        var stalled = 0
        while settled < idle, stalled < 10 {
            try await Task.sleep(for: .seconds(1))
            let now = idleStats.snapshot().settled
            stalled = now == settled ? stalled + 1 : 0
            settled = now
        }
        let setup = (ContinuousClock.now - setupStart) / .seconds(1)
        try await Task.sleep(for: .seconds(3))
        let final = idleStats.snapshot()
        var values: [String: Any] = [
            "op": "idle_connections", "requested": idle, "open": final.connected,
            "failed": final.failedConnections, "errors": final.errors,
            "setup_s": setup, "server": target.kind, "nodes": target.urls.count, "storage": target.storage,
        ]
        // The server's own view, from its /metrics: connections and memory (in-process, the bench's too).
        let metrics = await target.serverMetrics()
        if let count = metrics["parley_connections"] { values["server_connections"] = Int(count) }
        if let bytes = metrics["process_resident_memory_bytes"] {
            values["server_rss_mib"] = (bytes / 1_048_576).rounded()
        }
        report(values)
        for socket in held { socket.close() }
    }

    /// One connection per token, round-robin over the nodes; at most 256 handshakes in flight,
    /// as clients arriving over time would be (a burst of thousands only overflows the accept queue).
    func openIdleConnections(_ tokens: [String], target: LoadTarget, stats: LoadStats) async throws -> [LoadSocket] {
        var held: [LoadSocket] = []
        for (index, token) in tokens.enumerated() {
            while held.count - stats.snapshot().settled >= 256 { try await Task.sleep(for: .milliseconds(10)) }
            held.append(
                BenchSocket.load(
                    url: target.nodeWebSocketURL(client: index),
                    token: token,
                    tls: target.tls,
                    stats: stats
                )
            )
        }
        return held
    }

    func status(_ text: String) {
        if !json { print("· \(text)") }
        fflush(nil)
    }

    func report(_ values: [String: Any]) {
        if json {
            print(
                String(
                    decoding: try! JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]),
                    as: UTF8.self
                )
            )
        } else {
            print(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "  "))
        }
        fflush(nil)
    }
}

/// The server under load: started in-process, or reached at a URL.
struct LoadTarget: Sendable {
    let url: String
    let certificate: [UInt8]
    let tls: TLSConfiguration
    let api: ServerAPI
    /// Local scratch space for client homes.
    let root: String
    /// Prefixes every user and group name, so runs against one server do not collide.
    let run: String
    let inProcess: ParleyServer?
    let serverTask: Task<Void, Error>?
    /// Every node's URL (`url` is the first); one unless `--nodes`.
    var urls: [String]
    var children: LoadNodes?
    /// "sqlite" or "postgres"; "unknown" for a server reached at a URL.
    var storage: String

    /// The most devices an account may have (`max_devices_per_account`'s upper bound).
    static let devicesPerAccount = 1000

    var kind: String { children != nil ? "processes" : inProcess == nil ? "external" : "in-process" }

    /// The node client `index` uses: each group's members (clients g, g + groups, …) round-robin
    /// over the nodes. `groups` is the bench's; idle connections pass their own index.
    func nodeURL(client index: Int, groups: Int = 1) -> String { urls[(index / max(1, groups)) % urls.count] }

    var webSocketURL: String { nodeWebSocketURL(client: 0) }

    func nodeWebSocketURL(client index: Int, groups: Int = 1) -> String {
        "wss" + nodeURL(client: index, groups: groups).dropFirst("https".count) + "/v1/ws"
    }

    func name(_ suffix: String) -> String { "l\(run)\(suffix)" }

    static func start(
        server: String?,
        nodes: Int? = nil,
        database: String? = nil,
        rate: Int,
        status: (String) -> Void
    ) async throws -> LoadTarget {
        let root = NSTemporaryDirectory() + "parley-load-" + UUID().uuidString
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        if let server { return try await external(server, root: root, run: run, status: status) }
        if let nodes {
            let children = try await LoadNodes.start(
                count: nodes,
                database: database,
                rate: rate,
                root: root + "/nodes",
                status: status
            )
            do {
                var target = try await external(children.urls[0], root: root, run: run, status: status)
                target.urls = children.urls
                target.children = children
                target.storage = database == nil ? "sqlite" : "postgres"
                return target
            } catch {
                await children.stop()
                throw error
            }
        }
        return try await inProcess(database: database, rate: rate, root: root, run: run)
    }

    /// A server already running at `server`: its certificate is pinned as presented.
    static func external(
        _ server: String,
        root: String,
        run: String,
        status: (String) -> Void
    ) async throws
        -> LoadTarget
    {
        let (host, port) = try ServerAPI.hostAndPort(server)
        let certificate = try await CertificatePin.presented(host: host, port: port)
        status(
            "server \(server), certificate SHA-256 \(CertificatePin.fingerprint(certificate)) (compare with what parley serve printed)"
        )
        let url = server.hasSuffix("/") ? String(server.dropLast()) : server
        return LoadTarget(
            url: url,
            certificate: certificate,
            tls: try CertificatePin.pinned(certificate),
            api: try ServerAPI(url: server, certificate: certificate),
            root: root,
            run: run,
            inProcess: nil,
            serverTask: nil,
            urls: [url],
            children: nil,
            storage: "unknown"
        )
    }

    static func inProcess(database: String?, rate: Int, root: String, run: String) async throws -> LoadTarget {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = root + "/server"
        configuration.database = database
        configuration.port = 0
        configuration.messagesPerSecond = max(1000, rate)
        // The idle connections are many devices of a few accounts (the most each may have),
        // registered and logged in from this one address.
        configuration.maxDevicesPerAccount = Self.devicesPerAccount
        configuration.loginsPerMinutePerAddress = 1_000_000
        configuration.registrationsPerMinute = 1_000_000
        configuration.registrationsPerHourPerAddress = 1_000_000
        configuration.maxConnectionsPerAddress = 1_000_000
        var logger = Logger(label: "parley-load")
        logger.logLevel = .error
        let parley = try ParleyServer(configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await parley.run(handleSignals: false) { continuation.yield($0) } }
        var portIterator = ports.makeAsyncIterator()
        guard let port = await portIterator.next() else { throw ValidationError("the server did not start") }
        let url = "https://127.0.0.1:\(port)"
        return LoadTarget(
            url: url,
            certificate: parley.certificateDER,
            tls: try CertificatePin.pinned(parley.certificateDER),
            api: try ServerAPI(url: url, certificate: parley.certificateDER),
            root: root,
            run: run,
            inProcess: parley,
            serverTask: task,
            urls: [url],
            children: nil,
            storage: database == nil ? "sqlite" : "postgres"
        )
    }

    func createUser(_ name: String, password: String) async throws {
        if let inProcess {
            try inProcess.addUser(name: name, password: password)
        } else {
            try await api.request(
                .POST,
                "/v1/accounts",
                body: WireJSON.encode(API.Register(username: name, password: password))
            )
        }
    }

    /// The server's unlabelled gauges and counters, from its /metrics; with several nodes, each
    /// summed over all of them (connections, and resident memory of all node processes).
    func serverMetrics() async -> [String: Double] {
        var values: [String: Double] = [:]
        for url in urls {
            guard let nodeAPI = url == self.url ? api : try? ServerAPI(url: url, certificate: certificate) else {
                continue
            }
            let body = try? await nodeAPI.request(.GET, "/metrics")
            if nodeAPI !== api { await nodeAPI.shutdown() }
            guard let body else { continue }
            for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
                let fields = line.split(separator: " ")
                if fields.count == 2, let value = Double(fields[1]) { values[String(fields[0]), default: 0] += value }
            }
        }
        return values
    }

    func stop() async {
        await api.shutdown()
        if let inProcess {
            await inProcess.shutdown()
            _ = try? await serverTask?.value
            inProcess.closeStorage()
        }
        await children?.stop()
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Counters and the latency histogram, shared by all connections.
final class LoadStats: Sendable {
    struct Snapshot {
        var sent = 0, accepted = 0, deliveries = 0, errors = 0, connected = 0, failedConnections = 0
        var p50 = 0.0, p99 = 0.0, p999 = 0.0
        /// Connections that finished replay or gave up.
        var settled: Int { connected + failedConnections }
    }

    private let state = Mutex<(counts: Snapshot, histogram: Histogram<UInt64>)>(
        (Snapshot(), Histogram<UInt64>(highestTrackableValue: 60_000_000))
    )

    func sent() { state.withLock { $0.counts.sent += 1 } }
    func connected() { state.withLock { $0.counts.connected += 1 } }
    func error() { state.withLock { $0.counts.errors += 1 } }
    func connectionFailed() { state.withLock { $0.counts.failedConnections += 1 } }

    /// A delivered copy: the sender's own copy counts as accepted; others' as deliveries, timed.
    func delivered(own: Bool, sentAt: UInt64?) {
        let now = DispatchTime.now().uptimeNanoseconds
        state.withLock { state in
            if own { state.counts.accepted += 1 } else { state.counts.deliveries += 1 }
            if let sentAt, now > sentAt { _ = state.histogram.record((now - sentAt) / 1000) }
        }
    }

    func snapshot() -> Snapshot {
        state.withLock { state in
            var counts = state.counts
            counts.p50 = Double(state.histogram.valueAtPercentile(50)) / 1000
            counts.p99 = Double(state.histogram.valueAtPercentile(99)) / 1000
            counts.p999 = Double(state.histogram.valueAtPercentile(99.9)) / 1000
            return counts
        }
    }
}

/// The load test's connections (`offerLoad` writes to them).
typealias LoadSocket = BenchSocket

extension BenchSocket {
    /// One device's connection for the load test: every frame counted in `stats`, each copy of
    /// another device's message timed from the send time it carries.
    static func load(url: String, token: String, tls: TLSConfiguration, stats: LoadStats) -> BenchSocket {
        BenchSocket(
            url: url,
            token: token,
            tls: tls,
            maxFrameSize: 1 << 22,
            onEnd: { wasReady in if !wasReady { stats.connectionFailed() } }
        ) { frame, _ in
            switch frame {
            case .replayFinished: stats.connected()
            case .error: stats.error()
            case .message(let delivered):
                stats.delivered(own: delivered.id != nil, sentAt: delivered.id == nil ? sentAt(delivered) : nil)
            default: break
            }
        }
    }
}
