import Foundation
import MLS
import ParleyProtocol
import PostgresNIO
import Synchronization
import Testing

@testable import ParleyServer

/// The multi-node path under attack (issue 16): one client id through two nodes at once, fan-out
/// of another node's message to the members as of its seq, a group destroyed through another node.
@Suite(.serialized, .storageThreads) struct PostgresMultiNodeAttackTests {
    // MARK: One client id, two nodes

    @Test(arguments: StorageKind.allCases)
    func aStoredClientIDIsRefusedAsADuplicateNamingItsSeq(_ kind: StorageKind) throws {
        let fixture = try StorageContractTests.Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let first = try fixture.send(1, clientID: "same")
        #expect(throws: StorageError.duplicate(seq: first)) { try fixture.send(2, clientID: "same") }
        let again = LogAppend(
            groupID: fixture.group,
            time: 3,
            senderDevice: fixture.aliceDevice,
            data: [3],
            clientID: "same"
        )
        let results = try fixture.storage.append(batch: [again])
        #expect(throws: StorageError.duplicate(seq: first)) { try results[0].get() }
        let log = try fixture.storage.messages(groupID: fixture.group, after: 0, through: nil, limit: 10)
        #expect(log.map(\.clientID) == [nil, "same"], "stored once")
    }

    /// Two nodes' storages append the same ids at the same moment: each id is stored once, and
    /// the other append is told the stored seq (never a unique violation, never a second copy).
    @Test func theSameIDsAppendedThroughTwoNodesAtOnceAreStoredOnce() throws {
        let url = try TestPostgres.freshDatabase()
        let nodes = try (0..<2).map { _ in try PostgresStorage(url: url, maxConnections: 4) }
        defer { for node in nodes { node.close() } }
        let user = try nodes[0].createUser(name: "alice", passwordHash: [1], salt: [2])
        let device = try nodes[0].device(userID: user, signatureKey: [1])
        let group = try nodes[0].createGroup(
            GroupRecord(id: 0, name: "g", mlsGroupID: [9], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: device
        )
        let ids = (0..<20).map { "id-\($0)" }
        let outcomes = Mutex<[String: [Result<UInt64, StorageError>]]>([:])
        DispatchQueue.concurrentPerform(iterations: 2 * ids.count) { index in
            let id = ids[index / 2]
            let append = LogAppend(groupID: group, time: 1, senderDevice: device, data: [1], clientID: id)
            let outcome: Result<UInt64, StorageError>
            do {
                outcome = .success(try nodes[index % 2].append(append))
            } catch let error as StorageError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(.corrupt("\(error)"))
            }
            outcomes.withLock { $0[id, default: []].append(outcome) }
        }
        let log = try nodes[1].messages(groupID: group, after: 0, through: nil, limit: 100)
        #expect(log.count == ids.count, "one message per id")
        for (id, results) in outcomes.withLock({ $0 }) {
            let stored = try #require(log.first { $0.clientID == id }?.seq)
            let answers = results.map { result -> UInt64? in
                switch result {
                case .success(let seq): seq
                case .failure(.duplicate(let seq)): seq
                case .failure: nil
                }
            }
            #expect(answers == [stored, stored], "\(id): \(results)")
        }
    }

