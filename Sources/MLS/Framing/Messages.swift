/// `PublicMessage` (RFC 9420 §6.2): signed, not encrypted; members add a
/// membership tag so outsiders cannot forge one.
public struct PublicMessage: Hashable, Sendable, TLSCodable {
    public var content: FramedContent
    public var auth: FramedContentAuthData
    /// Present exactly when the sender is a member.
    public var membershipTag: [UInt8]?

    public init(content: FramedContent, auth: FramedContentAuthData, membershipTag: [UInt8]? = nil) {
        self.content = content
        self.auth = auth
        self.membershipTag = membershipTag
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(content)
        try auth.encode(to: &writer, contentType: content.contentType)
        if case .member = content.sender {
            guard let membershipTag else {
                throw EncodingError.missingField("membership_tag of a member's PublicMessage")
            }
            try writer.writeOpaque(membershipTag)
        }
    }

    public init(from reader: inout TLSReader) throws {
        content = try reader.read()
        auth = try FramedContentAuthData(from: &reader, contentType: content.contentType)
        if case .member = content.sender {
            membershipTag = try reader.readOpaque()
        } else {
            membershipTag = nil
        }
    }
}

/// `PrivateMessage` (RFC 9420 §6.3): content and sender both encrypted.
public struct PrivateMessage: Hashable, Sendable, TLSCodable {
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var contentType: ContentType
    public var authenticatedData: [UInt8]
    public var encryptedSenderData: [UInt8]
    public var ciphertext: [UInt8]

    public init(
        groupID: [UInt8],
        epoch: UInt64,
        contentType: ContentType,
        authenticatedData: [UInt8],
        encryptedSenderData: [UInt8],
        ciphertext: [UInt8]
    ) {
        self.groupID = groupID
        self.epoch = epoch
        self.contentType = contentType
        self.authenticatedData = authenticatedData
        self.encryptedSenderData = encryptedSenderData
        self.ciphertext = ciphertext
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(groupID)
        writer.write(epoch)
        try writer.write(contentType)
        try writer.writeOpaque(authenticatedData)
        try writer.writeOpaque(encryptedSenderData)
        try writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout TLSReader) throws {
        groupID = try reader.readOpaque()
        epoch = try reader.read()
        contentType = try reader.read()
        authenticatedData = try reader.readOpaque()
        encryptedSenderData = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}

/// `EncryptedGroupSecrets` (RFC 9420 §12.4.3.1).
public struct EncryptedGroupSecrets: Hashable, Sendable, TLSCodable {
    /// The KeyPackageRef of the member this entry is for.
    public var newMember: [UInt8]
    public var encryptedGroupSecrets: HPKECiphertext

    public init(newMember: [UInt8], encryptedGroupSecrets: HPKECiphertext) {
        self.newMember = newMember
        self.encryptedGroupSecrets = encryptedGroupSecrets
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(newMember)
        try writer.write(encryptedGroupSecrets)
    }

    public init(from reader: inout TLSReader) throws {
        newMember = try reader.readOpaque()
        encryptedGroupSecrets = try reader.read()
    }
}

/// `Welcome` (RFC 9420 §12.4.3.1).
public struct Welcome: Hashable, Sendable, TLSCodable {
    public var cipherSuite: CipherSuite
    public var secrets: [EncryptedGroupSecrets]
    public var encryptedGroupInfo: [UInt8]

    public init(cipherSuite: CipherSuite, secrets: [EncryptedGroupSecrets], encryptedGroupInfo: [UInt8]) {
        self.cipherSuite = cipherSuite
        self.secrets = secrets
        self.encryptedGroupInfo = encryptedGroupInfo
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(cipherSuite)
        try writer.writeVector(secrets)
        try writer.writeOpaque(encryptedGroupInfo)
    }

    public init(from reader: inout TLSReader) throws {
        cipherSuite = try reader.read()
        secrets = try reader.readVector()
        encryptedGroupInfo = try reader.readOpaque()
    }
}

/// `GroupSecrets` (RFC 9420 §12.4.3.1): what a Welcome encrypts to each new member.
public struct GroupSecrets: Hashable, Sendable, TLSCodable, CustomStringConvertible {
    public var joinerSecret: [UInt8]
    public var pathSecret: [UInt8]?
    public var psks: [PreSharedKeyID]

