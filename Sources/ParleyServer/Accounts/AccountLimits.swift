/// The rate limits on accounts, each a token bucket (see `RateLimiter`). The configurable
/// ones come from `ServerConfiguration`; the failed-login ones are fixed here.
struct AccountLimits: Sendable {
    let registrationsPerAddress: RateLimiter
    let registrationsServerWide: RateLimiter
    /// All login attempts, successful or not: each costs a password hash.
    let loginsPerAddress: RateLimiter
    /// Challenges are cheap, but each is kept for a minute: 60 a minute, or three per login
    /// the address may attempt when an operator allows more (a login takes one challenge).
    let challengesPerAddress: RateLimiter
    /// Wrong passwords for one account from one address: 5, then one more every 3 minutes.
    let failuresPerPair = RateLimiter(capacity: 5, perHour: 20)
    /// Wrong passwords (or unknown users) from one address over all accounts.
    let failuresPerAddress = RateLimiter(capacity: 20, perHour: 60)
    /// Wrong passwords for one account from everywhere: a guesser spread over many addresses.
    /// Exhausting it only stops addresses that already failed on the account, never the
    /// owner logging in from an address with no failures.
    let failuresPerAccount = RateLimiter(capacity: 100, perHour: 100)

    init(_ configuration: ServerConfiguration) {
        let perHour = configuration.registrationsPerHourPerAddress
        let perMinute = configuration.registrationsPerMinute
        registrationsPerAddress = RateLimiter(capacity: perHour, perHour: perHour)
        registrationsServerWide = RateLimiter(capacity: perMinute, perMinute: perMinute)
        loginsPerAddress = RateLimiter(
            capacity: configuration.loginsPerMinutePerAddress,
            perMinute: configuration.loginsPerMinutePerAddress
        )
        let (triple, overflow) = configuration.loginsPerMinutePerAddress.multipliedReportingOverflow(by: 3)
        let challenges = max(60, overflow ? Int.max : triple)
        challengesPerAddress = RateLimiter(capacity: challenges, perMinute: challenges)
    }

    /// Whether the failures recorded so far refuse this attempt.
    func failuresBlock(_ keys: FailureKeys, now: ContinuousClock.Instant = .now) -> Bool {
        if failuresPerPair.isExhausted(keys.pair, now: now) || failuresPerAddress.isExhausted(keys.address, now: now) {
            return true
        }
        return failuresPerAccount.isExhausted(keys.account, now: now) && failuresPerPair.hasUsed(keys.pair, now: now)
    }

    func recordFailure(_ keys: FailureKeys, now: ContinuousClock.Instant = .now) {
        failuresPerPair.allow(keys.pair, now: now)
        failuresPerAddress.allow(keys.address, now: now)
        failuresPerAccount.allow(keys.account, now: now)
    }
}

/// The bucket keys of one login attempt.
struct FailureKeys {
    let address: String
    let account: String
    let pair: String

    init(address: String, account: String) {
        self.address = "address:" + address
        self.account = "account:" + account
        // The address cannot contain "/", so "address/account" is unambiguous.
        pair = "pair:" + address + "/" + account
    }
}
