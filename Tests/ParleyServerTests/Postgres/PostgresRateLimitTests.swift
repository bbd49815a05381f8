import Foundation
import GRDB
import MLS
import ParleyProtocol
import PostgresNIO
import Synchronization
import Testing

@testable import ParleyServer

/// Rate limits every node shares (``ServerStorage/rateLimit(_:_:take:now:)``): a token bucket per
/// key in the database, taken atomically, so nodes on one database hand out one budget together.
@Suite(.serialized, .storageThreads) struct PostgresRateLimitTests {
    @Test(arguments: StorageKind.allCases)
    func aBucketGivesItsCapacityThenRefillsAtItsRate(_ kind: StorageKind) throws {
        let storage = try kind.make()
        defer { storage.closeForTest() }
        let rule = RateLimitRule.perMinute(capacity: 3, 6)  // a token every 10 s
        let start: UInt64 = 1_000_000
        #expect(
            try storage.rateLimit("k", rule, take: false, now: start) == RateLimitAnswer(allowed: true, used: false)
        )
        let taken = try (0..<5).map { _ in try storage.rateLimit("k", rule, take: true, now: start).allowed }
        #expect(taken == [true, true, true, false, false])
        #expect(
            try storage.rateLimit("k", rule, take: false, now: start) == RateLimitAnswer(allowed: false, used: true)
        )
        // Another key is another bucket.
        #expect(try storage.rateLimit("other", rule, take: true, now: start).allowed)
        // One token back after 10 s, not two; a refused take spent nothing.
        #expect(try !storage.rateLimit("k", rule, take: true, now: start + 9_999).allowed)
        #expect(try storage.rateLimit("k", rule, take: true, now: start + 10_000).allowed)
        #expect(try !storage.rateLimit("k", rule, take: true, now: start + 10_000).allowed)
        // Full again 30 s after the last take: a full bucket, then the sweep deletes its row.
        #expect(
            try storage.rateLimit("k", rule, take: false, now: start + 40_000)
                == RateLimitAnswer(allowed: true, used: false)
        )
        #expect(try rows(storage) == 2)
        _ = try storage.deleteExpiredLinks(now: start + 40_000)
        #expect(try rows(storage) == 0)
        // No capacity: never a token; a clock past Int64 does not trap.
        let none = RateLimitRule.perHour(capacity: 0, 0)
        #expect(try !storage.rateLimit("z", none, take: true, now: start).allowed)
        #expect(try storage.rateLimit("huge", rule, take: true, now: .max).allowed)
        #expect(try storage.rateLimit("huge", .perHour(capacity: 1 << 40, 0), take: true, now: .max).allowed)
    }

    /// Three nodes' storages on one database take from one bucket at once, from many threads:
    /// together they hand out its capacity exactly, not three times it.
    @Test func threeNodesTakingAtOnceHandOutOneBudget() throws {
        let url = try TestPostgres.freshDatabase()
        let nodes = try (0..<3).map { _ in try PostgresStorage(url: url, maxConnections: 4) }
        defer { for node in nodes { node.close() } }
        let rule = RateLimitRule.perHour(capacity: 25, 1)
        let granted = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 12) { thread in
            for _ in 0..<10 {
                do {
                    if try nodes[thread % 3].rateLimit("target", rule, take: true, now: 5_000_000).allowed {
                        granted.add(1, ordering: .relaxed)
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(granted.load(ordering: .relaxed) == 25)
    }

    /// Two nodes on one database, one whose clock runs an hour ahead: a guesser who spent the
    /// budget on the other node gets nothing more from it, however far ahead it believes it is.
    /// Each times the buckets on the database's clock (`measureClockOffset`); timed on its own,
    /// the fast node saw an hour's refill (one token here, all five at a day ahead) that the
    /// database's clock had not reached.
    @Test func aNodeWhoseClockRunsAheadGrantsNoExtraTokens() throws {
        let url = try TestPostgres.freshDatabase()
        let hour: UInt64 = 3_600_000
        let honest = try PostgresStorage(url: url, maxConnections: 1)
        let ahead = try PostgresStorage(url: url, maxConnections: 1, localClock: { Clock.milliseconds() + hour })
        defer { for node in [honest, ahead] { node.close() } }
        let rule = RateLimitRule.perHour(capacity: 5, 1)
        let spent = try (0..<5).map { _ in
            try honest.rateLimit("guesser", rule, take: true, now: Clock.milliseconds()).allowed
        }
        #expect(spent == [true, true, true, true, true])
        let more = try (0..<5).map { _ in
            try ahead.rateLimit("guesser", rule, take: true, now: Clock.milliseconds() + hour).allowed
        }
        #expect(more == [false, false, false, false, false])
        // Each node's offset is what its clock is off by, within a round trip of this machine.
        #expect(abs(honest.clockOffset.load(ordering: .relaxed)) < 5_000)
        #expect(abs(ahead.clockOffset.load(ordering: .relaxed) + Int64(hour)) < 5_000)
        // And the sweep, on the fast node's clock, deletes no bucket that is not full.
        _ = try ahead.deleteExpiredLinks(now: Clock.milliseconds() + hour)
        #expect(try !honest.rateLimit("guesser", rule, take: true, now: Clock.milliseconds()).allowed)
    }

    /// Review s9: the sweep's re-measurement keeps the offset when it differs only by a round
    /// trip's noise (9a4921c: under a second). Taken as it came, bucket times jittered by a few
    /// milliseconds from one sweep to the next, and a bucket full exactly at the sweep's time was
    /// deleted by it or not by chance (aBucketGivesItsCapacityThenRefillsAtItsRate failed so under
    /// load). Here the second measurement's answer seems to take 20 ms longer: its midpoint moves
    /// 10 ms, and the clocks did not drift.
    @Test func aRemeasurementWithinItsRoundTripKeepsTheOffset() throws {
        let calls = Mutex(0)
        let node = try PostgresStorage(
            url: try TestPostgres.freshDatabase(),
            maxConnections: 1,
            localClock: {
                // Calls 0 and 1 are the first measurement's; call 3 ends the second.
                let call = calls.withLock { calls in
                    defer { calls += 1 }
                    return calls
                }
                return Clock.milliseconds() + (call == 3 ? 20 : 0)
            }
        )
        defer { node.close() }
        let first = node.clockOffset.load(ordering: .relaxed)
        try node.measureClockOffset()
        #expect(node.clockOffset.load(ordering: .relaxed) == first)
        #expect(calls.withLock { $0 } == 4)
    }

    /// Review s9: clocks at the ends of their range (a node whose clock reads 0 or UInt64.max,
    /// `now` of either) trap nothing: the offset each node measures is bounded, the bucket time
    /// stays far inside Int64, and each bucket still gives its capacity and no more.
    @Test func clocksAtTheEndsOfTheirRangeTrapNothing() throws {
        let url = try TestPostgres.freshDatabase()
        let zero = try PostgresStorage(url: url, maxConnections: 1, localClock: { 0 })
        let end = try PostgresStorage(url: url, maxConnections: 1, localClock: { .max })
        defer { for node in [zero, end] { node.close() } }
        let bound = PostgresStorage.maxClockOffset
        #expect(zero.clockOffset.load(ordering: .relaxed) > 0)
        #expect(end.clockOffset.load(ordering: .relaxed) == -bound)
        let rule = RateLimitRule.perHour(capacity: 5, 1)
        for (node, now, key) in [(zero, UInt64(0), "zero"), (end, UInt64.max, "end"), (zero, UInt64.max, "both")] {
            let taken = try (0..<6).map { _ in try node.rateLimit(key, rule, take: true, now: now).allowed }
            #expect(taken == [true, true, true, true, true, false], "\(key)")
            #expect(try !node.rateLimit(key, rule, take: false, now: now).allowed)
            _ = try node.deleteExpiredLinks(now: now)
        }
    }

    /// The attack for real: a password guesser and a group creator spread over three nodes on one
    /// database get one node's budget, not three.
    @Test func threeServersOnOneDatabaseGiveOneBudget() async throws {
        let limits: (inout ServerConfiguration) -> Void = {
            $0.groupCreationsPerHour = 2
            $0.loginsPerMinutePerAddress = 100
        }
        try await TestServer.withNodes(3, configure: limits) { nodes, _ in
            try await guessAndCreate(across: nodes)
        }
    }

    private func guessAndCreate(across nodes: [TestServer]) async throws {
        let alice = try await TestUser.ready("alice", on: nodes[0])
        // Wrong passwords for alice from one address: 5 at once over all nodes, then refused.
        var answers: [ErrorCode?] = []
        for attempt in 0..<9 {
            let node = nodes[attempt % 3]
            do {
                _ = try await node.login("alice", password: "wrong guess \(attempt)", keys: alice.signatureKeys)
                answers.append(nil)
            } catch {
                answers.append((error as? ErrorBody)?.code)
            }
        }
        #expect(answers == Array(repeating: .invalidPassword, count: 5) + Array(repeating: .rateLimited, count: 4))
        // Group creations of one device: 2 an hour over all nodes.
        var created: [Bool] = []
        for index in 0..<3 {
            let group = try Group.create(
                alice.suite,
                groupID: Array(UUID().uuidString.utf8),
                credential: alice.credential,
                signatureKeys: alice.signatureKeys,
                extensions: [try ParleyGroupPolicy.adminsExtension(["alice"])],
                policy: alice.policy
            )
            let request = API.CreateGroup(
                name: "g\(index)",
                groupInfo: Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())
            )
            do {
                _ = try await nodes[index].request(
                    .POST,
                    "/v1/groups",
                    token: alice.token,
                    json: request,
                    as: API.Group.self
                )
                created.append(true)
            } catch let error as ErrorBody where error.code == .rateLimited {
                created.append(false)
            }
        }
        #expect(created == [true, true, false])
    }

    private func rows(_ storage: any ServerStorage) throws -> Int {
        if let sqlite = storage as? SQLiteStorage {
            return try sqlite.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rate_limits") ?? 0 }
        }
        let postgres = try #require(storage as? PostgresStorage)
        return try postgres.read { db in Int(try db.row("SELECT COUNT(*) AS n FROM rate_limits")?.int("n") ?? 0) }
    }
}
