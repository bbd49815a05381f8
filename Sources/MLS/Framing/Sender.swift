/// `WireFormat` (RFC 9420 §6, registry §17.2).
public struct WireFormat: OpenRegistryValue {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let publicMessage = WireFormat(rawValue: 1)
    public static let privateMessage = WireFormat(rawValue: 2)
    public static let welcome = WireFormat(rawValue: 3)
    public static let groupInfo = WireFormat(rawValue: 4)
    public static let keyPackage = WireFormat(rawValue: 5)
}

/// `ContentType` (RFC 9420 §6).
public enum ContentType: UInt8, TLSEnum, Sendable {
    case application = 1
    case proposal = 2
    case commit = 3
}

/// `SenderType` (RFC 9420 §6).
public enum SenderType: UInt8, TLSEnum, Sendable {
    case member = 1
    case external = 2
    case newMemberProposal = 3
    case newMemberCommit = 4
}

/// `Sender` (RFC 9420 §6): who produced a message.
public enum Sender: Hashable, Sendable, TLSCodable {
    case member(LeafIndex)
    /// An index into the group's `external_senders` extension.
    case external(senderIndex: UInt32)
    case newMemberProposal
    case newMemberCommit

    public var senderType: SenderType {
        switch self {
        case .member: .member
        case .external: .external
        case .newMemberProposal: .newMemberProposal
        case .newMemberCommit: .newMemberCommit
        }
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(senderType)
        switch self {
        case .member(let leaf): try writer.write(leaf)
        case .external(let index): writer.write(index)
        case .newMemberProposal, .newMemberCommit: break
        }
    }

    public init(from reader: inout TLSReader) throws {
        switch try reader.read(SenderType.self) {
        case .member: self = .member(try reader.read())
        case .external: self = .external(senderIndex: try reader.read())
        case .newMemberProposal: self = .newMemberProposal
        case .newMemberCommit: self = .newMemberCommit
        }
    }
}
