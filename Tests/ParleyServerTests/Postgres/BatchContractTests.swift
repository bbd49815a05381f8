import Foundation
import Synchronization
import Testing

@testable import ParleyServer

/// Group commit's batches, against SQLite and PostgreSQL: every entry of a batch gets its own
/// exact answer, whichever path PostgreSQL takes (at once, or one by one).
@Suite(.storageThreads) struct BatchContractTests {
    typealias Fixture = StorageContractTests.Fixture

    /// An entry's answer, comparable: its seq, or the storage error that refused it.
    enum Answer: Equatable {
        case seq(UInt64)
        case refused(StorageError)
        case other(String)

        init(_ result: Result<UInt64, any Error>) {
            switch result {
            case .success(let seq): self = .seq(seq)
            case .failure(let error as StorageError): self = .refused(error)
            case .failure(let error): self = .other("\(type(of: error))")
            }
        }
    }

    /// The fixture's group `g` (seq 2 stored under client id "taken"), a group `h` of bob's and
    /// a group `k` of alice's, and one batch mixing good messages, a duplicate client id (stored
    /// before, and twice within the batch), a commit and a proposal of the epoch it left.
    struct Mixed {
        let fixture: Fixture
        let h: Int64, k: Int64
        let batch: [LogAppend]

        init(_ kind: StorageKind) throws {
            fixture = try Fixture(kind)
            let storage = fixture.storage
            h = try storage.createGroup(
                GroupRecord(id: 0, name: "h", mlsGroupID: [8], state: [0], lastSeq: 0, createdAt: 0),
                creatorDevice: fixture.bobDevice
            )
            k = try storage.createGroup(
                GroupRecord(id: 0, name: "k", mlsGroupID: [7], state: [0], lastSeq: 0, createdAt: 0),
                creatorDevice: fixture.aliceDevice
            )
            _ = try fixture.send(2, clientID: "taken")
            let (g, alice, bob) = (fixture.group, fixture.aliceDevice, fixture.bobDevice)
            func entry(_ group: Int64, _ device: Int64, _ byte: UInt8, _ id: String?) -> LogAppend {
                LogAppend(groupID: group, time: 3_000, senderDevice: device, data: [byte], clientID: id)
            }
            var commit = LogAppend(groupID: h, time: 3_000, senderDevice: bob, data: [14], newState: [44])
            commit.epoch = 0
            var proposal = entry(h, bob, 15, "p")
            (proposal.isProposal, proposal.epoch) = (true, 0)
            batch = [
                entry(g, alice, 3, "a"), entry(h, bob, 13, "b"), entry(g, alice, 4, "taken"), entry(g, alice, 5, "c"),
                entry(k, alice, 20, "e"), commit, proposal, entry(h, bob, 16, nil), entry(k, alice, 21, "f"),
                entry(k, alice, 22, "e"), entry(k, alice, 23, "g"),
            ]
        }

        /// The answers each storage owes. SQLite is one node, whose delivery shard checks epochs
        /// before storing, so its storage keeps no epoch (LogAppend.epoch: "storage that several
        /// nodes share refuses"); PostgreSQL refuses the proposal of the epoch the commit left.
        /// A plain application message refused as a duplicate (a resend) refuses nothing after it
        /// (LogAppend.refusalSpares): "c" and "g" are stored.
        var expected: [Answer] {
            let shared = fixture.storage is PostgresStorage
            return [
                .seq(3), .seq(1), .refused(.duplicate(seq: 2)), .seq(4),
                .seq(1), .seq(2), shared ? .refused(.staleEpoch(current: 1)) : .seq(3),
                shared ? .refused(.earlierRefused) : .seq(4), .seq(2),
                .refused(.duplicate(seq: 1)), .seq(3),
            ]
        }

