/// `Capabilities` (RFC 9420 §7.2): what a client supports beyond the defaults.
public struct Capabilities: Hashable, Sendable, TLSCodable {
    public var versions: [ProtocolVersion]
    public var cipherSuites: [CipherSuite]
    public var extensions: [ExtensionType]
    public var proposals: [ProposalType]
    public var credentials: [CredentialType]

    public init(
        versions: [ProtocolVersion] = [.mls10],
        cipherSuites: [CipherSuite],
        extensions: [ExtensionType] = [],
        proposals: [ProposalType] = [],
        credentials: [CredentialType] = [.basic]
    ) {
        self.versions = versions
        self.cipherSuites = cipherSuites
        self.extensions = extensions
        self.proposals = proposals
        self.credentials = credentials
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeVector(versions)
        try writer.writeVector(cipherSuites)
        try writer.writeVector(extensions)
        try writer.writeVector(proposals)
        try writer.writeVector(credentials)
    }

    public init(from reader: inout TLSReader) throws {
        versions = try reader.readVector()
        cipherSuites = try reader.readVector()
        extensions = try reader.readVector()
        proposals = try reader.readVector()
        credentials = try reader.readVector()
    }
}

/// `Lifetime` (RFC 9420 §7.2): seconds since the Unix epoch.
public struct Lifetime: Hashable, Sendable, TLSCodable {
    public var notBefore: UInt64
    public var notAfter: UInt64

    public init(notBefore: UInt64, notAfter: UInt64) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    public func encode(to writer: inout TLSWriter) {
        writer.write(notBefore)
        writer.write(notAfter)
    }

    public init(from reader: inout TLSReader) throws {
        notBefore = try reader.read()
        notAfter = try reader.read()
    }
}
