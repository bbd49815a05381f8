import Foundation
import Synchronization
import Testing

@testable import ParleyServer

/// Group commit (issue 15): the log writer stores many sends from many groups per transaction,
/// and acknowledges (fans out) each only after its transaction committed.
@Suite struct GroupCommitTests {
    /// A database with one sending device and `groups` empty groups (ids in order).
    struct Fixture {
        let path: String
        let storage: SQLiteStorage
        let device: Int64
        let groups: [Int64]

        init(groups count: Int) throws {
            let directory = NSTemporaryDirectory() + "parley-group-commit-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            path = directory + "/db.sqlite"
            let storage = try SQLiteStorage(path: path)
            let user = try storage.createUser(name: "alice", passwordHash: [1], salt: [2])
            let device = try storage.device(userID: user, signatureKey: [1])
            (self.storage, self.device) = (storage, device)
            groups = try (0..<count).map { index in
                try storage.createGroup(
                    GroupRecord(
                        id: 0,
                        name: "g\(index)",
                        mlsGroupID: [UInt8(index)],
                        state: [0],
                        lastSeq: 0,
                        createdAt: 0
                    ),
                    creatorDevice: device
                )
            }
        }

        func append(_ group: Int64, _ byte: UInt8, clientID: String? = nil) -> LogAppend {
            LogAppend(groupID: group, time: 1, senderDevice: device, data: [byte], clientID: clientID)
        }

        func proposal(_ group: Int64, _ byte: UInt8, clientID: String? = nil) -> LogAppend {
            var proposal = append(group, byte, clientID: clientID)
            proposal.isProposal = true
            return proposal
        }

        /// The stored data bytes of a group, in seq order, read through a fresh connection.
        static func stored(at path: String, group: Int64) throws -> [UInt8] {
            try SQLiteStorage(path: path).messages(groupID: group, after: 0, through: nil, limit: 1000).map(\.data[0])
        }
    }

    /// What `onCommit` saw, in the order the writer called it.
    final class Commits: Sendable {
        let seen = Mutex<[(group: Int64, seq: UInt64, byte: UInt8)]>([])

        func entry(_ append: LogAppend, incarnation: UInt64 = 1) -> (LogWriter.Entry, Ticket) {
            let ticket = Ticket()
            let (group, byte) = (append.groupID, append.data[0])
            let entry = LogWriter.Entry(
                append: append,
                incarnation: incarnation,
                onCommit: { [self] seq in seen.withLock { $0.append((group, seq, byte)) } },
                ticket: ticket
            )
            return (entry, ticket)
        }

        func bytes(in group: Int64) -> [UInt8] { seen.withLock { $0.filter { $0.group == group }.map(\.byte) } }
        var count: Int { seen.withLock { $0.count } }
    }

    static func outcome(_ ticket: Ticket) async -> Result<UInt64, any Error> {
        do { return .success(try await ticket.value) } catch { return .failure(error) }
    }

    @Test func sendsOfManyGroupsShareOneTransactionInOrder() async throws {
        let fixture = try Fixture(groups: 3)
        let writer = LogWriter(storage: fixture.storage)
        let commits = Commits()
        var tickets: [(group: Int64, byte: UInt8, ticket: Ticket)] = []
        // Queued before the writer starts, so all of them wait for one transaction.
        for byte in UInt8(0)..<30 {
            let group = fixture.groups[Int(byte) % 3]
            let (entry, ticket) = commits.entry(fixture.append(group, byte))
            try writer.enqueue(entry)
            tickets.append((group, byte, ticket))
        }
        writer.start()
        for (group, byte, ticket) in tickets {
            let seq = try await ticket.value
            // Each group's seqs follow the order its sends were queued in: 1, 2, 3, ...
            #expect(seq == UInt64(byte / 3) + 1, "group \(group)")
        }
        #expect(writer.written.transactions == 1)
        #expect(writer.written.entries == 30)
        for (index, group) in fixture.groups.enumerated() {
            let expected = stride(from: UInt8(index), to: 30, by: 3).map { $0 }
            #expect(commits.bytes(in: group) == expected)
            #expect(try Fixture.stored(at: fixture.path, group: group) == expected)
        }
        writer.stop()
    }

