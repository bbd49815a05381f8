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
        buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return capacity < 1 }
            return tokens(bucket, now: now) < 1
        }
    }

    /// Whether `key` has spent any token that has not been refilled yet.
    func hasUsed(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return false }
            return tokens(bucket, now: now) < capacity
        }
    }

    /// Takes one token for `key`; false when the key has none left.
    @discardableResult
    func allow(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = tokens(bucket, now: now)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            // Full buckets carry no information: drop them when the table grows, so memory stays bounded.
            if buckets.count > 100_000 { buckets = buckets.filter { tokens($0.value, now: now) < capacity } }
            return true
        }
    }
}