    /// The attack through the server: one device, connected to two nodes, sends the same frame
    /// through both at once. Both connections are answered with the message's echo under one seq;
    /// no error; the log holds it once.
    @Test func theSameSendThroughTwoNodesIsAnsweredWithOneSeq() async throws {
        try await withNodes(2) { nodes in
            let alice = try await TestUser.ready("alice", on: nodes[0])
            await alice.connect()
            try await alice.createGroup("g")
            let second = TestSocket(server: nodes[1], token: alice.token)
            defer { second.close() }
            _ = await second.replay()
            let ids = (0..<8).map { "twice-\($0)" }
            for id in ids {
                let message = Data(try alice.groups["g"]!.encrypt(Array(id.utf8)).tlsEncoded())
                let frame = ClientFrame.send(.init(id: id, group: "g", message: message))
                try alice.socket!.send(frame)
                try second.send(frame)
            }
            var echoes: [String: Set<UInt64>] = [:]
            var errors: [ServerFrame.ErrorFrame] = []
            for socket in [alice.socket!, second] {
                var answered = Set<String>()
                while answered.count < ids.count, let frame = await socket.next(timeout: .seconds(15)) {
                    switch frame {
                    case .message(let echo) where echo.id.map(ids.contains) == true:
                        echoes[echo.id!, default: []].insert(echo.seq)
                        answered.insert(echo.id!)
                    case .error(let error):
                        errors.append(error)
                        if let id = error.id { answered.insert(id) }
                    default: continue
                    }
                }
            }
            #expect(errors.isEmpty, "\(errors)")
            #expect(echoes.count == ids.count && echoes.values.allSatisfy { $0.count == 1 }, "\(echoes)")
            let group = try #require(try nodes[0].server.storage.group(named: "g"))
            #expect(group.lastSeq == UInt64(ids.count), "each id stored once")
        }
    }

    // MARK: Fan-out as of the seq

