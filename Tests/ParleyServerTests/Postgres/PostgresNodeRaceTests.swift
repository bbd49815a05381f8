import Foundation
import PostgresNIO
import Testing

@testable import ParleyServer

/// What one node's stale view must not let through when several nodes share PostgreSQL, and
/// what a stuck peer or a role default must not do to a node: each performed against a real
/// database, two `PostgresStorage`s standing for two nodes.
@Suite(.storageThreads) struct PostgresNodeRaceTests {
    /// Two nodes on one fresh database, and a group of alice's that bob joined at seq 1.
    struct Nodes {
        let url: DatabaseURL
        let one: PostgresStorage, two: PostgresStorage
        let aliceDevice: Int64, bobDevice: Int64
        let group: Int64

        init() throws {
            url = try TestPostgres.freshDatabase()
            one = try PostgresStorage(url: url, maxConnections: 2)
            two = try PostgresStorage(url: url, maxConnections: 2)
            let alice = try one.createUser(name: "alice", passwordHash: [1], salt: [2])
            let bob = try one.createUser(name: "bob", passwordHash: [3], salt: [4])
            aliceDevice = try one.device(userID: alice, signatureKey: [1])
            bobDevice = try one.device(userID: bob, signatureKey: [2])
            group = try one.createGroup(
                GroupRecord(id: 0, name: "g", mlsGroupID: [9], state: [0], lastSeq: 0, createdAt: 0),
                creatorDevice: aliceDevice
            )
            var add = LogAppend(
                groupID: group,
                time: 1,
                senderDevice: aliceDevice,
                data: [1],
                joinedDevices: [bobDevice]
            )
            add.newState = [1]
            add.epoch = 0
            _ = try one.append(add)
        }

        func message(from device: Int64, epoch: UInt64, group: Int64? = nil) -> LogAppend {
            var append = LogAppend(groupID: group ?? self.group, time: 2, senderDevice: device, data: [7])
            append.epoch = epoch
            return append
        }

        func close() {
            one.close()
            two.close()
        }
    }

    /// Node 1 stores alice's commit removing bob; node 2, which has not processed it, takes
    /// bob's message checked against its stale cache: the database refuses it.
    @Test func aRemovedDeviceCannotPostThroughAnotherNode() throws {
        let nodes = try Nodes()
        defer { nodes.close() }
        var remove = LogAppend(groupID: nodes.group, time: 2, senderDevice: nodes.aliceDevice, data: [2])
        (remove.newState, remove.leftDevices, remove.epoch) = ([2], [nodes.bobDevice], 1)
        #expect(try nodes.one.append(remove) == 2)

        #expect(throws: StorageError.senderNotMember) {
            try nodes.two.append(nodes.message(from: nodes.bobDevice, epoch: 1))
        }
        let batch = try nodes.two.append(batch: [nodes.message(from: nodes.bobDevice, epoch: 2)])
        #expect(throws: StorageError.senderNotMember) { try batch[0].get() }
        // Alice's application messages: the group's epoch (2) and the one before are taken.
        #expect(try nodes.two.append(nodes.message(from: nodes.aliceDevice, epoch: 2)) == 3)
        #expect(try nodes.two.append(nodes.message(from: nodes.aliceDevice, epoch: 1)) == 4)
        #expect(throws: StorageError.staleEpoch(current: 2)) {
            try nodes.two.append(nodes.message(from: nodes.aliceDevice, epoch: 0))
        }
        #expect(
            try nodes.one.messages(groupID: nodes.group, after: 0, through: nil, limit: 10).map(\.seq) == [1, 2, 3, 4]
        )
    }

    /// Another session holds the group's row lock and does not let go: the batch refuses that
    /// group's entries after lock_timeout and stores the other group's.
    @Test func aHeldGroupLockRefusesOnlyThatGroupsEntries() throws {
        let nodes = try Nodes()
        defer { nodes.close() }
        let other = try nodes.one.createGroup(
            GroupRecord(id: 0, name: "h", mlsGroupID: [8], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: nodes.aliceDevice
        )
        let holder = try PostgresConnectionPool(url: nodes.url, maxConnections: 1)
        defer { holder.close() }
        let group = nodes.group
        let results = try holder.withConnection { db in
            try db.query("BEGIN")
            try db.query("SELECT id FROM groups WHERE id = \(group) FOR UPDATE")
            defer { _ = try? db.query("ROLLBACK") }
            return try nodes.two.append(batch: [
                nodes.message(from: nodes.aliceDevice, epoch: 1),
                nodes.message(from: nodes.aliceDevice, epoch: 0, group: other),
            ])
        }
        #expect(throws: (any Error).self) { try results[0].get() }
        #expect(
            results[0].refusal.flatMap(SQLState.of) == "55P03",
            "lock_not_available: the lock timeout, not another error"
        )
        #expect(try results[1].get() == 1, "the other group's entry is stored")
    }

    /// A role or database default of synchronous_commit = off would acknowledge what a crash
    /// loses: every connection sets it on, with the timeouts.
    @Test func sessionSettingsHoldWhateverTheDatabaseDefaults() throws {
        let url = try TestPostgres.freshDatabase()
        let admin = try PostgresConnectionPool(url: url, maxConnections: 1)
        defer { admin.close() }
        try admin.withConnection { db in
            try db.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(url.database) SET synchronous_commit = off"))
            try db.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(url.database) SET lock_timeout = 0"))
        }
        let storage = try PostgresStorage(url: url, maxConnections: 1)
        defer { storage.close() }
        let settings = try storage.read { db in
            try ["synchronous_commit", "lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"].map {
                try db.row(PostgresQuery(unsafeSQL: "SHOW \($0)"))?.text($0)
            }
        }
        #expect(settings == ["on", "5s", "30s", "1min"])
    }

    /// A transaction PostgreSQL failed answers COMMIT with ROLLBACK: that is an error, not success.
    @Test func aCommitThatRolledBackIsAnError() throws {
        let storage = try PostgresStorage(url: try TestPostgres.freshDatabase(), maxConnections: 1)
        defer { storage.close() }
        #expect(throws: PostgresStorageError.notCommitted) {
            try storage.write { db in _ = try? db.query("SELECT 1 / 0") }
        }
        #expect(try storage.users().isEmpty, "the storage goes on working")
    }
}

extension Result {
    var refusal: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
