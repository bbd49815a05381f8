import Crypto
import ParleyProtocol
import _CryptoExtras

/// scrypt password hashing with a per-user random salt (RFC 7914 via swift-crypto).
struct PasswordHasher: Sendable {
    /// N = 2^15, r = 8, p = 1: about 32 MiB and tens of milliseconds per hash (optimised build);
    /// `ServerConfiguration.passwordHashCost`.
    var rounds = 1 << 15
    var blockSize = 8
    var parallelism = 1

    static let saltLength = 16
    static let hashLength = 32

    func hash(_ password: String, salt: [UInt8]) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            outputByteCount: Self.hashLength,
            rounds: rounds,
            blockSize: blockSize,
            parallelism: parallelism
        )
        return key.withUnsafeBytes { Array($0) }
    }

    func newSalt() -> [UInt8] { SecureRandom.bytes(Self.saltLength) }

    /// Recomputes and compares in constant time.
    func verify(_ password: String, hash expected: [UInt8], salt: [UInt8]) throws -> Bool {
        constantTimeEquals(try hash(password, salt: salt), expected)
    }
}

/// Compares without an early exit, so timing does not reveal where two values differ.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

enum SecureRandom {
    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// Session tokens: 256 random bits handed to the client; only their SHA-256 is stored.
enum SessionToken {
    static func generate() -> String {
        Hex.encode(SecureRandom.bytes(32))
    }

    static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }
}

/// How operators tell a user's devices apart: the SHA-256 of the signature key, first 16 bytes in hex.
enum DeviceFingerprint {
    static func of(_ signatureKey: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: signatureKey).prefix(16))
    }
}
