import Foundation
import PostgresNIO

extension PostgresStorage {
    /// One statement: `INSERT … ON CONFLICT DO UPDATE` locks the key's row, so nodes taking from
    /// one bucket at once are serialised and never both take its last token.
    public func rateLimit(_ key: String, _ rule: RateLimitRule, take: Bool, now: UInt64) throws -> RateLimitAnswer {
        let (key, now) = (Data(key.utf8), databaseTime(now))
        guard take else {
            let tat = try read { db in try db.row("SELECT tat FROM rate_limits WHERE key = \(key)")?.int("tat") }
            return rule.answer(tat: tat, now: now)
        }
        guard rule.capacity >= 1 else { return RateLimitAnswer(allowed: false, used: true) }
        let (first, interval, latest) = (now + rule.interval, rule.interval, now + rule.burst - rule.interval)
        let taken = try read { db in
            try db.execute(
                """
                INSERT INTO rate_limits AS r (key, tat) VALUES (\(key), \(first))
                ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, \(now)) + \(interval)
                WHERE GREATEST(r.tat, \(now)) <= \(latest)
                """
            ) > 0
        }
        return RateLimitAnswer(allowed: taken, used: true)
    }

    /// The largest clock offset taken as measured: a database clock further off is the operator's
    /// to fix, and the bound keeps ``databaseTime(_:)`` from overflowing.
    static let maxClockOffset = Int64.max / 8

    /// `now` on this node's clock, as the database's clock reads it: every node times the shared
    /// buckets on that one clock, so a node whose own runs ahead does not see a bucket refilled
    /// early (docs/SECURITY.md, "Several nodes"). Far below Int64.max (at most 5/8 of it), so
    /// `now + burst` (at most Int64.max / 4) cannot overflow.
    func databaseTime(_ now: UInt64) -> Int64 {
        min(Int64(clamping: now), Int64.max / 2) + clockOffset.load(ordering: .relaxed)
    }

    /// Measures how far the database's clock is from this node's again: at each hourly sweep
    /// (``deleteExpiredLinks(now:)``), as clocks drift. A change under a second is the round
    /// trip's noise and is not taken: a bucket's times stay on one scale, to the millisecond.
    func measureClockOffset() throws {
        let measured = try Self.clockOffset(pool: pool, localClock: localClock)
        let (change, overflow) = measured.subtractingReportingOverflow(clockOffset.load(ordering: .relaxed))
        if overflow || change.magnitude >= 1_000 { clockOffset.store(measured, ordering: .relaxed) }
    }

    /// How far the database's clock is from `localClock`, halfway through one round trip, bounded.
    static func clockOffset(pool: PostgresConnectionPool, localClock: () -> UInt64) throws -> Int64 {
        let before = localClock()
        let database = try pool.withConnection { db in
            try db.row("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now")?.int("now")
        }
        let after = localClock()
        guard let database else { return 0 }
        let local = Int64(clamping: before / 2 + after / 2)
        let (offset, overflow) = database.subtractingReportingOverflow(local)
        return overflow ? 0 : min(max(offset, -maxClockOffset), maxClockOffset)
    }
}
