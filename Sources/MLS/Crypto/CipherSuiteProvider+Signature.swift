import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Signature.Sign / Signature.Verify for the suite's scheme (RFC 9420 §5.1.2):
/// Ed25519 signatures are R || S, ECDSA signatures are DER.
extension CipherSuiteProvider {
    public func generateSignatureKeyPair() -> SignatureKeyPair {
        switch signatureAlgorithm {
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            return SignatureKeyPair(
                privateKey: .init(Array(key.rawRepresentation)),
                publicKey: .init(Array(key.publicKey.rawRepresentation))
            )
        case .p256:
            let key = P256.Signing.PrivateKey(compactRepresentable: false)
            return SignatureKeyPair(
                privateKey: .init(Array(key.rawRepresentation)),
                publicKey: .init(Array(key.publicKey.x963Representation))
            )
        case .p384:
            let key = P384.Signing.PrivateKey(compactRepresentable: false)
            return SignatureKeyPair(
                privateKey: .init(Array(key.rawRepresentation)),
                publicKey: .init(Array(key.publicKey.x963Representation))
            )
        case .p521:
            let key = P521.Signing.PrivateKey(compactRepresentable: false)
            return SignatureKeyPair(
                privateKey: .init(Array(key.rawRepresentation)),
                publicKey: .init(Array(key.publicKey.x963Representation))
            )
        }
    }

    /// The public key belonging to `privateKey`.
    public func signaturePublicKey(for privateKey: SignaturePrivateKey) throws -> SignaturePublicKey {
        do {
            switch signatureAlgorithm {
            case .ed25519:
                return .init(
                    Array(
                        try Curve25519.Signing.PrivateKey(rawRepresentation: privateKey.bytes).publicKey
                            .rawRepresentation
                    )
                )
            case .p256:
                return .init(
                    Array(
                        try P256.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 32))
                            .publicKey.x963Representation
                    )
                )
            case .p384:
                return .init(
                    Array(
                        try P384.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 48))
                            .publicKey.x963Representation
                    )
                )
            case .p521:
                return .init(
                    Array(
                        try P521.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 66))
                            .publicKey.x963Representation
                    )
                )
            }
        } catch {
            throw MLSError.invalidKey("not a valid signature private key for \(suite)")
        }
    }

    /// Signature.Sign over `message`.
    public func sign(_ message: [UInt8], with privateKey: SignaturePrivateKey) throws -> [UInt8] {
        do {
            switch signatureAlgorithm {
            case .ed25519:
                return Array(
                    try Curve25519.Signing.PrivateKey(rawRepresentation: privateKey.bytes).signature(for: message)
                )
            case .p256:
                return Array(
                    try P256.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 32)).signature(
                        for: message
                    ).derRepresentation
                )
            case .p384:
                return Array(
                    try P384.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 48)).signature(
                        for: message
                    ).derRepresentation
                )
            case .p521:
                return Array(
                    try P521.Signing.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 66)).signature(
                        for: message
                    ).derRepresentation
                )
            }
        } catch {
            throw MLSError.invalidKey("not a valid signature private key for \(suite)")
        }
    }

    /// Signature.Verify. Malformed keys and signatures simply do not verify.
    public func verify(_ signature: [UInt8], message: [UInt8], publicKey: SignaturePublicKey) -> Bool {
        switch signatureAlgorithm {
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey.bytes) else { return false }
            return key.isValidSignature(signature, for: message)
        case .p256:
            guard let key = try? P256.Signing.PublicKey(x963Representation: publicKey.bytes),
                let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        case .p384:
            guard let key = try? P384.Signing.PublicKey(x963Representation: publicKey.bytes),
                let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        case .p521:
            guard let key = try? P521.Signing.PublicKey(x963Representation: publicKey.bytes),
                let parsed = try? P521.Signing.ECDSASignature(derRepresentation: signature)
            else { return false }
            return key.isValidSignature(parsed, for: message)
        }
    }

    /// A big-endian scalar left-padded to the curve's field size: some
    /// encoders drop leading zero bytes (the RFC test vectors' P-521 keys do).
    static func scalar(_ bytes: [UInt8], length: Int) -> [UInt8] {
        bytes.count < length ? [UInt8](repeating: 0, count: length - bytes.count) + bytes : bytes
    }
}
