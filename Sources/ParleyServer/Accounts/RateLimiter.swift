import Synchronization

/// A token bucket per key (an account name, an address, a device):
/// `capacity` attempts at once, refilled at `perSecond`.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let capacity: Double
    private let perSecond: Double
    private struct Table {
        var buckets: [String: Bucket] = [:]
        /// The size at which full buckets are next swept out. It doubles past what a sweep
        /// keeps, so sweeping stays amortised O(1) per call even when an attacker with many
        /// addresses keeps every bucket partly spent.
        var sweepAt = RateLimiter.minimumSweep
    }

    static let minimumSweep = 100_000
    private let table = Mutex(Table())

    init(capacity: Int, perMinute: Int) {
        self.capacity = Double(max(capacity, 0))
        perSecond = Double(max(perMinute, 0)) / 60
    }

    /// For slow limits (group creations, registrations per hour): `capacity` at once, and as many again each hour.
    init(capacity: Int, perHour: Int) {
        self.capacity = Double(max(capacity, 0))
        perSecond = Double(max(perHour, 0)) / 3600
    }

    private func tokens(_ bucket: Bucket, now: ContinuousClock.Instant) -> Double {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return min(capacity, bucket.tokens + seconds * perSecond)
    }

    /// Whether `key` has no token left, without taking one.
    func isExhausted(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        table.withLock { table in
            guard let bucket = table.buckets[key] else { return capacity < 1 }
            return tokens(bucket, now: now) < 1
        }
    }

    /// Whether `key` has spent any token that has not been refilled yet.
    func hasUsed(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        table.withLock { table in
            guard let bucket = table.buckets[key] else { return false }
            return tokens(bucket, now: now) < capacity
        }
    }

    /// Takes one token for `key`; false when the key has none left.
    @discardableResult
    func allow(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        table.withLock { table in
            var bucket = table.buckets[key] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = tokens(bucket, now: now)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                table.buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            table.buckets[key] = bucket
            // Full buckets carry no information: drop them when the table grows.
            if table.buckets.count >= table.sweepAt {
                table.buckets = table.buckets.filter { tokens($0.value, now: now) < capacity }
                table.sweepAt = max(Self.minimumSweep, table.buckets.count * 2)
            }
            return true
        }
    }
}
