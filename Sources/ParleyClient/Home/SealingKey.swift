import Crypto
import _CryptoExtras

/// The key that protects a home's secrets at rest: scrypt over the user's
/// password with the home's random salt, used with AES-256-GCM. The seed
/// asks that private keys be protected by the user's password; this is that.
struct SealingKey: Sendable {
    private let key: SymmetricKey

    static let saltLength = 16

    init(password: String, salt: [UInt8]) throws {
        key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << 15, blockSize: 8, parallelism: 1)
    }

    /// AES-GCM with a random nonce; `context` is bound as associated data so a
    /// sealed value cannot be moved to another slot.
    func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        return Array(box.combined!)
    }

    func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Array(context.utf8)))
        } catch {
            throw ClientError.wrongPassword
        }
    }
}
