/// `ProtocolVersion` (RFC 9420 §6). Open, so a capabilities list naming a
/// future version still decodes; structures that must be MLS 1.0 check it.
public struct ProtocolVersion: OpenRegistryValue {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let mls10 = ProtocolVersion(rawValue: 1)

    /// Reads a version field that must be MLS 1.0.
    static func readMLS10(from reader: inout TLSReader) throws -> ProtocolVersion {
        let version = try ProtocolVersion(from: &reader)
        guard version == .mls10 else {
            throw DecodingError.invalidValue("protocol version \(version.rawValue) is not MLS 1.0")
        }
        return version
    }
}

/// `GroupContext` (RFC 9420 §8.1): the summary of a group's state that every
/// key derivation and signature in an epoch is bound to.
public struct GroupContext: Hashable, Sendable, TLSCodable {
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var treeHash: [UInt8]
    public var confirmedTranscriptHash: [UInt8]
    public var extensions: [Extension]

    public init(
        version: ProtocolVersion = .mls10,
        cipherSuite: CipherSuite,
        groupID: [UInt8],
        epoch: UInt64,
        treeHash: [UInt8],
        confirmedTranscriptHash: [UInt8],
        extensions: [Extension] = []
    ) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.groupID = groupID
        self.epoch = epoch
        self.treeHash = treeHash
        self.confirmedTranscriptHash = confirmedTranscriptHash
        self.extensions = extensions
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(version)
        try writer.write(cipherSuite)
        try writer.writeOpaque(groupID)
        writer.write(epoch)
        try writer.writeOpaque(treeHash)
        try writer.writeOpaque(confirmedTranscriptHash)
        try writer.writeVector(extensions)
    }

    public init(from reader: inout TLSReader) throws {
        version = try ProtocolVersion.readMLS10(from: &reader)
        cipherSuite = try reader.read()
        groupID = try reader.readOpaque()
        epoch = try reader.read()
        treeHash = try reader.readOpaque()
        confirmedTranscriptHash = try reader.readOpaque()
        extensions = try reader.readVector()
    }
}
