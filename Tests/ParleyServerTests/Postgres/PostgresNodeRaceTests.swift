import Foundation
import Testing

@testable import ParleyServer

/// What one node's stale view must not let through when several nodes share PostgreSQL, and
/// what a stuck peer or a role default must not do to a node: each performed against a real
/// database, two `PostgresStorage`s standing for two nodes.
@Suite struct PostgresNodeRaceTests {
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
}
