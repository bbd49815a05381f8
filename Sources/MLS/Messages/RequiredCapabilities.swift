/// `RequiredCapabilities` (RFC 9420 §11.1): a GroupContext extension naming
/// what every member must support.
public struct RequiredCapabilities: Hashable, Sendable, TLSCodable {
    public var extensionTypes: [ExtensionType]
    public var proposalTypes: [ProposalType]
    public var credentialTypes: [CredentialType]

    public init(
        extensionTypes: [ExtensionType] = [],
        proposalTypes: [ProposalType] = [],
        credentialTypes: [CredentialType] = []
    ) {
        self.extensionTypes = extensionTypes
        self.proposalTypes = proposalTypes
        self.credentialTypes = credentialTypes
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeVector(extensionTypes)
        try writer.writeVector(proposalTypes)
        try writer.writeVector(credentialTypes)
    }

    public init(from reader: inout TLSReader) throws {
        extensionTypes = try reader.readVector()
        proposalTypes = try reader.readVector()
        credentialTypes = try reader.readVector()
    }

    /// The types every client supports and must not list (RFC 9420 §7.2).
    static let defaultExtensionTypes: Set<UInt16> = [1, 2, 3, 4, 5]
    static let defaultProposalTypes: Set<UInt16> = [1, 2, 3, 4, 5, 6, 7]
}

extension Capabilities {
    func supports(_ type: ExtensionType) -> Bool {
        RequiredCapabilities.defaultExtensionTypes.contains(type.rawValue) || extensions.contains(type)
    }

    func supports(_ type: ProposalType) -> Bool {
        RequiredCapabilities.defaultProposalTypes.contains(type.rawValue) || proposals.contains(type)
    }
}
