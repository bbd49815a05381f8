/// The rate limits on accounts, each a token bucket kept in storage (``SharedRateLimiter``), so
/// nodes sharing a database share them: they bound password guessing and what is stored. The
/// configurable ones come from `ServerConfiguration`; the failed-login ones are fixed here.
struct AccountLimits: Sendable {
    let registrationsPerAddress: SharedRateLimiter
    let registrationsServerWide: SharedRateLimiter
    /// All login attempts, successful or not: each costs a password hash.
    let loginsPerAddress: SharedRateLimiter
    /// Challenges are cheap, but each is stored for a minute: 60 a minute, or three per login
    /// the address may attempt when an operator allows more (a login takes one challenge).
    let challengesPerAddress: SharedRateLimiter
    /// Wrong passwords for one account from one address: 5, then one more every 3 minutes.
    let failuresPerPair: SharedRateLimiter
    /// Wrong passwords (or unknown users) from one address over all accounts.
    let failuresPerAddress: SharedRateLimiter
    /// Wrong passwords for one account from everywhere: a guesser spread over many addresses.
    /// Exhausting it only stops addresses that already failed on the account, never the
    /// owner logging in from an address with no failures.
    let failuresPerAccount: SharedRateLimiter

    init(_ configuration: ServerConfiguration, storage: any ServerStorage) {
        let perHour = configuration.registrationsPerHourPerAddress
        let perMinute = configuration.registrationsPerMinute
        let logins = configuration.loginsPerMinutePerAddress
        registrationsPerAddress = SharedRateLimiter(
            "registrations-address",
            .perHour(capacity: perHour, perHour),
            storage: storage
        )
        registrationsServerWide = SharedRateLimiter(
            "registrations",
            .perMinute(capacity: perMinute, perMinute),
            storage: storage
        )
        loginsPerAddress = SharedRateLimiter("logins-address", .perMinute(capacity: logins, logins), storage: storage)
        let (triple, overflow) = configuration.loginsPerMinutePerAddress.multipliedReportingOverflow(by: 3)
        let challenges = max(60, overflow ? Int.max : triple)
        challengesPerAddress = SharedRateLimiter(
            "challenges-address",
            .perMinute(capacity: challenges, challenges),
            storage: storage
        )
        failuresPerPair = SharedRateLimiter("failures-pair", .perHour(capacity: 5, 20), storage: storage)
        failuresPerAddress = SharedRateLimiter("failures-address", .perHour(capacity: 20, 60), storage: storage)
        failuresPerAccount = SharedRateLimiter("failures-account", .perHour(capacity: 100, 100), storage: storage)
    }

    /// Whether the failures recorded so far refuse this attempt.
    func failuresBlock(_ keys: FailureKeys, now: UInt64 = Clock.milliseconds()) throws -> Bool {
        if try failuresPerPair.isExhausted(keys.pair, now: now)
            || failuresPerAddress.isExhausted(keys.address, now: now)
        {
            return true
        }
        return try failuresPerAccount.isExhausted(keys.account, now: now)
            && failuresPerPair.hasUsed(keys.pair, now: now)
    }

    func recordFailure(_ keys: FailureKeys, now: UInt64 = Clock.milliseconds()) throws {
        _ = try failuresPerPair.allow(keys.pair, now: now)
        _ = try failuresPerAddress.allow(keys.address, now: now)
        _ = try failuresPerAccount.allow(keys.account, now: now)
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
