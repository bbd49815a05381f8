import Crypto

/// The hash behind a suite's KDF, MAC and transcript hash (RFC 9420 §17.1).
enum HashAlgorithm: Sendable {
    case sha256, sha384, sha512

    var outputLength: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }

    func hash(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: data))
        case .sha384: Array(SHA384.hash(data: data))
        case .sha512: Array(SHA512.hash(data: data))
        }
    }

    /// HKDF-Extract (RFC 5869 §2.2).
    func extract(salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Self.extract(SHA256.self, salt: salt, ikm: ikm)
        case .sha384: Self.extract(SHA384.self, salt: salt, ikm: ikm)
        case .sha512: Self.extract(SHA512.self, salt: salt, ikm: ikm)
        }
    }

    /// HKDF-Expand (RFC 5869 §2.3). Checks the output bound itself so that an
    /// oversized request is an error, not a trap inside swift-crypto.
    func expand(prk: [UInt8], info: [UInt8], length: Int) throws -> [UInt8] {
        guard length >= 0, length <= 255 * outputLength else { throw MLSError.invalidLength(length) }
        switch self {
        case .sha256: return Self.expand(SHA256.self, prk: prk, info: info, length: length)
        case .sha384: return Self.expand(SHA384.self, prk: prk, info: info, length: length)
        case .sha512: return Self.expand(SHA512.self, prk: prk, info: info, length: length)
        }
    }

    func mac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        case .sha384: Array(HMAC<SHA384>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        case .sha512: Array(HMAC<SHA512>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        }
    }

    /// Verifies a MAC in constant time (swift-crypto compares without early exit).
    func verifyMAC(_ tag: [UInt8], key: [UInt8], data: [UInt8]) -> Bool {
        let key = SymmetricKey(data: key)
        switch self {
        case .sha256: return HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: data, using: key)
        case .sha384: return HMAC<SHA384>.isValidAuthenticationCode(tag, authenticating: data, using: key)
        case .sha512: return HMAC<SHA512>.isValidAuthenticationCode(tag, authenticating: data, using: key)
        }
    }

    private static func extract<H: HashFunction>(_: H.Type, salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        let prk = HKDF<H>.extract(inputKeyMaterial: SymmetricKey(data: ikm), salt: salt)
        return Array(prk)
    }

    private static func expand<H: HashFunction>(_: H.Type, prk: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        HKDF<H>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length)
            .withUnsafeBytes { Array($0) }
    }
}

/// The AEAD of a suite, used for message protection and inside HPKE.
enum AEADAlgorithm: Sendable {
    case aes128GCM, aes256GCM, chaCha20Poly1305

    var hpke: HPKE.AEAD {
        switch self {
        case .aes128GCM: .AES_GCM_128
        case .aes256GCM: .AES_GCM_256
        case .chaCha20Poly1305: .chaChaPoly
        }
    }

    /// AEAD.Nk.
    var keyLength: Int {
        switch self {
        case .aes128GCM: 16
        case .aes256GCM, .chaCha20Poly1305: 32
        }
    }

    /// AEAD.Nn; all three use 96-bit nonces.
    var nonceLength: Int { 12 }
    var tagLength: Int { 16 }

    /// Returns ciphertext || tag (RFC 5116 form, as MLS and HPKE expect).
    func seal(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch self {
        case .aes128GCM, .aes256GCM:
            let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
            return Array(box.ciphertext) + Array(box.tag)
        case .chaCha20Poly1305:
            let box = try ChaChaPoly.seal(
                plaintext,
                using: key,
                nonce: ChaChaPoly.Nonce(data: nonce),
                authenticating: aad
            )
            return Array(box.ciphertext) + Array(box.tag)
        }
    }

    /// Opens ciphertext || tag; the caller has checked it is at least a tag long.
    func open(key: [UInt8], nonce: [UInt8], aad: [UInt8], sealed: [UInt8]) throws -> [UInt8] {
        let key = SymmetricKey(data: key)
        let body = sealed[..<(sealed.count - tagLength)]
        let tag = sealed[(sealed.count - tagLength)...]
        switch self {
        case .aes128GCM, .aes256GCM:
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: body, tag: tag)
            return Array(try AES.GCM.open(box, using: key, authenticating: aad))
        case .chaCha20Poly1305:
            let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: body, tag: tag)
            return Array(try ChaChaPoly.open(box, using: key, authenticating: aad))
        }
    }
}

/// The KEM of a suite: a DHKEM (RFC 9180 §7.1) or X-Wing, the ML-KEM-768 + X25519
/// hybrid (draft-connolly-cfrg-xwing-kem-06, HPKE KEM 0x647A).
enum KEMAlgorithm: Sendable {
    case x25519, p256, p384, p521, xWing

    var identifier: UInt16 {
        switch self {
        case .p256: 0x0010
        case .p384: 0x0011
        case .p521: 0x0012
        case .x25519: 0x0020
        case .xWing: 0x647a
        }
    }

    var hpke: HPKE.KEM {
        switch self {
        case .x25519: .Curve25519_HKDF_SHA256
        case .p256: .P256_HKDF_SHA256
        case .p384: .P384_HKDF_SHA384
        case .p521: .P521_HKDF_SHA512
        case .xWing: .XWingMLKEM768X25519
        }
    }

    /// The KEM's own KDF, used by DeriveKeyPair (RFC 9180 §7.1).
    var kdf: HashAlgorithm {
        switch self {
        case .x25519, .p256, .xWing: .sha256
        case .p384: .sha384
        case .p521: .sha512
        }
    }

    /// Nsk (RFC 9180 §7.1); for X-Wing the 32-byte seed (draft-06 §5.2).
    var privateKeyLength: Int {
        switch self {
        case .x25519, .p256, .xWing: 32
        case .p384: 48
        case .p521: 66
        }
    }
}

/// The signature scheme of a suite (RFC 9420 §5.1.2).
enum SignatureAlgorithm: Sendable {
    case ed25519, p256, p384, p521
}
