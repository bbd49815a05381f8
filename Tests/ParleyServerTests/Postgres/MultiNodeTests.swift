import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// Three server nodes on one PostgreSQL database, a member on each: what is stored through one
/// node reaches the members on the others (LISTEN/NOTIFY), in the one order the database decided.
@Suite(.serialized, .storageThreads) struct MultiNodeTests {
    /// Alice on node 1 and Bob on node 2, connected, in group "g" (Alice's add at seq 1).
    private static func aliceAndBob(across nodes: [TestServer]) async throws -> (TestUser, TestUser) {
        let alice = try await TestUser.ready("alice", on: nodes[0])
        let bob = try await TestUser.ready("bob", on: nodes[1])
        for user in [alice, bob] { await user.connect() }
        try await alice.createGroup("g")
        #expect(try await alice.add(["bob"], to: "g").accepted?.seq == 1)
        try bob.join(#require(await bob.nextWelcome()))
        return (alice, bob)
    }

    @Test func membersOnThreeNodesSeeOneOrderWithNothingLostOrDuplicated() async throws {
        try await TestServer.withNodes(3) { nodes, _ in
            try await sendWhileCommitting(on: nodes)
        }
    }

    /// Alice (node 1) sends ten messages while Carol (node 3) commits; Bob is on node 2.
    private func sendWhileCommitting(on nodes: [TestServer]) async throws {
        let alice = try await TestUser.ready("alice", on: nodes[0])
        let bob = try await TestUser.ready("bob", on: nodes[1])
        let carol = try await TestUser.ready("carol", on: nodes[2])
        for user in [alice, bob, carol] { await user.connect() }
        try await alice.createGroup("g")
        #expect(try await alice.add(["bob", "carol"], to: "g").accepted?.seq == 1)
        // The Welcomes were stored through node 1 and reach nodes 2 and 3 live.
        try bob.join(#require(await bob.nextWelcome()))
        try carol.join(#require(await carol.nextWelcome()))

        let texts = (1...10).map { "text-\($0)" }
        for text in texts {
            let message = try alice.groups["g"]!.encrypt(Array(text.utf8))
            try alice.socket!.send(.send(.init(id: text, group: "g", message: Data(try message.tlsEncoded()))))
        }
        let update = try carol.groups["g"]!.selfUpdate()
        try carol.socket!.send(.send(.init(id: "update", group: "g", message: Data(try update.message.tlsEncoded()))))

        let seen = [await messages(of: alice), await messages(of: bob), await messages(of: carol)]
        let accepted = seen[0].filter { $0.id.map(texts.contains) == true }
        #expect(accepted.count == texts.count, "every message of alice's is stored (the commit's grace covers it)")
        #expect(seen[2].contains { $0.id == "update" }, "carol's commit is stored")
        let orders = seen.map { $0.map { [UInt8]($0.message) } }
        let seqs = seen.map { $0.map(\.seq) }
        #expect(seqs[0] == Array(2...UInt64(2 + texts.count)), "one message per seq, none missing, none twice")
        #expect(seqs[1] == seqs[0] && seqs[2] == seqs[0])
        #expect(orders[1] == orders[0] && orders[2] == orders[0], "every member has the same order")
    }

    /// Node 2's listening connection is killed in the database (as a restart of PostgreSQL or a
    /// dropped route would), and Alice sends through node 1 while it is down: the notification is
    /// lost. Bob, connected to node 2 and up to date, must not be left without the message: his
    /// connection is closed when the listener comes back, and his replay brings it.
    @Test func aLostNotificationIsCaughtUpByReconnecting() async throws {
        try await TestServer.withNodes(2) { nodes, database in
            try await sendWhileListenerIsDown(on: nodes, database: database)
        }
    }

    private func sendWhileListenerIsDown(on nodes: [TestServer], database: String) async throws {
        let (alice, bob) = try await Self.aliceAndBob(across: nodes)
        let bobsSocket = try #require(bob.socket)

        let storage = try #require(nodes[1].server.storage as? PostgresStorage)
        let name = try #require(storage.listenerApplicationName)
        let pool = try PostgresConnectionPool(url: try DatabaseURL(database), maxConnections: 1)
        defer { pool.close() }
        let killed = try pool.withConnection { db in
            try db.rows(
                "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = \(name)"
            )
        }
        #expect(killed.count == 1, "node 2's listening connection is found by its name and ended")
        let sent = Data(try alice.groups["g"]!.encrypt(Array("while nobody listens".utf8)).tlsEncoded())
        try alice.socket!.send(.send(.init(id: "lost", group: "g", message: sent)))
        let isSent = { (frame: ServerFrame) -> Bool in
            if case .message(let message) = frame { return message.seq == 2 && message.message == sent }
            return false
        }

        var seenLive = false
        let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = try? await bobsSocket.closed.value
                return true
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        #expect(closed, "node 2 closes Bob's connection once it listens again")
        while let frame = await bob.nextFrame(timeout: .milliseconds(1)) {
            if isSent(frame) { seenLive = true }
        }
        let replayed = await bob.connect().contains(where: isSent)
        #expect(replayed || seenLive, "Bob gets the message sent while node 2 did not listen")
        #expect(replayed, "the reconnection's replay brings it")
    }

    @Test func notificationsRoundTripAndAnythingElseIsIgnored() {
        let events: [ClusterEvent] = [
            .appended(group: 7, seq: 42, kind: .commit, size: 100, count: 1),
            .appended(group: 7, seq: 42, kind: .application, size: 100, count: 42), .destroyed(group: 3),
            .sessionsEnded(device: 9),
        ]
        for event in events {
            #expect(ClusterEvent(payload: event.payload(node: "n1"), ownNode: "n2") == event)
            #expect(ClusterEvent(payload: event.payload(node: "n1"), ownNode: "n1") == nil, "a node's own is ignored")
        }
        for junk in [
            "", "m n1 7 42 a", "m n1 7 -1 a 1", "m n1 7 42 z 1", "m n1 7 42 a -5", "x n1 seven", "s n1 9 9", "? n1 1",
            "m  7 42 a 1", "m n1 7 42 a 1 0", "m n1 7 42 a 1 43", "m n1 7 42 c 1 2", "m n1 7 42 a 1 x",
        ] {
            #expect(ClusterEvent(payload: junk, ownNode: "n2") == nil, "\(junk)")
        }
        // A run names at most one writer batch: a larger count (anyone who can connect to the
        // database may NOTIFY) would make a node read and resend a whole log.
        let widest = ClusterEvent(payload: "m n1 7 \(UInt64.max) a 1 \(ClusterEvent.maxRun)", ownNode: "n2")
        #expect(widest == .appended(group: 7, seq: .max, kind: .application, size: 1, count: ClusterEvent.maxRun))
        #expect(ClusterEvent(payload: "m n1 7 5000000 a 0 5000000", ownNode: "n2") == nil)
        #expect(ClusterEvent(payload: "m n1 7 \(UInt64.max) a 1 \(UInt64.max)", ownNode: "n2") == nil)
        // One message is sent in the six fields a node of the version before runs reads.
        #expect(
            ClusterEvent.appended(group: 7, seq: 42, kind: .commit, size: 100, count: 1).payload(node: "n1")
                == "m n1 7 42 c 100"
        )
        #expect(DeliveryShard.readLimit(1...UInt64.max) == Int.max)
        #expect(DeliveryShard.readLimit(40...42) == 3)
    }

    /// The group's messages a member receives until none comes for a few seconds.
    /// Alice sends through node 1, then fails over to node 2 before her echo and resends the id
    /// there: node 2 answers with the stored message's echo and seq, whether the resend passes
    /// its checks (found by the writer under the group's lock: the duplicate path) or is refused
    /// by them (an epoch past its grace after two of Bob's commits: looked up then). Stored once.
    @Test func aResendToAnotherNodeGetsTheStoredEcho() async throws {
        try await TestServer.withNodes(2) { nodes, _ in
            try await resendAcrossNodes(nodes)
        }
    }

    private func resendAcrossNodes(_ nodes: [TestServer]) async throws {
        let (alice, bob) = try await Self.aliceAndBob(across: nodes)
        func send(_ message: MLSMessage) throws {
            try alice.socket!.send(.send(.init(id: "m-1", group: "g", message: Data(try message.tlsEncoded()))))
        }
        let first = try alice.groups["g"]!.encrypt(Array("once".utf8))
        try send(first)
        let echo = try #require(await answer(to: "m-1", on: alice.socket!))

        alice.socket?.close()
        alice.socket = TestSocket(server: nodes[1], token: alice.token)
        _ = await alice.socket!.replay()
        try send(try alice.groups["g"]!.encrypt(Array("once".utf8)))
        let resent = try #require(await answer(to: "m-1", on: alice.socket!))
        #expect(resent.seq == echo.seq && resent.message == echo.message)

        for _ in 0..<2 {
            let update = try bob.groups["g"]!.selfUpdate()
            try bob.apply(try #require(try await bob.submit(update.message, to: "g").accepted))
        }
        try send(first)
        let stale = try #require(await answer(to: "m-1", on: alice.socket!))
        #expect(stale.seq == echo.seq && stale.message == echo.message)
        let storage = nodes[1].server.storage
        let group = try #require(try storage.group(named: "g"))
        let log = try storage.messages(groupID: group.id, after: 0, through: nil, limit: 10)
        #expect(log.map(\.seq) == [1, 2, 3, 4], "the resends stored nothing")
        #expect(log[1].clientID == "m-1" && Data(log[1].data) == echo.message)
    }

    /// Review s9: a resend that passes a node's checks against a group it has not yet seen move
    /// on (two of Bob's commits through node 2, not yet told to node 1) is refused by storage as
    /// stale. Its first copy is stored, so the answer is that copy's echo, never `wrongEpoch`
    /// (which tells the client those bytes can never be stored, and it rebuilds them).
    @Test func aResendStorageFindsStaleGetsTheStoredEcho() async throws {
        try await TestServer.withNodes(2) { nodes, _ in
            try await resendOnAStaleNode(nodes)
        }
    }

    private func resendOnAStaleNode(_ nodes: [TestServer]) async throws {
        let (alice, bob) = try await Self.aliceAndBob(across: nodes)
        let first = Data(try alice.groups["g"]!.encrypt(Array("once".utf8)).tlsEncoded())
        try alice.socket!.send(.send(.init(id: "m-1", group: "g", message: first)))
        let echo = try #require(await answer(to: "m-1", on: alice.socket!))

        // Node 1 hears no more of node 2: its copy of the group stays at this epoch.
        try #require(nodes[0].server.storage as? PostgresStorage).stopListening()
        for _ in 0..<2 {
            let update = try bob.groups["g"]!.selfUpdate()
            try bob.apply(try #require(try await bob.submit(update.message, to: "g").accepted))
        }
        try alice.socket!.send(.send(.init(id: "m-1", group: "g", message: first)))
        let resent = await answer(to: "m-1", on: alice.socket!)
        #expect(resent?.seq == echo.seq && resent?.message == echo.message, "answered with the stored echo")
        let storage = nodes[1].server.storage
        let group = try #require(try storage.group(named: "g"))
        #expect(try storage.messages(groupID: group.id, after: 0, through: nil, limit: 10).map(\.seq) == [1, 2, 3, 4])
    }

    /// The echo of `id` on `socket`, skipping other frames; nil if it is refused or never comes.
    private func answer(to id: String, on socket: TestSocket) async -> ServerFrame.Message? {
        while let frame = await socket.next() {
            switch frame {
            case .message(let echo) where echo.id == id: return echo
            case .error(let error) where error.id == id: return nil
            default: continue
            }
        }
        return nil
    }

    private func messages(of user: TestUser) async -> [ServerFrame.Message] {
        var messages: [ServerFrame.Message] = []
        while let frame = await user.nextFrame(timeout: .seconds(4)) {
            if case .message(let message) = frame, message.group == "g" { messages.append(message) }
        }
        return messages
    }
}
