import Crypto

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// HPKE base mode (RFC 9180 §6.1) and the KEM's DeriveKeyPair (RFC 9180 §7.1.3),
/// through swift-crypto's HPKE.
extension CipherSuiteProvider {
    var hpkeCiphersuite: HPKE.Ciphersuite {
        HPKE.Ciphersuite(kem: kem.hpke, kdf: hpkeKDF, aead: aead.hpke)
    }

    private var hpkeKDF: HPKE.KDF {
        switch hashAlgorithm {
        case .sha256: .HKDF_SHA256
        case .sha384: .HKDF_SHA384
        case .sha512: .HKDF_SHA512
        }
    }

    /// A fresh random HPKE key pair.
    public func generateHPKEKeyPair() throws -> HPKEKeyPair {
        try deriveHPKEKeyPair(ikm: randomBytes(kem.privateKeyLength))
    }

    /// KEM.DeriveKeyPair (RFC 9180 §7.1.3): X25519 expands the secret directly;
    /// the NIST curves rejection-sample until the candidate is a valid scalar.
    /// X-Wing takes a 32-byte secret as its seed, as OpenMLS's HPKE does.
    public func deriveHPKEKeyPair(ikm: [UInt8]) throws -> HPKEKeyPair {
        let prk = labeledExtract(salt: [], label: "dkp_prk", ikm: ikm)
        switch kem {
        case .x25519:
            let secret = try labeledExpand(prk: prk, label: "sk", info: [], length: kem.privateKeyLength)
            let privateKey = HPKEPrivateKey(secret)
            return HPKEKeyPair(privateKey: privateKey, publicKey: try hpkePublicKey(for: privateKey))
        case .p256, .p384, .p521:
            let bitmask: UInt8 = kem == .p521 ? 0x01 : 0xff
            for counter in 0...255 {
                var candidate = try labeledExpand(
                    prk: prk,
                    label: "candidate",
                    info: [UInt8(counter)],
                    length: kem.privateKeyLength
                )
                candidate[0] &= bitmask
                guard Self.isValidScalar(candidate, order: Self.curveOrder(kem)) else { continue }
                let privateKey = HPKEPrivateKey(candidate)
                return HPKEKeyPair(privateKey: privateKey, publicKey: try hpkePublicKey(for: privateKey))
            }
            throw MLSError.deriveKeyPairFailed
        case .xWing:
            return try deriveXWingKeyPair(seed: ikm)
        }
    }

    /// X-Wing's private key is its 32-byte seed (draft-connolly-cfrg-xwing-kem-06
    /// §5.2), expanded by swift-crypto into the ML-KEM-768 and X25519 keys. Every
    /// secret MLS derives a key pair from is KDF.Nh = 32 bytes in this suite.
    private func deriveXWingKeyPair(seed: [UInt8]) throws -> HPKEKeyPair {
        guard seed.count == kem.privateKeyLength else { throw MLSError.invalidLength(seed.count) }
        let privateKey = HPKEPrivateKey(seed)
        return HPKEKeyPair(privateKey: privateKey, publicKey: try hpkePublicKey(for: privateKey))
    }

