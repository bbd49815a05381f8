import Crypto
import MLS

/// An account's long-term identity: an Ed25519 key (RFC 8032) that signs the account's
/// ``DeviceList``. It is made from a 32-byte seed so that the seed, printed at `register` as a
/// recovery code, restores it on a new device when every old one is lost.
///
/// The private half never leaves the user's devices: the client keeps it sealed in its vault.
/// The public half is what contacts pin and what safety numbers cover.
public struct AccountIdentity: Sendable, CustomStringConvertible {
    /// RFC 8032 Ed25519 seed length, and the public key length.
    public static let seedBytes = 32
    public static let publicKeyBytes = 32

    private let key: Curve25519.Signing.PrivateKey
    /// The RFC 8032 seed; secret.
    public let seed: [UInt8]
    /// The raw Ed25519 public key.
    public let publicKey: [UInt8]

    /// A fresh identity from the system's random generator.
    public init() {
        let key = Curve25519.Signing.PrivateKey()
        self.key = key
        seed = Array(key.rawRepresentation)
        publicKey = Array(key.publicKey.rawRepresentation)
    }

    /// The identity held by `seed`; throws ``DeviceListError/invalidRecoveryCode`` unless it is 32 bytes.
    public init(seed: [UInt8]) throws(DeviceListError) {
        guard seed.count == Self.seedBytes,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        else { throw .invalidRecoveryCode }
        self.key = key
        self.seed = seed
        publicKey = Array(key.publicKey.rawRepresentation)
    }

    /// Signs `list` (which must carry this identity's public key) with the "Parley DeviceList v1" label.
    public func sign(_ list: DeviceList) throws(DeviceListError) -> SignedDeviceList {
        guard list.identityKey == publicKey else { throw .identityKeyChanged }
        let content = try list.signContent()
        guard let signature = try? key.signature(for: content) else { throw .badSignature }
        return SignedDeviceList(list: list, signature: Array(signature))
    }

    /// The seed as a recovery code (``RecoveryCode``).
    public var recoveryCode: String { RecoveryCode.encode(seed) }

    /// Identities never appear in logs.
    public var description: String { "AccountIdentity(redacted)" }
}
