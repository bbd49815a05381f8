import Crypto
import Foundation
import ParleyProtocol
import PostgresNIO

/// Login challenges in the database (``LoginChallengeStore``), so that a login may reach another
/// node than its challenge did (a TCP load balancer). A row holds the SHA-256 of the nonce, not
/// the nonce: someone who reads the table cannot answer a challenge with it. Redeeming deletes
/// the row (`DELETE … RETURNING`), so a nonce is used once across all nodes. Expiry is checked
/// in the database's time by the row's deadline; expired rows are deleted when new ones are
/// issued. The table's size is bounded by the per-address challenge limit times the lifetime.
final class PostgresLoginChallenges: LoginChallengeStore {
    let storage: PostgresStorage
    let lifetime: Duration

    init(storage: PostgresStorage, lifetime: Duration = .seconds(60)) {
        self.storage = storage
        self.lifetime = lifetime
    }

    func issue(for username: String, now _: ContinuousClock.Instant) throws -> [UInt8] {
        guard PostgresStorage.storable(username) else { throw StorageError.outOfRange("username") }
        let nonce = SecureRandom.bytes(LoginChallenges.nonceLength)
        let (hash, seconds) = (Self.hash(nonce), lifetime.components.seconds)
        try storage.write { db in
            try db.query("DELETE FROM login_challenges WHERE expires_at < now()")
            try db.query(
                """
                INSERT INTO login_challenges (nonce_hash, username, expires_at)
                VALUES (\(hash), \(username), now() + make_interval(secs => \(Double(seconds))))
                """
            )
        }
        return nonce
    }

    func redeem(_ nonce: [UInt8], for username: String, now _: ContinuousClock.Instant) throws -> Bool {
        guard nonce.count == LoginChallenges.nonceLength else { return false }
        let hash = Self.hash(nonce)
        let row = try storage.write { db in
            try db.row(
                """
                DELETE FROM login_challenges WHERE nonce_hash = \(hash)
                RETURNING username, expires_at > now() AS fresh
                """
            )
        }
        guard let row else { return false }
        return try row.text("username") == username && row.bool("fresh")
    }

    private static func hash(_ nonce: [UInt8]) -> Data { Data(SHA256.hash(data: nonce)) }
}