        /// Only what was answered with a seq is stored, at that seq; each group's last seq and a
        /// commit's state moved with it.
        func checkStored() throws {
            let storage = fixture.storage
            let shared = storage is PostgresStorage
            func data(_ group: Int64) throws -> [[UInt8]] {
                try storage.messages(groupID: group, after: 0, through: nil, limit: 20).map(\.data)
            }
            #expect(try data(fixture.group) == [[1], [2], [3], [5]])
            #expect(try data(h) == (shared ? [[13], [14]] : [[13], [14], [15], [16]]))
            #expect(try data(k) == [[20], [21], [23]])
            #expect(try storage.group(id: fixture.group)?.lastSeq == 4)
            #expect(try storage.group(id: h)?.lastSeq == (shared ? 2 : 4))
            let stateOfH = try #require(try storage.group(id: h))
            #expect(stateOfH.state == [44] && stateOfH.stateSeq == 2)
            #expect(try storage.group(id: k)?.lastSeq == 3)
            let e = try storage.message(groupID: k, senderDevice: fixture.aliceDevice, clientID: "e")
            #expect(e?.seq == 1 && e?.data == [20])
        }
    }

    @Test(arguments: StorageKind.allCases)
    func aMixedBatchAnswersEveryEntryExactly(_ kind: StorageKind) throws {
        let mixed = try Mixed(kind)
        defer { mixed.fixture.storage.closeForTest() }
        let answers = try mixed.fixture.storage.append(batch: mixed.batch).map(Answer.init)
        #expect(answers == mixed.expected)
        try mixed.checkStored()
    }

    /// PostgreSQL's two paths decide alike: the one-by-one path (taken when a batch changes
    /// memberships or the batch at once fails) gives the same answers and stores the same rows.
    @Test func oneByOneAnswersAsTheBatchAtOnce() throws {
        let mixed = try Mixed(.postgres)
        defer { mixed.fixture.storage.closeForTest() }
        let postgres = try #require(mixed.fixture.storage as? PostgresStorage)
        #expect(PostgresStorage.fitsAtOnce(mixed.batch))
        let answers = try postgres.appendOneByOne(mixed.batch).map(Answer.init)
        #expect(answers == mixed.expected)
        try mixed.checkStored()
    }

