/// `LeafNodeSource` (RFC 9420 §7.2).
public enum LeafNodeSource: UInt8, TLSEnum, Sendable {
    case keyPackage = 1
    case update = 2
    case commit = 3
}

/// `LeafNode` (RFC 9420 §7.2): a member's public keys, credential and
/// capabilities, signed by the member.
public struct LeafNode: Hashable, Sendable, TLSCodable {
    /// The source-specific field of a leaf node.
    public enum Source: Hashable, Sendable {
        case keyPackage(Lifetime)
        case update
        case commit(parentHash: [UInt8])

        public var leafNodeSource: LeafNodeSource {
            switch self {
            case .keyPackage: .keyPackage
            case .update: .update
            case .commit: .commit
            }
        }
    }

    public var encryptionKey: HPKEPublicKey
    public var signatureKey: SignaturePublicKey
    public var credential: Credential
    public var capabilities: Capabilities
    public var source: Source
    public var extensions: [Extension]
    public var signature: [UInt8]

    public init(
        encryptionKey: HPKEPublicKey,
        signatureKey: SignaturePublicKey,
        credential: Credential,
        capabilities: Capabilities,
        source: Source,
        extensions: [Extension] = [],
        signature: [UInt8] = []
    ) {
        self.encryptionKey = encryptionKey
        self.signatureKey = signatureKey
        self.credential = credential
        self.capabilities = capabilities
        self.source = source
        self.extensions = extensions
        self.signature = signature
    }

    /// The fields before the signature, shared by the encoding and `LeafNodeTBS`.
    private func encodeContent(to writer: inout TLSWriter) throws {
        try writer.write(encryptionKey)
        try writer.write(signatureKey)
        try writer.write(credential)
        try writer.write(capabilities)
        try writer.write(source.leafNodeSource)
        switch source {
        case .keyPackage(let lifetime): try writer.write(lifetime)
        case .update: break
        case .commit(let parentHash): try writer.writeOpaque(parentHash)
        }
        try writer.writeVector(extensions)
    }

    public func encode(to writer: inout TLSWriter) throws {
        try encodeContent(to: &writer)
        try writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws {
        encryptionKey = try reader.read()
        signatureKey = try reader.read()
        credential = try reader.read()
        capabilities = try reader.read()
        switch try reader.read(LeafNodeSource.self) {
        case .keyPackage: source = .keyPackage(try reader.read())
        case .update: source = .update
        case .commit: source = .commit(parentHash: try reader.readOpaque())
        }
        extensions = try reader.readVector()
        signature = try reader.readOpaque()
    }

    /// `LeafNodeTBS` (RFC 9420 §7.2): leaves created by an update or commit are
    /// bound to the group and their position in it.
    public func toBeSigned(groupID: [UInt8], leafIndex: LeafIndex) throws -> [UInt8] {
        var writer = TLSWriter()
        try encodeContent(to: &writer)
        switch source {
        case .keyPackage: break
        case .update, .commit:
            try writer.writeOpaque(groupID)
            try writer.write(leafIndex)
        }
        return writer.bytes
    }

    /// Replaces the signature with one over `LeafNodeTBS` by `signer`.
    public mutating func sign(
        _ suite: CipherSuiteProvider,
        with signer: SignaturePrivateKey,
        groupID: [UInt8],
        leafIndex: LeafIndex
    ) throws {
        signature = try suite.signWithLabel(
            signer,
            label: "LeafNodeTBS",
            content: toBeSigned(groupID: groupID, leafIndex: leafIndex)
        )
    }

    /// Checks the signature against the leaf's own signature key.
    public func verifySignature(_ suite: CipherSuiteProvider, groupID: [UInt8], leafIndex: LeafIndex) throws -> Bool {
        try suite.verifyWithLabel(
            signatureKey,
            label: "LeafNodeTBS",
            content: toBeSigned(groupID: groupID, leafIndex: leafIndex),
            signature: signature
        )
    }
}
