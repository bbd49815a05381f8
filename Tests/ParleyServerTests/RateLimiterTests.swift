import Testing

@testable import ParleyServer

struct RateLimiterTests {
    /// An attacker with many addresses keeps every bucket partly spent: the
    /// sweep that drops full buckets must neither forget a spent one nor run on
    /// every call (it doubles its threshold past what it keeps).
    @Test func sweepingManyKeysKeepsEverySpentBucket() {
        let limiter = RateLimiter(capacity: 2, perHour: 1)
        #expect(limiter.allow("victim-watch") && limiter.allow("victim-watch"))
        #expect(!limiter.allow("victim-watch"))
        for index in 0..<(RateLimiter.minimumSweep * 3) { limiter.allow("address-\(index)") }
        #expect(limiter.isExhausted("victim-watch"))
        #expect(limiter.hasUsed("address-0"))
        #expect(!limiter.hasUsed("never-seen"))
    }
}
