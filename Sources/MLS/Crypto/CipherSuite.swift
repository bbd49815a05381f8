/// An MLS cipher suite identifier (RFC 9420 §5.1, registry in §17.1).
///
/// This is an open value: unknown identifiers (GREASE, private use) decode and
/// re-encode unchanged; asking for their ``provider()`` throws
/// ``MLSError/unsupportedCipherSuite(_:)``.
public struct CipherSuite: OpenRegistryValue, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let mls128DHKEMX25519AES128GCMSHA256Ed25519 = CipherSuite(rawValue: 0x0001)
    public static let mls128DHKEMP256AES128GCMSHA256P256 = CipherSuite(rawValue: 0x0002)
    public static let mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 = CipherSuite(rawValue: 0x0003)
    public static let mls256DHKEMX448AES256GCMSHA512Ed448 = CipherSuite(rawValue: 0x0004)
    public static let mls256DHKEMP521AES256GCMSHA512P521 = CipherSuite(rawValue: 0x0005)
    public static let mls256DHKEMX448ChaCha20Poly1305SHA512Ed448 = CipherSuite(rawValue: 0x0006)
    public static let mls256DHKEMP384AES256GCMSHA384P384 = CipherSuite(rawValue: 0x0007)
    /// Post-quantum: X-Wing (ML-KEM-768 + X25519) for HPKE, ChaCha20-Poly1305,
    /// SHA-256 and Ed25519. 0x004D is the code point OpenMLS ships as
    /// experimental; it is not in the RFC 9420 §17.1 registry and no official
    /// test vector covers it.
    public static let mls256XWingChaCha20Poly1305SHA256Ed25519 = CipherSuite(rawValue: 0x004D)

    /// The suites this library implements, in registry order.
    public static let supported: [CipherSuite] = [
        .mls128DHKEMX25519AES128GCMSHA256Ed25519,
        .mls128DHKEMP256AES128GCMSHA256P256,
        .mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519,
        .mls256DHKEMP521AES256GCMSHA512P521,
        .mls256DHKEMP384AES256GCMSHA384P384,
        .mls256XWingChaCha20Poly1305SHA256Ed25519,
    ]

    public var isSupported: Bool { Self.supported.contains(self) }

    /// The primitives behind this suite.
    public func provider() throws -> CipherSuiteProvider {
        try CipherSuiteProvider(self)
    }

    public var description: String { "cipher suite \(rawValue)" }
}
