import ArgumentParser
import Foundation
import Histogram
import HummingbirdWSClient
import Logging
import MLS
import NIOSSL
import ParleyClient
import ParleyProtocol
import ParleyServer
import Synchronization

/// `parley-bench load`: real TLS WebSocket clients against an in-process server.
struct LoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Message throughput and send-to-delivery latency, then idle connections held.")

    @Option(help: "Client devices sending.") var clients = 40
    @Option(help: "Groups the clients are spread over.") var groups = 4
    @Option(help: "Messages per second in total.") var rate = 400
    @Option(help: "Seconds of load.") var seconds = 10
    @Option(help: "Extra idle authenticated connections to open afterwards.") var idle = 1000
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        raiseFileLimit()
        let root = NSTemporaryDirectory() + "parley-load-" + UUID().uuidString
        var configuration = ServerConfiguration()
        configuration.dataDirectory = root + "/server"
        configuration.port = 0
        configuration.messagesPerSecond = max(1000, rate)
        var logger = Logger(label: "parley-load")
        logger.logLevel = .error
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let serverTask = Task { try await server.run(handleSignals: false) { continuation.yield($0) } }
        var portIterator = ports.makeAsyncIterator()
        guard let port = await portIterator.next() else { throw ValidationError("the server did not start") }
        let url = "https://127.0.0.1:\(port)"
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: server.certificateDER, format: .der)])
        tls.certificateVerification = .noHostnameVerification

        // Setup with real MLS: every group has an admin who adds its members.
        status("setting up \(clients) clients in \(groups) groups")
        var users: [ParleyClient] = []
        for index in 0..<clients {
            let user = try ParleyClient(home: root + "/u\(index)")
            try await user.register(server: url, username: "user\(index)", password: "load test password")
            users.append(user)
        }
        for group in 0..<groups {
            let members = stride(from: group, to: clients, by: groups).map { $0 }
            try await users[members[0]].createGroup("g\(group)")
            if members.count > 1 { try await users[members[0]].add(members.dropFirst().map { "user\($0)" }, to: "g\(group)") }
        }
        for user in users { try await user.sync() }
        for user in users { try await user.sync() }
        var senders: [(token: String, group: String, groupID: [UInt8], epoch: UInt64)] = []
        for (index, user) in users.enumerated() {
            let name = "g\(index % groups)"
            let identity = try await user.wireIdentity(of: name)
            senders.append((await user.token!, name, identity.groupID, identity.epoch))
            await user.close()
        }

        // Load: each client sends at rate/clients per second; every copy delivered is timed.
        let stats = LoadStats()
        let sockets = senders.map { sender in
            LoadSocket(url: "wss://127.0.0.1:\(port)/v1/ws", token: sender.token, tls: tls, stats: stats)
        }
        try await Task.sleep(for: .seconds(1))
        status("sending \(rate) messages/s for \(seconds) s")
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
                        let message = MLSMessage.privateMessage(PrivateMessage(
                            groupID: sender.groupID, epoch: sender.epoch, contentType: .application,
                            authenticatedData: withUnsafeBytes(of: DispatchTime.now().uptimeNanoseconds.bigEndian, Array.init),
                            encryptedSenderData: [UInt8](repeating: 7, count: 28), ciphertext: [UInt8](repeating: 9, count: 1024)))
                        sockets[index].send(.send(.init(id: "\(index)-\(count)", group: sender.group, message: Data((try? message.tlsEncoded()) ?? []))))
                        stats.sent()
                        next += interval
                    }
                }
            }
        }
        try await Task.sleep(for: .seconds(2))
        let result = stats.snapshot()
        let elapsed = Double(seconds)
        report([
            "op": "load", "clients": clients, "groups": groups, "rate": rate, "seconds": seconds,
            "sent": result.sent, "accepted_per_s": Double(result.accepted) / elapsed, "deliveries_per_s": Double(result.deliveries) / elapsed,
            "latency_p50_ms": result.p50, "latency_p99_ms": result.p99, "latency_p999_ms": result.p999, "errors": result.errors,
        ])
        for socket in sockets { socket.close() }

        // Idle connections: one device each (a new connection of a device replaces its old one).
        status("opening \(idle) idle connections")
        try await server.addUser(name: "idle", password: "idle connections")
        let holder = try ParleyClient(home: root + "/idle")
        try await holder.login(server: url, username: "idle", password: "idle connections")
        var held: [LoadSocket] = []
        let idleStats = LoadStats()
        for index in 0..<idle {
            let device = try ParleyClient(home: root + "/idle-\(index)")
            try await device.login(server: url, username: "idle", password: "idle connections")
            held.append(LoadSocket(url: "wss://127.0.0.1:\(port)/v1/ws", token: await device.token!, tls: tls, stats: idleStats))
            await device.close()
        }
        try await Task.sleep(for: .seconds(3))
        report(["op": "idle_connections", "requested": idle, "open": idleStats.snapshot().connected])
        for socket in held { socket.close() }
        await holder.close()
        await server.shutdown()
        _ = try? await serverTask.value
    }

    func status(_ text: String) {
        if !json { print("· \(text)") }
    }

    func report(_ values: [String: Any]) {
        if json {
            print(String(decoding: try! JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "  "))
        }
        fflush(nil)
    }

    func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Counters and the latency histogram, shared by all connections.
final class LoadStats: Sendable {
    struct Snapshot {
        var sent = 0, accepted = 0, deliveries = 0, errors = 0, connected = 0
        var p50 = 0.0, p99 = 0.0, p999 = 0.0
    }

    private let state = Mutex<(counts: Snapshot, histogram: Histogram<UInt64>)>((Snapshot(), Histogram<UInt64>(highestTrackableValue: 60_000_000)))

    func sent() { state.withLock { $0.counts.sent += 1 } }
    func connected() { state.withLock { $0.counts.connected += 1 } }
    func error() { state.withLock { $0.counts.errors += 1 } }

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

/// One device's WebSocket for the load test.
final class LoadSocket: Sendable {
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<Void, Never>

    init(url: String, token: String, tls: TLSConfiguration, stats: LoadStats) {
        let (stream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        var logger = Logger(label: "load-ws")
        logger.logLevel = .critical
        task = Task {
            _ = try? await WebSocketClient.connect(
                url: url, configuration: .init(maxFrameSize: 1 << 22, additionalHeaders: [.authorization: "Bearer \(token)"], sniHostname: "localhost"),
                tlsConfiguration: tls, logger: logger
            ) { inbound, outbound, _ in
                let writer = Task { for await text in stream { try await outbound.write(.text(text)) } }
                defer { writer.cancel() }
                for try await message in inbound.messages(maxSize: 1 << 22) {
                    guard case .text(let text) = message, let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8)) else { continue }
                    switch frame {
                    case .replayFinished: stats.connected()
                    case .error: stats.error()
                    case .message(let delivered):
                        var sentAt: UInt64?
                        if case .privateMessage(let message)? = try? MLSMessage(tlsEncoded: [UInt8](delivered.message)), message.authenticatedData.count == 8 {
                            sentAt = message.authenticatedData.reduce(0) { $0 << 8 | UInt64($1) }
                        }
                        stats.delivered(own: delivered.id != nil, sentAt: delivered.id == nil ? sentAt : nil)
                    default: break
                    }
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
}
