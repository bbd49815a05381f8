import Foundation
import GRDB

extension SQLiteStorage {
    public func rateLimit(_ key: String, _ rule: RateLimitRule, take: Bool, now: UInt64) throws -> RateLimitAnswer {
        // Far below Int64.max, so `now + burst` (at most Int64.max / 4) cannot overflow.
        let (key, now) = (Data(key.utf8), min(Int64(clamping: now), Int64.max / 2))
        guard take else {
            let tat = try pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT tat FROM rate_limits WHERE key = ?", arguments: [key])
            }
            return rule.answer(tat: tat, now: now)
        }
        guard rule.capacity >= 1 else { return RateLimitAnswer(allowed: false, used: true) }
        // One upsert: a new key starts full and gives its first token; a known one gives a token
        // while its backlog leaves one (the WHERE refuses the update otherwise, changing nothing).
        let taken = try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO rate_limits (key, tat) VALUES (?, ?)
                    ON CONFLICT (key) DO UPDATE SET tat = max(tat, ?) + ? WHERE max(tat, ?) <= ?
                    """,
                arguments: [key, now + rule.interval, now, rule.interval, now, now + rule.burst - rule.interval]
            )
            return db.changesCount > 0
        }
        return RateLimitAnswer(allowed: taken, used: true)
    }
}
