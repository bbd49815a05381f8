/// `KeyPackage` (RFC 9420 §10): a client's signed, pre-published offer to be
/// added to a group.
public struct KeyPackage: Hashable, Sendable, TLSCodable {
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var initKey: HPKEPublicKey
    public var leafNode: LeafNode
    public var extensions: [Extension]
    public var signature: [UInt8]

    public init(
        version: ProtocolVersion = .mls10,
        cipherSuite: CipherSuite,
        initKey: HPKEPublicKey,
        leafNode: LeafNode,
        extensions: [Extension] = [],
        signature: [UInt8] = []
    ) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.initKey = initKey
        self.leafNode = leafNode
        self.extensions = extensions
        self.signature = signature
    }

    private func encodeContent(to writer: inout TLSWriter) throws {
        try writer.write(version)
        try writer.write(cipherSuite)
        try writer.write(initKey)
        try writer.write(leafNode)
        try writer.writeVector(extensions)
    }

    public func encode(to writer: inout TLSWriter) throws {
        try encodeContent(to: &writer)
        try writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws {
        version = try ProtocolVersion.readMLS10(from: &reader)
        cipherSuite = try reader.read()
        initKey = try reader.read()
        leafNode = try reader.read()
        extensions = try reader.readVector()
        signature = try reader.readOpaque()
    }

    /// `KeyPackageTBS` (RFC 9420 §10).
    public func toBeSigned() throws -> [UInt8] {
        var writer = TLSWriter()
        try encodeContent(to: &writer)
        return writer.bytes
    }

    /// MakeKeyPackageRef over this KeyPackage (RFC 9420 §5.2).
    public func reference(_ suite: CipherSuiteProvider) throws -> [UInt8] {
        try suite.makeKeyPackageRef(tlsEncoded())
    }
}
