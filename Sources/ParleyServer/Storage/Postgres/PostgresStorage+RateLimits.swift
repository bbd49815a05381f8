import Foundation
import PostgresNIO

extension PostgresStorage {
    /// One statement: `INSERT … ON CONFLICT DO UPDATE` locks the key's row, so nodes taking from
    /// one bucket at once are serialised and never both take its last token.
    public func rateLimit(_ key: String, _ rule: RateLimitRule, take: Bool, now: UInt64) throws -> RateLimitAnswer {
        // Far below Int64.max, so `now + burst` (at most Int64.max / 4) cannot overflow.
        let (key, now) = (Data(key.utf8), min(Int64(clamping: now), Int64.max / 2))
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
}
