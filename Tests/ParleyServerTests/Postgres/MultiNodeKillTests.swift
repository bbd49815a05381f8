import Foundation
import ParleyClient
import Synchronization
import Testing

@testable import ParleyServer

/// Three `parley serve` processes on one PostgreSQL database, each behind a TCP balancer that
/// prefers it and fails over to the others, all sharing one certificate (docs/OPERATIONS.md
/// "Several nodes"). Real clients (homes with MLS state, outbox and history) on every node:
/// alice on node 1 sends while carol on node 3 commits, bob and dave on node 2 send too, and
/// node 2 is killed with SIGKILL mid-run. Its clients reconnect through their balancer to
/// another node; in the end every member holds the same messages in the same order, every
/// acknowledged message at the seq its sender was told, none lost, none twice.
@Suite(.serialized, .storageThreads) struct MultiNodeKillTests {
    struct Acknowledged: Hashable {
        var sender: String
        var text: String
        var seq: UInt64
    }

    /// What the senders asked for and what they were told.
    final class Ledger: Sendable {
        let state = Mutex((submitted: [String: [String]](), acknowledged: [Acknowledged](), updates: 0))
    }

    struct Member {
        var name: String
        var client: ParleyClient
    }

    @Test func killingANodeUnderLoadLosesAndDuplicatesNothing() async throws {
        let cluster = try await NodeCluster.start(nodes: 3)
        do {
            try await run(on: cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func run(on cluster: NodeCluster) async throws {
        // Bob and dave connect through the balancer that prefers node 2.
        let fronts = [("alice", 0), ("bob", 1), ("carol", 2), ("dave", 1)]
        var members: [Member] = []
        for (name, front) in fronts {
            let client = try ParleyClient(home: cluster.work + "/home-" + name)
            try await client.register(
                server: "https://127.0.0.1:\(cluster.balancers[front].port)",
                username: name,
                password: "multi-node kill test"
            )
            members.append(Member(name: name, client: client))
        }
        try await members[0].client.createGroup("g")
        try await members[0].client.add(["bob", "carol", "dave"], to: "g")
        for member in members { try await member.client.sync() }

        let ledger = Ledger()
        let killed = try await load(members, ledger: ledger, killing: cluster)
        let status = try #require(killed)
        // The low 7 bits of a wait status are the terminating signal (WTERMSIG).
        #expect(status & 0x7f == SIGKILL, "node 2 died of SIGKILL")
        let failedOver =
            cluster.balancers[1].connections(to: cluster.nodes[2].port)
            + cluster.balancers[1].connections(to: cluster.nodes[0].port)
        #expect(failedOver > 0, "node 2's clients reconnected to another node through their balancer")

        let views = try await converge(members)
        try await check(views, ledger: ledger.state.withLock { $0 }, database: cluster.database)
        for member in members { await member.client.close() }
    }

    /// Alice sends 20 texts, bob and dave 8 each, carol commits 3 self-updates; node 2 is
    /// killed once bob and dave have had a few acknowledged. Returns node 2's wait status.
    private func load(_ members: [Member], ledger: Ledger, killing cluster: NodeCluster) async throws -> Int32? {
        let counts = ["alice": 20, "bob": 8, "dave": 8]
        return try await withThrowingTaskGroup(of: Int32?.self) { group in
            for member in members {
                if let count = counts[member.name] {
                    group.addTask { try await send(count, as: member, ledger: ledger) }
                } else {
                    group.addTask { try await commit(3, as: member, ledger: ledger) }
                }
            }
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    let onNode2 = ledger.state.withLock { $0.acknowledged.filter { $0.sender != "alice" }.count }
                    if onNode2 >= 3 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                return await cluster.nodes[1].stop(with: SIGKILL)
            }
            var status: Int32?
            for try await result in group { status = status ?? result }
            return status
        }
    }

    /// Sends numbered texts; a send left queued (its connection died) is sent again by the
    /// next successful sync, before the next text.
    private func send(_ count: Int, as member: Member, ledger: Ledger) async throws -> Int32? {
        for number in 1...count {
            let text = "\(member.name) \(number)"
            ledger.state.withLock { $0.submitted[member.name, default: []].append(text) }
            if case .sent(let seq) = try? await member.client.send(text, to: "g") {
                ledger.state.withLock { $0.acknowledged.append(.init(sender: member.name, text: text, seq: seq)) }
            } else {
                try await syncUntilReachable(member)
            }
        }
        return nil
    }

    /// Self-updates (commits) spaced out over the senders' run.
    private func commit(_ count: Int, as member: Member, ledger: Ledger) async throws -> Int32? {
        for _ in 1...count {
            try await Task.sleep(for: .milliseconds(400))
            do {
                try await member.client.update("g")
                ledger.state.withLock { $0.updates += 1 }
            } catch {
                try await syncUntilReachable(member)
            }
        }
        return nil
    }

    private func syncUntilReachable(_ member: Member) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try await member.client.sync()
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Every member syncs twice (outboxes drain, then everyone receives everything); each
    /// member's full history of the group.
    private func converge(_ members: [Member]) async throws -> [String: [HistoryEntry]] {
        for _ in 0..<2 {
            for member in members { try await syncUntilReachable(member) }
        }
        var views: [String: [HistoryEntry]] = [:]
        for member in members { views[member.name] = try await member.client.history("g") }
        return views
    }

    private func check(
        _ views: [String: [HistoryEntry]],
        ledger: (submitted: [String: [String]], acknowledged: [Acknowledged], updates: Int),
        database: String
    ) async throws {
        let texts = views.mapValues { entries in entries.filter { $0.kind == .text }.map { Line($0) } }
        let alices = try #require(texts["alice"])
        for (name, lines) in texts {
            #expect(lines == alices, "\(name) holds the same texts in the same order as alice")
            #expect(zip(lines, lines.dropFirst()).allSatisfy { $0.seq < $1.seq }, "\(name)'s history is in seq order")
            #expect(Set(lines.map(\.text)).count == lines.count, "\(name) holds no text twice")
        }
        for ack in ledger.acknowledged {
            #expect(
                alices.contains(Line(seq: ack.seq, sender: ack.sender, text: ack.text)),
                "\(ack.text) is everywhere at #\(ack.seq), as its sender was told"
            )
        }
        for (sender, sent) in ledger.submitted {
            #expect(alices.filter { $0.sender == sender }.map(\.text) == sent, "all of \(sender)'s texts, in order")
        }
        #expect(ledger.acknowledged.count >= 20, "the load ran: most sends were acknowledged")
        #expect(ledger.updates >= 1, "carol's commits were accepted while alice sent")
        // The database's log of the group: one seq per stored entry, the texts among them.
        let lastSeq = try Self.lastSeq(of: "g", database: database)
        #expect(alices.last.map { $0.seq <= lastSeq } ?? false)
        #expect(lastSeq >= UInt64(alices.count + 1 + ledger.updates), "the adding commit, texts and updates")
    }

    static func lastSeq(of group: String, database: String) throws -> UInt64 {
        let pool = try PostgresConnectionPool(url: try DatabaseURL(database), maxConnections: 1)
        defer { pool.close() }
        let rows = try pool.withConnection { try $0.rows("SELECT last_seq FROM groups WHERE name = \(group)") }
        let value = try #require(rows.first).int("last_seq")
        return try #require(UInt64(exactly: value))
    }

    struct Line: Hashable {
        var seq: UInt64
        var sender: String
        var text: String

        init(seq: UInt64, sender: String, text: String) {
            self.seq = seq
            self.sender = sender
            self.text = text
        }

        init(_ entry: HistoryEntry) { self.init(seq: entry.seq, sender: entry.sender, text: entry.text) }
    }
}

/// The nodes, their balancers and the files they share.
struct NodeCluster {
    let work: String
    let database: String
    let nodes: [NodeProcess]
    let balancers: [TCPBalancer]

