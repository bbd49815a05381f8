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
    private let buckets = Mutex<[String: Bucket]>([:])

    init(capacity: Int, perMinute: Int) {
        self.capacity = Double(capacity)
        perSecond = Double(perMinute) / 60
    }

    /// For slow limits (e.g. group creations per hour), refilled at `perHour`.
    init(capacity: Int, perHour: Int) {
        self.capacity = Double(capacity)
        perSecond = Double(perHour) / 3600
    }

    /// Whether `key` has no token left, without taking one.
    func isExhausted(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return false }
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return min(capacity, bucket.tokens + seconds * perSecond) < 1
        }
    }

    /// Takes one token for `key`; false when the key has none left.
    @discardableResult
    func allow(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(capacity, bucket.tokens + seconds * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            if buckets.count > 100_000 { buckets = buckets.filter { $0.value.tokens < capacity } }
            return true
        }
    }
}