    @Test func theRecipientsOfAMessageAreTheMembersAsOfItsSeq() throws {
        let fixture = try StorageContractTests.Fixture(.postgres)
        defer { fixture.storage.closeForTest() }
        let storage = try #require(fixture.storage as? PostgresStorage)
        let carol = try storage.createUser(name: "carol", passwordHash: [5], salt: [6])
        let carolDevice = try storage.device(userID: carol, signatureKey: [3])
        let (alice, bob, group) = (fixture.aliceDevice, fixture.bobDevice, fixture.group)
        let two = try fixture.send(2)
        var removal = LogAppend(
            groupID: group,
            time: 3,
            senderDevice: alice,
            data: [3],
            newState: [1],
            leftDevices: [bob]
        )
        removal.epoch = 0
        let three = try storage.append(removal)
        var addition = LogAppend(
            groupID: group,
            time: 4,
            senderDevice: alice,
            data: [4],
            newState: [2],
            welcomes: [(carolDevice, [7])],
            joinedDevices: [carolDevice]
        )
        addition.epoch = 1
        let four = try storage.append(addition)
        let five = try fixture.send(5)
        typealias R = PostgresStorage.Recipients
        #expect(try storage.recipients(groupID: group, seq: two) == R(members: [alice, bob], joined: []))
        #expect(
            try storage.recipients(groupID: group, seq: three) == R(members: [alice, bob], joined: []),
            "bob gets his removal"
        )
        #expect(try storage.recipients(groupID: group, seq: four) == R(members: [alice], joined: [carolDevice]))
        #expect(try storage.recipients(groupID: group, seq: five) == R(members: [alice, carolDevice], joined: []))
    }

    /// A node reads another node's notification of seq 1 while its own commit adding Carol is
    /// adopted in its cache but not yet stored (the group's row is held locked, as a slow
    /// transaction elsewhere would): Carol, connected before she was added, must not get seq 1.
    /// Fan-out goes to the members as of the seq, read from the stored memberships.
    @Test func aNotificationGoesToTheMembersAsOfItsSeqNotAsTheNodesCacheHasThem() async throws {
        try await withNodes(1) { nodes in
            let alice = try await TestUser.ready("alice", on: nodes[0])
            let carol = try await TestUser.ready("carol", on: nodes[0])
            for user in [alice, carol] { await user.connect() }
            try await alice.createGroup("g")
            let one = try #require(try await alice.sendText("before carol", to: "g").accepted)
            let group = try #require(try nodes[0].server.storage.group(named: "g"))
            let holder = try RowLockHolder(database: nodes[0].server.configuration.database, group: group.id)
            defer { holder.release() }
            try await holder.waitUntilLocked()
            let output = try alice.groups["g"]!.addMembers(try await alice.claim("carol"))
            let add = ClientFrame.Send(
                id: "add-carol",
                group: "g",
                message: Data(try output.message.tlsEncoded()),
                welcome: try output.welcome.map { Data(try $0.tlsEncoded()) }
            )
            try alice.socket!.send(.send(add))
            try await Task.sleep(for: .milliseconds(500))  // the node adopts the commit; storing it waits
            await nodes[0].server.delivery.clusterEvent(
                .appended(group: group.id, seq: one.seq, kind: .application, size: Int64(one.message.count), count: 1)
            )
            var carolGot: [UInt64] = []
            while let frame = await carol.nextFrame(timeout: .seconds(2)) {
                if case .message(let message) = frame { carolGot.append(message.seq) }
            }
            holder.release()
            #expect(!carolGot.contains(one.seq), "a device added after seq 1 never gets seq 1")
            #expect(await carol.nextWelcome() != nil, "the commit is stored once the lock is released")
        }
    }

    /// Holds a group's row locked from a connection of its own, on a thread of its own.
    final class RowLockHolder: Sendable {
        private let locked = Atomic<Bool>(false)
        private let failed = Atomic<Bool>(false)
        private let done = DispatchSemaphore(value: 0)
        private let released = Atomic<Bool>(false)

        init(database: String?, group: Int64) throws {
            let pool = try PostgresConnectionPool(url: try DatabaseURL(try #require(database)), maxConnections: 1)
            Thread.detachNewThread { [self] in
                defer { pool.close() }
                do {
                    try pool.withConnection { db in
                        try db.query("BEGIN")
                        try db.query("SELECT id FROM groups WHERE id = \(group) FOR UPDATE")
                        locked.store(true, ordering: .releasing)
                        // Below the nodes' lock_timeout (5 s), so the held commit is stored afterwards.
                        _ = done.wait(timeout: .now() + 3)
                        try db.query("ROLLBACK")
                    }
                } catch {
                    failed.store(true, ordering: .releasing)
                }
            }
        }

        func waitUntilLocked() async throws {
            while !locked.load(ordering: .acquiring) {
                guard !failed.load(ordering: .acquiring) else { throw ErrorBody(.internalError, "no lock") }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        func release() {
            if !released.exchange(true, ordering: .acquiringAndReleasing) { done.signal() }
        }
    }

    // MARK: A group destroyed through another node

    @Test func aGroupDestroyedThroughOneNodeIsToldLiveOnTheOthers() async throws {
        try await withNodes(2) { nodes in
            let alice = try await TestUser.ready("alice", on: nodes[0])
            let bob = try await TestUser.ready("bob", on: nodes[1])
            for user in [alice, bob] { await user.connect() }
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            try bob.join(#require(await bob.nextWelcome()))
            try await nodes[0].request(.DELETE, "/v1/groups/g", token: alice.token)
            var told = false
            while !told, let frame = await bob.nextFrame(timeout: .seconds(10)) {
                if case .groupDestroyed(let destroyed) = frame, destroyed.group == "g" { told = true }
            }
            #expect(told, "bob, on node 2, is told live")
        }
    }

    /// A replay deletes the notices it sent, not one another node stored after it read them.
    @Test(arguments: StorageKind.allCases)
    func clearingNoticesDeletesOnlyThoseRead(_ kind: StorageKind) throws {
        let fixture = try StorageContractTests.Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        try storage.destroyGroup(id: fixture.group, notify: [fixture.bobDevice], notice: nil)
        let read = try storage.notices(forDevice: fixture.bobDevice)
        #expect(read.map(\.group) == ["g"])
        // Meanwhile another group of bob's is destroyed (through another node).
        let other = try storage.createGroup(
            GroupRecord(id: 0, name: "h", mlsGroupID: [8], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: fixture.bobDevice
        )
        try storage.destroyGroup(id: other, notify: [fixture.bobDevice], notice: Data([4]))
        try storage.clearNotices(forDevice: fixture.bobDevice, ids: read.map(\.id))
        let left = try storage.notices(forDevice: fixture.bobDevice)
        #expect(left.map(\.group) == ["h"] && left.map(\.notice) == [Data([4])], "the unread notice is kept")
    }

    private func withNodes(_ count: Int, _ body: ([TestServer]) async throws -> Void) async throws {
        try await TestServer.withNodes(count) { nodes, _ in try await body(nodes) }
    }
}