    public init(joinerSecret: [UInt8], pathSecret: [UInt8]? = nil, psks: [PreSharedKeyID] = []) {
        self.joinerSecret = joinerSecret
        self.pathSecret = pathSecret
        self.psks = psks
    }

    public var description: String { "GroupSecrets(redacted)" }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(joinerSecret)
        if let pathSecret {
            writer.write(UInt8(1))
            try writer.writeOpaque(pathSecret)
        } else {
            writer.write(UInt8(0))
        }
        try writer.writeVector(psks)
    }

    public init(from reader: inout TLSReader) throws {
        joinerSecret = try reader.readOpaque()
        pathSecret = try reader.readOptional { try $0.readOpaque() }
        psks = try reader.readVector()
    }
}

/// `GroupInfo` (RFC 9420 §12.4.3): the signed public state a joiner needs.
public struct GroupInfo: Hashable, Sendable, TLSCodable {
    public var groupContext: GroupContext
    public var extensions: [Extension]
    public var confirmationTag: [UInt8]
    public var signer: LeafIndex
    public var signature: [UInt8]

    public init(
        groupContext: GroupContext,
        extensions: [Extension],
        confirmationTag: [UInt8],
        signer: LeafIndex,
        signature: [UInt8] = []
    ) {
        self.groupContext = groupContext
        self.extensions = extensions
        self.confirmationTag = confirmationTag
        self.signer = signer
        self.signature = signature
    }

    private func encodeContent(to writer: inout TLSWriter) throws {
        try writer.write(groupContext)
        try writer.writeVector(extensions)
        try writer.writeOpaque(confirmationTag)
        try writer.write(signer)
    }

    public func encode(to writer: inout TLSWriter) throws {
        try encodeContent(to: &writer)
        try writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws {
        groupContext = try reader.read()
        extensions = try reader.readVector()
        confirmationTag = try reader.readOpaque()
        signer = try reader.read()
        signature = try reader.readOpaque()
    }

    /// `GroupInfoTBS` (RFC 9420 §12.4.3).
    public func toBeSigned() throws -> [UInt8] {
        var writer = TLSWriter()
        try encodeContent(to: &writer)
        return writer.bytes
    }
}

/// `MLSMessage` (RFC 9420 §6): the envelope for everything MLS sends.
public enum MLSMessage: Hashable, Sendable, TLSCodable {
    case publicMessage(PublicMessage)
    case privateMessage(PrivateMessage)
    case welcome(Welcome)
    case groupInfo(GroupInfo)
    case keyPackage(KeyPackage)

    public var wireFormat: WireFormat {
        switch self {
        case .publicMessage: .publicMessage
        case .privateMessage: .privateMessage
        case .welcome: .welcome
        case .groupInfo: .groupInfo
        case .keyPackage: .keyPackage
        }
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(ProtocolVersion.mls10)
        try writer.write(wireFormat)
        switch self {
        case .publicMessage(let message): try writer.write(message)
        case .privateMessage(let message): try writer.write(message)
        case .welcome(let welcome): try writer.write(welcome)
        case .groupInfo(let groupInfo): try writer.write(groupInfo)
        case .keyPackage(let keyPackage): try writer.write(keyPackage)
        }
    }

    public init(from reader: inout TLSReader) throws {
        _ = try ProtocolVersion.readMLS10(from: &reader)
        let wireFormat = try reader.read(WireFormat.self)
        switch wireFormat {
        case .publicMessage: self = .publicMessage(try reader.read())
        case .privateMessage: self = .privateMessage(try reader.read())
        case .welcome: self = .welcome(try reader.read())
        case .groupInfo: self = .groupInfo(try reader.read())
        case .keyPackage: self = .keyPackage(try reader.read())
        default: throw DecodingError.unknownEnumValue(type: "WireFormat", value: UInt64(wireFormat.rawValue))
        }
    }
}
