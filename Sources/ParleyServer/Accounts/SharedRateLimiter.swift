/// A token bucket per key kept in storage (``ServerStorage/rateLimit(_:_:take:now:)``), so every
/// node sharing a database draws on one budget: three nodes give an attacker one budget, not
/// three. For the budgets that bound guessing (passwords, link codes) or a resource every node
/// shares (stored challenges, KeyPackages, groups, accounts); per-connection flow limits stay in a
/// node's memory (``RateLimiter``; docs/SECURITY.md, "Several nodes").
///
/// A storage failure refuses: a limit that cannot be checked is not granted.
struct SharedRateLimiter: Sendable {
    let storage: any ServerStorage
    /// Names the limit: its keys are `name/key`, and a name holds no "/", so limits never share a bucket.
    let name: String
    let rule: RateLimitRule

    init(_ name: String, _ rule: RateLimitRule, storage: any ServerStorage) {
        precondition(!name.contains("/"), "a limit's name holds no '/'")
        self.name = name
        self.rule = rule
        self.storage = storage
    }

    /// Takes one token for `key`; false when the key has none left.
    func allow(_ key: String, now: UInt64 = Clock.milliseconds()) throws -> Bool {
        try storage.rateLimit(name + "/" + key, rule, take: true, now: now).allowed
    }

    /// Whether `key` has no token left, without taking one.
    func isExhausted(_ key: String, now: UInt64 = Clock.milliseconds()) throws -> Bool {
        try !storage.rateLimit(name + "/" + key, rule, take: false, now: now).allowed
    }

    /// Whether `key` has spent any token that has not been refilled yet.
    func hasUsed(_ key: String, now: UInt64 = Clock.milliseconds()) throws -> Bool {
        try storage.rateLimit(name + "/" + key, rule, take: false, now: now).used
    }
}