    /// The public key belonging to an HPKE private key.
    public func hpkePublicKey(for privateKey: HPKEPrivateKey) throws -> HPKEPublicKey {
        do {
            switch kem {
            case .x25519:
                return .init(
                    Array(
                        try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey.bytes).publicKey
                            .rawRepresentation
                    )
                )
            case .p256:
                return .init(
                    Array(
                        try P256.KeyAgreement.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 32))
                            .publicKey.x963Representation
                    )
                )
            case .p384:
                return .init(
                    Array(
                        try P384.KeyAgreement.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 48))
                            .publicKey.x963Representation
                    )
                )
            case .p521:
                return .init(
                    Array(
                        try P521.KeyAgreement.PrivateKey(rawRepresentation: Self.scalar(privateKey.bytes, length: 66))
                            .publicKey.x963Representation
                    )
                )
            case .xWing:
                return .init(
                    Array(
                        try XWingMLKEM768X25519.PrivateKey(seedRepresentation: privateKey.bytes, publicKey: nil)
                            .publicKey.rawRepresentation
                    )
                )
            }
        } catch {
            throw MLSError.invalidKey("not a valid HPKE private key for \(suite)")
        }
    }

    /// SealBase (RFC 9180 §6.1): returns the KEM output and the ciphertext.
    public func hpkeSeal(
        publicKey: HPKEPublicKey,
        info: [UInt8],
        aad: [UInt8],
        plaintext: [UInt8]
    ) throws -> HPKECiphertext {
        var sender = try hpkeSender(publicKey: publicKey, info: info)
        let ciphertext = try sender.seal(plaintext, authenticating: aad)
        return HPKECiphertext(kemOutput: Array(sender.encapsulatedKey), ciphertext: Array(ciphertext))
    }

    /// OpenBase (RFC 9180 §6.1). Any failure is ``MLSError/decryptionFailed``.
    public func hpkeOpen(
        privateKey: HPKEPrivateKey,
        info: [UInt8],
        aad: [UInt8],
        ciphertext: HPKECiphertext
    ) throws -> [UInt8] {
        var recipient = try hpkeRecipient(privateKey: privateKey, info: info, kemOutput: ciphertext.kemOutput)
        do {
            return Array(try recipient.open(ciphertext.ciphertext, authenticating: aad))
        } catch {
            throw MLSError.decryptionFailed
        }
    }

    /// SetupBaseS followed by Context.Export (RFC 9180 §5.3), as used by
    /// external initialisation (RFC 9420 §8.3).
    public func hpkeExportSender(
        publicKey: HPKEPublicKey,
        info: [UInt8],
        exporterContext: [UInt8],
        length: Int
    ) throws -> (kemOutput: [UInt8], secret: [UInt8]) {
        let sender = try hpkeSender(publicKey: publicKey, info: info)
        let secret = try sender.exportSecret(context: exporterContext, outputByteCount: length)
        return (Array(sender.encapsulatedKey), secret.withUnsafeBytes { Array($0) })
    }

    /// SetupBaseR followed by Context.Export (RFC 9180 §5.3).
    public func hpkeExportReceiver(
        privateKey: HPKEPrivateKey,
        kemOutput: [UInt8],
        info: [UInt8],
        exporterContext: [UInt8],
        length: Int
    ) throws -> [UInt8] {
        let recipient = try hpkeRecipient(privateKey: privateKey, info: info, kemOutput: kemOutput)
        return try recipient.exportSecret(context: exporterContext, outputByteCount: length).withUnsafeBytes {
            Array($0)
        }
    }

    private func hpkeSender(publicKey: HPKEPublicKey, info: [UInt8]) throws -> HPKE.Sender {
        do {
            switch kem {
            case .x25519:
                return try HPKE.Sender(
                    recipientKey: Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info)
                )
            case .p256:
                return try HPKE.Sender(
                    recipientKey: P256.KeyAgreement.PublicKey(x963Representation: publicKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info)
                )
            case .p384:
                return try HPKE.Sender(
                    recipientKey: P384.KeyAgreement.PublicKey(x963Representation: publicKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info)
                )
            case .p521:
                return try HPKE.Sender(
                    recipientKey: P521.KeyAgreement.PublicKey(x963Representation: publicKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info)
                )
            case .xWing:
                return try HPKE.Sender(
                    recipientKey: XWingMLKEM768X25519.PublicKey(rawRepresentation: publicKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info)
                )
            }
        } catch {
            throw MLSError.invalidKey("not a valid HPKE public key for \(suite)")
        }
    }

    private func hpkeRecipient(privateKey: HPKEPrivateKey, info: [UInt8], kemOutput: [UInt8]) throws -> HPKE.Recipient {
        do {
            switch kem {
            case .x25519:
                return try HPKE.Recipient(
                    privateKey: Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey.bytes),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info),
                    encapsulatedKey: Data(kemOutput)
                )
            case .p256:
                return try HPKE.Recipient(
                    privateKey: P256.KeyAgreement.PrivateKey(
                        rawRepresentation: Self.scalar(privateKey.bytes, length: 32)
                    ),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info),
                    encapsulatedKey: Data(kemOutput)
                )
            case .p384:
                return try HPKE.Recipient(
                    privateKey: P384.KeyAgreement.PrivateKey(
                        rawRepresentation: Self.scalar(privateKey.bytes, length: 48)
                    ),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info),
                    encapsulatedKey: Data(kemOutput)
                )
            case .p521:
                return try HPKE.Recipient(
                    privateKey: P521.KeyAgreement.PrivateKey(
                        rawRepresentation: Self.scalar(privateKey.bytes, length: 66)
                    ),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info),
                    encapsulatedKey: Data(kemOutput)
                )
            case .xWing:
                return try HPKE.Recipient(
                    privateKey: XWingMLKEM768X25519.PrivateKey(seedRepresentation: privateKey.bytes, publicKey: nil),
                    ciphersuite: hpkeCiphersuite,
                    info: Data(info),
                    encapsulatedKey: Data(kemOutput)
                )
            }
        } catch {
            // A bad private key and a bad KEM output are both "cannot decrypt".
            throw MLSError.decryptionFailed
        }
    }

    // MARK: RFC 9180 §4 labeled KDF calls, with the KEM's suite_id ("KEM" || kem_id).

    private var kemSuiteID: [UInt8] {
        Array("KEM".utf8) + [UInt8(kem.identifier >> 8), UInt8(kem.identifier & 0xff)]
    }

    private func labeledExtract(salt: [UInt8], label: String, ikm: [UInt8]) -> [UInt8] {
        kem.kdf.extract(salt: salt, ikm: Array("HPKE-v1".utf8) + kemSuiteID + Array(label.utf8) + ikm)
    }

    private func labeledExpand(prk: [UInt8], label: String, info: [UInt8], length: Int) throws -> [UInt8] {
        let labeledInfo =
            [UInt8(length >> 8), UInt8(length & 0xff)] + Array("HPKE-v1".utf8) + kemSuiteID + Array(label.utf8) + info
        return try kem.kdf.expand(prk: prk, info: labeledInfo, length: length)
    }

    /// Group orders from RFC 9180 §7.1.3.
    private static func curveOrder(_ kem: KEMAlgorithm) -> [UInt8] {
        switch kem {
        case .p256: hexConstant("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
        case .p384:
            hexConstant(
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"
            )
        case .p521:
            hexConstant(
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
                    + "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"
            )
        case .x25519, .xWing: []
        }
    }

    /// 0 < scalar < order, both big-endian of equal length.
    private static func isValidScalar(_ scalar: [UInt8], order: [UInt8]) -> Bool {
        guard scalar.contains(where: { $0 != 0 }) else { return false }
        return scalar.lexicographicallyPrecedes(order)
    }

    private static func hexConstant(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { index in
            UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)!
        }
    }
}
