import ParleyProtocol
import Synchronization

/// Where login challenges are kept between the challenge and the login. Behind a load balancer
/// the two requests may reach different nodes, so with storage several nodes share the
/// challenges are kept in it (``PostgresLoginChallenges``); a single SQLite node keeps them in
/// memory (``LoginChallenges``). Either way a nonce is bound to one username, single use, and
/// expires after `lifetime`.
protocol LoginChallengeStore: Sendable {
    var lifetime: Duration { get }
    /// A fresh nonce for `username`.
    func issue(for username: String, now: ContinuousClock.Instant) throws -> [UInt8]
    /// Takes the nonce out (single use) and tells whether it was issued for `username` and is still fresh.
    func redeem(_ nonce: [UInt8], for username: String, now: ContinuousClock.Instant) throws -> Bool
}

enum LoginChallengeStores {
    /// The store for a server on `storage`: shared through the database when nodes share it.
    static func make(for storage: any ServerStorage) -> any LoginChallengeStore {
        if let postgres = storage as? PostgresStorage { return PostgresLoginChallenges(storage: postgres) }
        return LoginChallenges()
    }
}

/// Login challenges (proof of possession, finding 16): random nonces, each bound to one
/// username, valid for `lifetime` and for one login attempt, whatever its outcome. Kept in
/// memory: a restart only makes clients ask again. At most `capacity` are outstanding (about
/// 150 bytes each); past it the oldest is forgotten, never the new one refused. Refusing would
/// let anyone with a couple of thousand addresses (one IPv6 /48 holds 65,536 /64s, each its own
/// rate-limit key) keep the table full and lock every user out of logging in; evicting means a
/// flood must outpace a client's few-second login by `capacity` requests to hurt it.
final class LoginChallenges: LoginChallengeStore {
    private struct Pending {
        let username: String
        let expiresAt: ContinuousClock.Instant
    }

    static let nonceLength = 32
    let lifetime: Duration
    let capacity: Int
    private struct Table {
        var pending: [[UInt8]: Pending] = [:]
        /// Nonces in the order issued (a ring of `capacity`): the next slot holds the oldest.
        var order: [[UInt8]] = []
        var next = 0
    }
    private let table = Mutex(Table())

    init(lifetime: Duration = .seconds(60), capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// A fresh nonce for `username`; when `capacity` are outstanding, the oldest is forgotten.
    func issue(for username: String, now: ContinuousClock.Instant = .now) throws -> [UInt8] {
        let nonce = SecureRandom.bytes(Self.nonceLength)
        let capacity = max(1, capacity)
        table.withLock { table in
            if table.order.count < capacity {
                table.order.append(nonce)
            } else {
                // Redeemed nonces are already gone from `pending`; removing them again is a no-op.
                table.pending.removeValue(forKey: table.order[table.next])
                table.order[table.next] = nonce
            }
            table.next = (table.next + 1) % capacity
            table.pending[nonce] = Pending(username: username, expiresAt: now + lifetime)
        }
        return nonce
    }

    /// Takes the nonce out (single use) and tells whether it was issued for `username` and is still fresh.
    func redeem(_ nonce: [UInt8], for username: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard nonce.count == Self.nonceLength else { return false }
        guard let entry = table.withLock({ $0.pending.removeValue(forKey: nonce) }) else { return false }
        return entry.username == username && entry.expiresAt > now
    }
}