    @Test func aRefusedSendRefusesOnlyItselfAndTheLaterOnesOfItsGroup() async throws {
        let fixture = try Fixture(groups: 2)
        let (g0, g1) = (fixture.groups[0], fixture.groups[1])
        let writer = LogWriter(storage: fixture.storage)
        let commits = Commits()
        let appends: [LogAppend] = [
            fixture.append(g0, 1, clientID: "a"),
            fixture.append(g1, 2, clientID: "b"),
            // No such group: the foreign key refuses it.
            fixture.append(999, 3),
            fixture.append(g0, 4, clientID: "c"),
            // The same client id twice in one group, on a proposal: refused as a duplicate...
            fixture.proposal(g1, 5, clientID: "b"),
            fixture.append(g0, 6),
            // ...and the later one of that group, checked as if it had been stored.
            fixture.append(g1, 7),
        ]
        var tickets: [Ticket] = []
        for append in appends {
            let (entry, ticket) = commits.entry(append, incarnation: UInt64(append.groupID))
            try writer.enqueue(entry)
            tickets.append(ticket)
        }
        writer.start()
        var outcomes: [Result<UInt64, any Error>] = []
        for ticket in tickets { outcomes.append(await Self.outcome(ticket)) }
        #expect(writer.written.transactions == 1)
        #expect(outcomes.map { (try? $0.get()) } == [1, 1, nil, 2, nil, 3, nil])
        if case .failure(let error) = outcomes[6] { #expect(error as? StorageError == .earlierRefused) }
        #expect(commits.bytes(in: g0) == [1, 4, 6])
        #expect(commits.bytes(in: g1) == [2])
        #expect(commits.count == 4)
        #expect(try Fixture.stored(at: fixture.path, group: g0) == [1, 4, 6])
        #expect(try Fixture.stored(at: fixture.path, group: g1) == [2])
        // A send checked against g1's state before the refusal, written in a later transaction:
        // refused without being stored.
        let (late, lateTicket) = commits.entry(fixture.append(g1, 8), incarnation: UInt64(g1))
        try writer.enqueue(late)
        await #expect(throws: LogWriterError.earlierRefused) { try await lateTicket.value }
        #expect(try Fixture.stored(at: fixture.path, group: g1) == [2])
        writer.stop()
    }

    /// A plain application message refused as a duplicate (a resend that passed the delivery
    /// checks, session 9) refuses nothing after it, in its transaction or a later one: it moved
    /// no state the later sends were checked against.
    @Test func aResentApplicationMessageRefusesNothingElse() async throws {
        let fixture = try Fixture(groups: 1)
        let group = fixture.groups[0]
        let writer = LogWriter(storage: fixture.storage)
        let commits = Commits()
        var tickets: [Ticket] = []
        for append in [
            fixture.append(group, 1, clientID: "a"), fixture.append(group, 2, clientID: "a"),
            fixture.append(group, 3, clientID: "b"),
        ] {
            let (entry, ticket) = commits.entry(append, incarnation: 1)
            try writer.enqueue(entry)
            tickets.append(ticket)
        }
        writer.start()
        var outcomes: [Result<UInt64, any Error>] = []
        for ticket in tickets { outcomes.append(await Self.outcome(ticket)) }
        #expect(outcomes.map { (try? $0.get()) } == [1, nil, 2])
        if case .failure(let error) = outcomes[1] { #expect(error as? StorageError == .duplicate(seq: 1)) }
        let (late, lateTicket) = commits.entry(fixture.append(group, 4), incarnation: 1)
        try writer.enqueue(late)
        #expect(try await lateTicket.value == 3)
        #expect(writer.refusedCount == 0)
        #expect(try Fixture.stored(at: fixture.path, group: group) == [1, 3, 4])
        writer.stop()
    }

    @Test func closingTheDatabaseBeforeCommitAcknowledgesNothing() async throws {
        let fixture = try Fixture(groups: 2)
        let writer = LogWriter(storage: fixture.storage)
        let commits = Commits()
        var tickets: [Ticket] = []
        for byte in UInt8(0)..<10 {
            let (entry, ticket) = commits.entry(fixture.append(fixture.groups[Int(byte) % 2], byte))
            try writer.enqueue(entry)
            tickets.append(ticket)
        }
        try fixture.storage.close()
        writer.start()
        for ticket in tickets { await #expect(throws: (any Error).self) { try await ticket.value } }
        #expect(commits.count == 0)
        for group in fixture.groups { #expect(try Fixture.stored(at: fixture.path, group: group).isEmpty) }
        writer.stop()
    }

    /// The database closes (as in a crash) while sends keep arriving from several tasks: every
    /// send that was acknowledged is stored, and nothing that was refused is.
    @Test func acknowledgedIsExactlyWhatIsStoredWhenTheDatabaseClosesUnderLoad() async throws {
        let fixture = try Fixture(groups: 4)
        let writer = LogWriter(storage: fixture.storage)
        writer.start()
        let commits = Commits()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for group in fixture.groups {
                tasks.addTask {
                    for byte in UInt8(0)..<200 {
                        let (entry, ticket) = commits.entry(fixture.append(group, byte), incarnation: UInt64(group))
                        guard (try? writer.enqueue(entry)) != nil else { return }
                        guard (try? await ticket.value) != nil else { return }
                    }
                }
            }
            tasks.addTask {
                try await Task.sleep(for: .milliseconds(50))
                try fixture.storage.close()
            }
            try await tasks.waitForAll()
        }
        writer.stop()
        for group in fixture.groups {
            #expect(try Fixture.stored(at: fixture.path, group: group) == commits.bytes(in: group))
        }
    }

    /// Review s5 L3: a refused incarnation is remembered only until the service releases it
    /// (it dropped that load of the group); the set of refused incarnations does not grow forever.
    @Test func aReleasedRefusedIncarnationIsForgotten() async throws {
        let fixture = try Fixture(groups: 1)
        let writer = LogWriter(storage: fixture.storage)
        let commits = Commits()
        // No such group: the foreign key refuses it, and with it incarnation 7.
        let (refused, refusedTicket) = commits.entry(fixture.append(999, 1), incarnation: 7)
        try writer.enqueue(refused)
        writer.start()
        await #expect(throws: (any Error).self) { try await refusedTicket.value }
        #expect(writer.refusedCount == 1)
        writer.release(incarnation: 7)
        #expect(writer.refusedCount == 0)
        // A later entry of a released incarnation is not refused for it (the service no longer sends any).
        let (later, laterTicket) = commits.entry(fixture.append(fixture.groups[0], 3), incarnation: 7)
        try writer.enqueue(later)
        #expect(try await laterTicket.value == 1)
        writer.stop()
    }

    @Test func stoppingRefusesWhatWaitsAndAFullQueueRefusesAtOnce() async throws {
        let fixture = try Fixture(groups: 1)
        let writer = LogWriter(storage: fixture.storage, capacity: 2)
        let commits = Commits()
        let (first, firstTicket) = commits.entry(fixture.append(fixture.groups[0], 1))
        let (second, secondTicket) = commits.entry(fixture.append(fixture.groups[0], 2))
        let (third, _) = commits.entry(fixture.append(fixture.groups[0], 3))
        try writer.enqueue(first)
        try writer.enqueue(second)
        #expect(throws: LogWriterError.full) { try writer.enqueue(third) }
        writer.stop()
        await #expect(throws: LogWriterError.stopped) { try await firstTicket.value }
        await #expect(throws: LogWriterError.stopped) { try await secondTicket.value }
        #expect(throws: LogWriterError.stopped) { try writer.enqueue(third) }
        #expect(commits.count == 0)
        #expect(try Fixture.stored(at: fixture.path, group: fixture.groups[0]).isEmpty)
    }
}
