/// A proposal type (RFC 9420 §12.1, registry §17.4). Open for GREASE values
/// in capability lists.
public struct ProposalType: OpenRegistryValue {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let add = ProposalType(rawValue: 1)
    public static let update = ProposalType(rawValue: 2)
    public static let remove = ProposalType(rawValue: 3)
    public static let psk = ProposalType(rawValue: 4)
    public static let reinit = ProposalType(rawValue: 5)
    public static let externalInit = ProposalType(rawValue: 6)
    public static let groupContextExtensions = ProposalType(rawValue: 7)
}

/// `ReInit` (RFC 9420 §12.1.5).
public struct ReInit: Hashable, Sendable {
    public var groupID: [UInt8]
    public var version: ProtocolVersion
    public var cipherSuite: CipherSuite
    public var extensions: [Extension]

    public init(
        groupID: [UInt8],
        version: ProtocolVersion = .mls10,
        cipherSuite: CipherSuite,
        extensions: [Extension] = []
    ) {
        self.groupID = groupID
        self.version = version
        self.cipherSuite = cipherSuite
        self.extensions = extensions
    }
}

/// `Proposal` (RFC 9420 §12.1): a suggested change, applied when a Commit covers it.
public enum Proposal: Hashable, Sendable, TLSCodable {
    /// §12.1.1: add the client of this KeyPackage.
    case add(KeyPackage)
    /// §12.1.2: replace the sender's own leaf.
    case update(LeafNode)
    /// §12.1.3: remove the member at this leaf.
    case remove(removed: LeafIndex)
    /// §12.1.4: inject a pre-shared key.
    case preSharedKey(PreSharedKeyID)
    /// §12.1.5: close this group and start a new one with these parameters.
    case reInit(ReInit)
    /// §12.1.6: the KEM output of an external joiner's init secret.
    case externalInit(kemOutput: [UInt8])
    /// §12.1.7: replace the GroupContext extensions.
    case groupContextExtensions([Extension])

    public var proposalType: ProposalType {
        switch self {
        case .add: .add
        case .update: .update
        case .remove: .remove
        case .preSharedKey: .psk
        case .reInit: .reinit
        case .externalInit: .externalInit
        case .groupContextExtensions: .groupContextExtensions
        }
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(proposalType)
        switch self {
        case .add(let keyPackage): try writer.write(keyPackage)
        case .update(let leafNode): try writer.write(leafNode)
        case .remove(let removed): try writer.write(removed)
        case .preSharedKey(let id): try writer.write(id)
        case .reInit(let reInit):
            try writer.writeOpaque(reInit.groupID)
            try writer.write(reInit.version)
            try writer.write(reInit.cipherSuite)
            try writer.writeVector(reInit.extensions)
        case .externalInit(let kemOutput): try writer.writeOpaque(kemOutput)
        case .groupContextExtensions(let extensions): try writer.writeVector(extensions)
        }
    }

    public init(from reader: inout TLSReader) throws {
        let type = try reader.read(ProposalType.self)
        switch type {
        case .add: self = .add(try reader.read())
        case .update: self = .update(try reader.read())
        case .remove: self = .remove(removed: try reader.read())
        case .psk: self = .preSharedKey(try reader.read())
        case .reinit:
            self = .reInit(
                ReInit(
                    groupID: try reader.readOpaque(),
                    version: try reader.read(),
                    cipherSuite: try reader.read(),
                    extensions: try reader.readVector()
                )
            )
        case .externalInit: self = .externalInit(kemOutput: try reader.readOpaque())
        case .groupContextExtensions: self = .groupContextExtensions(try reader.readVector())
        default:
            // Proposal bodies carry no length, so an unknown type cannot be skipped.
            throw DecodingError.unknownEnumValue(type: "ProposalType", value: UInt64(type.rawValue))
        }
    }
}

/// `ProposalOrRefType` (RFC 9420 §12.4).
public enum ProposalOrRefType: UInt8, TLSEnum, Sendable {
    case proposal = 1
    case reference = 2
}

/// `ProposalOrRef` (RFC 9420 §12.4): a proposal carried inline in a Commit, or
/// the ProposalRef of one sent earlier in the epoch.
public enum ProposalOrRef: Hashable, Sendable, TLSCodable {
    case proposal(Proposal)
    case reference([UInt8])

    public func encode(to writer: inout TLSWriter) throws {
        switch self {
        case .proposal(let proposal):
            try writer.write(ProposalOrRefType.proposal)
            try writer.write(proposal)
        case .reference(let reference):
            try writer.write(ProposalOrRefType.reference)
            try writer.writeOpaque(reference)
        }
    }

    public init(from reader: inout TLSReader) throws {
        switch try reader.read(ProposalOrRefType.self) {
        case .proposal: self = .proposal(try reader.read())
        case .reference: self = .reference(try reader.readOpaque())
        }
    }
}

/// `Commit` (RFC 9420 §12.4).
public struct Commit: Hashable, Sendable, TLSCodable {
    public var proposals: [ProposalOrRef]
    public var path: UpdatePath?

    public init(proposals: [ProposalOrRef], path: UpdatePath? = nil) {
        self.proposals = proposals
        self.path = path
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeVector(proposals)
        try writer.writeOptional(path)
    }

    public init(from reader: inout TLSReader) throws {
        proposals = try reader.readVector()
        path = try reader.readOptional()
    }
}
