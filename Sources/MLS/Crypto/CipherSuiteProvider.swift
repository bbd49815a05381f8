import Crypto

/// The primitives of one cipher suite (RFC 9420 §5.1, §17.1), all from swift-crypto.
///
/// Obtain one with ``CipherSuite/provider()``. The value is cheap to copy and
/// holds no secrets.
public struct CipherSuiteProvider: Sendable {
    public let suite: CipherSuite
    let hashAlgorithm: HashAlgorithm
    let aead: AEADAlgorithm
    let kem: KEMAlgorithm
    let signatureAlgorithm: SignatureAlgorithm

    init(_ suite: CipherSuite) throws {
        self.suite = suite
        switch suite {
        case .mls128DHKEMX25519AES128GCMSHA256Ed25519:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha256, .aes128GCM, .x25519, .ed25519)
        case .mls128DHKEMP256AES128GCMSHA256P256:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha256, .aes128GCM, .p256, .p256)
        case .mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha256, .chaCha20Poly1305, .x25519, .ed25519)
        case .mls256DHKEMP521AES256GCMSHA512P521:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha512, .aes256GCM, .p521, .p521)
        case .mls256DHKEMP384AES256GCMSHA384P384:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha384, .aes256GCM, .p384, .p384)
        case .mls256XWingChaCha20Poly1305SHA256Ed25519:
            (hashAlgorithm, aead, kem, signatureAlgorithm) = (.sha256, .chaCha20Poly1305, .xWing, .ed25519)
        default:
            throw MLSError.unsupportedCipherSuite(suite.rawValue)
        }
    }

    /// KDF.Nh: the size of a KDF.Extract output and of a hash.
    public var hashLength: Int { hashAlgorithm.outputLength }
    /// AEAD.Nk.
    public var aeadKeyLength: Int { aead.keyLength }
    /// AEAD.Nn.
    public var aeadNonceLength: Int { aead.nonceLength }

    public func hash(_ data: [UInt8]) -> [UInt8] { hashAlgorithm.hash(data) }

    /// KDF.Extract.
    public func extract(salt: [UInt8], ikm: [UInt8]) -> [UInt8] {
        hashAlgorithm.extract(salt: salt, ikm: ikm)
    }

    /// KDF.Expand.
    public func expand(prk: [UInt8], info: [UInt8], length: Int) throws -> [UInt8] {
        try hashAlgorithm.expand(prk: prk, info: info, length: length)
    }

    /// MAC: HMAC with the suite's hash.
    public func mac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        hashAlgorithm.mac(key: key, data: data)
    }

    /// Checks a MAC in constant time.
    public func verifyMAC(_ tag: [UInt8], key: [UInt8], data: [UInt8]) -> Bool {
        hashAlgorithm.verifyMAC(tag, key: key, data: data)
    }

    /// AEAD.Seal; the result is the ciphertext followed by the tag.
    public func seal(key: [UInt8], nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws -> [UInt8] {
        try checkAEADParameters(key: key, nonce: nonce)
        return try aead.seal(key: key, nonce: nonce, aad: aad, plaintext: plaintext)
    }

    /// AEAD.Open; any failure (wrong key, tampering, short input) is ``MLSError/decryptionFailed``.
    public func open(key: [UInt8], nonce: [UInt8], aad: [UInt8], ciphertext: [UInt8]) throws -> [UInt8] {
        try checkAEADParameters(key: key, nonce: nonce)
        guard ciphertext.count >= aead.tagLength else { throw MLSError.decryptionFailed }
        do {
            return try aead.open(key: key, nonce: nonce, aad: aad, sealed: ciphertext)
        } catch {
            throw MLSError.decryptionFailed
        }
    }

    private func checkAEADParameters(key: [UInt8], nonce: [UInt8]) throws {
        guard key.count == aead.keyLength else { throw MLSError.invalidKey("AEAD key must be \(aead.keyLength) bytes") }
        guard nonce.count == aead.nonceLength else {
            throw MLSError.invalidKey("AEAD nonce must be \(aead.nonceLength) bytes")
        }
    }

    /// `count` bytes from the system's cryptographically secure generator.
    public func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