    /// `count` nodes on a fresh database with one shared certificate, and one balancer per node
    /// that prefers it and then the following nodes in turn.
    static func start(nodes count: Int) async throws -> NodeCluster {
        try #require(
            FileManager.default.isExecutableFile(atPath: NodeProcess.executable),
            "build the executables first (`swift build`); this test runs \(NodeProcess.executable)"
        )
        let work = NSTemporaryDirectory() + "parley-nodes-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let database = TestPostgres.string(try TestPostgres.freshDatabase())
        let config = try writeSharedConfiguration(in: work, database: database)
        var nodes: [NodeProcess] = []
        do {
            for index in 0..<count {
                let node = try NodeProcess.spawn(
                    config: config,
                    data: work + "/node\(index)",
                    port: try freeLoopbackPort(),
                    log: work + "/node\(index).log"
                )
                nodes.append(node)
                try await waitUntilListening(node, log: work + "/node\(index).log")
            }
        } catch {
            for node in nodes { await node.stop(with: SIGKILL) }
            throw error
        }
        let ports = nodes.map(\.port)
        let balancers = try (0..<count).map { index in
            try TCPBalancer(backends: Array(ports[index...] + ports[..<index]))
        }
        return NodeCluster(work: work, database: database, nodes: nodes, balancers: balancers)
    }

    /// One certificate and key for every node, named in the one config file they all read
    /// (as docs/OPERATIONS.md tells operators), with limits sized for a test.
    static func writeSharedConfiguration(in work: String, database: String) throws -> String {
        let (identity, certificatePEM) = try ServerIdentity.generate(host: "127.0.0.1")
        try certificatePEM.write(toFile: work + "/tls-certificate.pem", atomically: true, encoding: .utf8)
        // The key owner-only, as an operator copies it to each node.
        let keyWritten = FileManager.default.createFile(
            atPath: work + "/tls-private-key.pem",
            contents: Data(identity.privateKeyPEM.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        try #require(keyWritten)
        let config: [String: Any] = [
            "database": database, "tls_certificate": work + "/tls-certificate.pem",
            "tls_private_key": work + "/tls-private-key.pem", "messages_per_second": 1000, "acks_per_second": 1000,
            "registrations_per_hour_per_address": 10_000, "registrations_per_minute": 10_000,
            "logins_per_minute_per_address": 10_000, "group_creations_per_hour": 10_000,
        ]
        let path = work + "/server.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func waitUntilListening(_ node: NodeProcess, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let status = node.exited() {
                Issue.record("parley serve exited (wait status \(status)); its output is in \(log)")
                throw CancellationError()
            }
            if (try? await CertificatePin.presented(host: "127.0.0.1", port: node.port)) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("parley serve did not listen within 60 s; its output is in \(log)")
        throw CancellationError()
    }

    func stop() async {
        for balancer in balancers { balancer.stop() }
        for node in nodes { await node.stop(with: SIGTERM) }
        try? FileManager.default.removeItem(atPath: work)
    }
}
