/// `opaque HPKEPublicKey<V>` (RFC 9420 §5.1.1): X25519 raw bytes, or an
/// uncompressed point for the NIST curves.
public struct HPKEPublicKey: OpaqueBytesValue {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// An HPKE private key in RFC 9180 `SerializePrivateKey` form.
public struct HPKEPrivateKey: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// Private keys never appear in logs.
    public var description: String { "HPKEPrivateKey(redacted)" }
}

/// `opaque SignaturePublicKey<V>` (RFC 9420 §5.1.1): RFC 8032 bytes for
/// Ed25519, an uncompressed point for ECDSA.
public struct SignaturePublicKey: OpaqueBytesValue {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// A signature private key: the RFC 8032 seed for Ed25519, the big-endian
/// scalar for ECDSA.
public struct SignaturePrivateKey: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// Private keys never appear in logs.
    public var description: String { "SignaturePrivateKey(redacted)" }
}

/// An HPKE key pair.
public struct HPKEKeyPair: Hashable, Sendable {
    public var privateKey: HPKEPrivateKey
    public var publicKey: HPKEPublicKey
    public init(privateKey: HPKEPrivateKey, publicKey: HPKEPublicKey) {
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}

/// A signature key pair.
public struct SignatureKeyPair: Hashable, Sendable {
    public var privateKey: SignaturePrivateKey
    public var publicKey: SignaturePublicKey
    public init(privateKey: SignaturePrivateKey, publicKey: SignaturePublicKey) {
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}

/// The output of EncryptWithLabel: the KEM output and the AEAD ciphertext.
/// On the wire this is `HPKECiphertext` (RFC 9420 §7.6).
public struct HPKECiphertext: Hashable, Sendable, TLSCodable {
    public var kemOutput: [UInt8]
    public var ciphertext: [UInt8]

    public init(kemOutput: [UInt8], ciphertext: [UInt8]) {
        self.kemOutput = kemOutput
        self.ciphertext = ciphertext
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(kemOutput)
        try writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout TLSReader) throws {
        kemOutput = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}
