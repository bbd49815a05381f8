import Crypto
import Synchronization
import _CryptoExtras

/// The key that protects a home's secrets at rest: scrypt over the user's
/// password with the home's random salt, used with AES-256-GCM. The seed
/// asks that private keys be protected by the user's password; this is that.
struct SealingKey: Sendable {
    private let key: SymmetricKey
    /// Names rows without revealing what they hold (a group's name, a user's
    /// name): HMAC-SHA256 under a key derived from the sealing key.
    private let indexKey: SymmetricKey

    static let saltLength = 16
    /// log2 of scrypt's N for new homes: 2^17 with r = 8 takes about 0.5 s
    /// and 128 MiB, so each password guess against a stolen home costs as much.
    static let defaultCost = 17
    /// What homes made before the cost was stored used (N = 2^15); they are
    /// re-sealed at `defaultCost` when next unlocked.
    static let legacyCost = 15
    /// Costs a home's `kdf` setting may name: below is too cheap to protect
    /// anything, above needs more memory than a client should allocate.
    static let acceptedCosts = 10...22
    /// Tests only: a cheaper cost for the homes they create, so suites stay fast.
    static let testCost = Mutex<Int?>(nil)

    static var costForNewHomes: Int { testCost.withLock { $0 } ?? defaultCost }

    init(password: String, salt: [UInt8], cost: Int) throws {
        guard Self.acceptedCosts.contains(cost) else {
            throw ClientError.damagedHome(.keyDerivationCost)
        }
        key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            outputByteCount: 32,
            rounds: 1 << cost,
            blockSize: 8,
            parallelism: 1
        )
        indexKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key,
            info: Array("parley home row identifiers".utf8),
            outputByteCount: 32
        )
    }

    /// AES-GCM with a random nonce; `context` is bound as associated data so a
    /// sealed value cannot be moved to another slot.
    func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw ClientError.damagedHome(.sealing) }
        return Array(combined)
    }

    func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        do {
            return Array(
                try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Array(context.utf8))
            )
        } catch {
            throw ClientError.wrongPassword
        }
    }

    /// A stable row identifier for `value` of `kind` that reveals neither.
    func identifier(_ kind: String, _ value: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array((kind + "\u{0}" + value).utf8), using: indexKey))
    }
}
