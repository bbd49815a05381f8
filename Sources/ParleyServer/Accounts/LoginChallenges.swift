import ParleyProtocol
import Synchronization

/// Login challenges (proof of possession, finding 16): random nonces, each bound to one
/// username, valid for `lifetime` and for one login attempt, whatever its outcome. Kept in
/// memory: a restart only makes clients ask again. At most `capacity` are outstanding (about
/// 150 bytes each); with issuing limited per address, filling them takes thousands of addresses.
final class LoginChallenges: Sendable {
    private struct Pending {
        let username: String
        let expiresAt: ContinuousClock.Instant
    }

    static let nonceLength = 32
    let lifetime: Duration
    let capacity: Int
    private let pending = Mutex<[[UInt8]: Pending]>([:])

    init(lifetime: Duration = .seconds(60), capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// A fresh nonce for `username`, or `rateLimited` when too many are outstanding.
    func issue(for username: String, now: ContinuousClock.Instant = .now) throws -> [UInt8] {
        let nonce = SecureRandom.bytes(Self.nonceLength)
        let issued = pending.withLock { pending -> Bool in
            if pending.count >= capacity { pending = pending.filter { $0.value.expiresAt > now } }
            guard pending.count < capacity else { return false }
            pending[nonce] = Pending(username: username, expiresAt: now + lifetime)
            return true
        }
        guard issued else { throw ErrorBody(.rateLimited) }
        return nonce
    }

    /// Takes the nonce out (single use) and tells whether it was issued for `username` and is still fresh.
    func redeem(_ nonce: [UInt8], for username: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard nonce.count == Self.nonceLength else { return false }
        guard let entry = pending.withLock({ $0.removeValue(forKey: nonce) }) else { return false }
        return entry.username == username && entry.expiresAt > now
    }
}