    /// A batch at once sends one notification per run of one group's messages, naming the last
    /// seq and how many; a commit is told alone. Another node reads them all from it.
    @Test func aBatchNotifiesEachGroupOnce() async throws {
        let mixed = try Mixed(.postgres)
        defer { mixed.fixture.storage.closeForTest() }
        let postgres = try #require(mixed.fixture.storage as? PostgresStorage)
        let other = try PostgresStorage(url: postgres.url, maxConnections: 2)
        defer { other.close() }
        let events = Mutex<[ClusterEvent]>([])
        try await other.listen { event in events.withLock { $0.append(event) } }
        _ = try postgres.append(batch: mixed.batch)
        let deadline = ContinuousClock.now + .seconds(20)
        while events.withLock({ $0.count }) < 4, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let (g, h, k) = (mixed.fixture.group, mixed.h, mixed.k)
        #expect(
            Set(events.withLock { $0 }) == [
                .appended(group: g, seq: 4, kind: .application, size: 2, count: 2),
                .appended(group: h, seq: 1, kind: .application, size: 1, count: 1),
                .appended(group: h, seq: 2, kind: .commit, size: 1, count: 1),
                .appended(group: k, seq: 3, kind: .application, size: 3, count: 3),
            ]
        )
    }

    /// A group whose row another node's transaction holds does not hold up the batch's other
    /// groups (`SKIP LOCKED`): they are committed while it waits, and its entries follow once
    /// the lock is released, each with its exact answer.
    @Test func aHeldGroupWaitsAloneAndTheOthersAreStoredMeanwhile() throws {
        let fixture = try Fixture(.postgres)
        defer { fixture.storage.closeForTest() }
        let postgres = try #require(fixture.storage as? PostgresStorage)
        let (g, alice, bob) = (fixture.group, fixture.aliceDevice, fixture.bobDevice)
        let h = try postgres.createGroup(
            GroupRecord(id: 0, name: "h", mlsGroupID: [8], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: bob
        )
        let other = try PostgresStorage(url: postgres.url, maxConnections: 2)
        defer { other.close() }
        let (held, sawG, released) = (
            DispatchSemaphore(value: 0), DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)
        )
        Thread {
            _ = try? other.write { db in
                try db.query("SELECT id FROM groups WHERE id = \(h) FOR UPDATE")
                held.signal()
                // Held until g's message is visible from outside the batch, or 4 s (under lock_timeout).
                let deadline = ContinuousClock.now + .seconds(4)
                while ContinuousClock.now < deadline {
                    if (try? other.messages(groupID: g, after: 1, through: nil, limit: 5).count) == 1 {
                        sawG.signal()
                        break
                    }
                    Thread.sleep(forTimeInterval: 0.02)
                }
            }
            released.signal()
        }.start()
        held.wait()
        let answers = try postgres.append(batch: [
            LogAppend(groupID: g, time: 3_000, senderDevice: alice, data: [3], clientID: "a"),
            LogAppend(groupID: h, time: 3_000, senderDevice: bob, data: [4], clientID: "b"),
            LogAppend(groupID: h, time: 3_000, senderDevice: bob, data: [5], clientID: "b"),
        ]).map(Answer.init)
        released.wait()
        #expect(answers == [.seq(2), .seq(1), .refused(.duplicate(seq: 1))])
        #expect(sawG.wait(timeout: .now()) == .success, "g's message was committed while h's row was held")
        #expect(try postgres.messages(groupID: h, after: 0, through: nil, limit: 5).map(\.data) == [[4]])
    }

    /// Only a plain application message's duplicate spares its group: a handshake refused as a
    /// duplicate still refuses the group's later entries, which were checked against the state
    /// it moved, on both storages and both of PostgreSQL's paths.
    @Test(arguments: StorageKind.allCases)
    func aDuplicateHandshakeStillRefusesItsGroupsLaterEntries(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        var proposal = LogAppend(
            groupID: fixture.group,
            time: 3_000,
            senderDevice: fixture.aliceDevice,
            data: [9],
            clientID: "p"
        )
        (proposal.isProposal, proposal.epoch) = (true, 0)
        let first = try fixture.storage.append(proposal)
        let after = LogAppend(
            groupID: fixture.group,
            time: 3_000,
            senderDevice: fixture.aliceDevice,
            data: [10],
            clientID: "q"
        )
        let expected: [Answer] = [.refused(.duplicate(seq: first)), .refused(.earlierRefused)]
        #expect(try fixture.storage.append(batch: [proposal, after]).map(Answer.init) == expected)
        if let postgres = fixture.storage as? PostgresStorage {
            #expect(try postgres.appendOneByOne([proposal, after]).map(Answer.init) == expected)
        }
        #expect(try fixture.storage.group(id: fixture.group)?.lastSeq == first)
    }

    /// The log writer's acknowledgements, answered one by one as a single one would be: the
    /// accepted ones move the cursor (never back) and drop the Welcomes they cover, the others
    /// are refused with the exact reason, and none stops another.
    @Test(arguments: StorageKind.allCases)
    func aBatchOfAcknowledgementsAnswersEachExactly(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        let (alice, bob) = (fixture.aliceDevice, fixture.bobDevice)
        _ = try fixture.send(2)
        _ = try fixture.send(3)
        _ = try storage.append(
            LogAppend(groupID: fixture.group, time: 2_000, senderDevice: alice, data: [4], welcomes: [(bob, [7])])
        )
        _ = try storage.append(
            LogAppend(groupID: fixture.group, time: 2_000, senderDevice: alice, data: [5], leftDevices: [bob])
        )
        _ = try fixture.send(6)
        func ack(_ device: Int64, _ group: String, _ seq: UInt64) -> LogAcknowledgement {
            LogAcknowledgement(deviceID: device, groupName: group, seq: seq)
        }
        let results = try storage.acknowledge(batch: [
            ack(alice, "g", 3), ack(bob, "g", 4), ack(bob, "g", 6), ack(alice, "nope", 1), ack(alice, "g", 99),
            ack(alice, "g", 2),
        ])
        let answers = results.map { result -> AcknowledgementRefusal? in
            if case .failure(let error) = result { return error as? AcknowledgementRefusal ?? .notMember }
            return nil
        }
        #expect(answers.map { $0 == nil } == [true, true, false, false, false, true])
        #expect(answers[2] == .beyondLog(last: 5), "bob's log ends where he was removed")
        #expect(answers[3] == .notMember)
        #expect(answers[4] == .beyondLog(last: 6))
        #expect(try storage.membership(groupID: fixture.group, deviceID: alice)?.ackedSeq == 3, "never moved back")
        #expect(try storage.membership(groupID: fixture.group, deviceID: bob)?.ackedSeq == 4)
        #expect(try storage.welcomes(forDevice: bob).isEmpty)
    }
}
