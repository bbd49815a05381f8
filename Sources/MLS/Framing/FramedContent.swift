/// `FramedContent` (RFC 9420 §6): the content of a message with the group,
/// epoch and sender it belongs to.
public struct FramedContent: Hashable, Sendable, TLSCodable {
    /// The `select (content_type)` body.
    public enum Body: Hashable, Sendable {
        case application([UInt8])
        case proposal(Proposal)
        case commit(Commit)

        public var contentType: ContentType {
            switch self {
            case .application: .application
            case .proposal: .proposal
            case .commit: .commit
            }
        }
    }

    public var groupID: [UInt8]
    public var epoch: UInt64
    public var sender: Sender
    public var authenticatedData: [UInt8]
    public var body: Body

    public var contentType: ContentType { body.contentType }

    public init(groupID: [UInt8], epoch: UInt64, sender: Sender, authenticatedData: [UInt8] = [], body: Body) {
        self.groupID = groupID
        self.epoch = epoch
        self.sender = sender
        self.authenticatedData = authenticatedData
        self.body = body
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(groupID)
        writer.write(epoch)
        try writer.write(sender)
        try writer.writeOpaque(authenticatedData)
        try writer.write(body.contentType)
        try Self.encodeBody(body, to: &writer)
    }

    public init(from reader: inout TLSReader) throws {
        groupID = try reader.readOpaque()
        epoch = try reader.read()
        sender = try reader.read()
        authenticatedData = try reader.readOpaque()
        body = try Self.decodeBody(of: try reader.read(), from: &reader)
    }

    /// The body alone, as it appears (padded) inside `PrivateMessageContent`.
    static func encodeBody(_ body: Body, to writer: inout TLSWriter) throws {
        switch body {
        case .application(let data): try writer.writeOpaque(data)
        case .proposal(let proposal): try writer.write(proposal)
        case .commit(let commit): try writer.write(commit)
        }
    }

    static func decodeBody(of type: ContentType, from reader: inout TLSReader) throws -> Body {
        switch type {
        case .application: .application(try reader.readOpaque())
        case .proposal: .proposal(try reader.read())
        case .commit: .commit(try reader.read())
        }
    }
}

/// `FramedContentAuthData` (RFC 9420 §6.1): the sender's signature and, for a
/// Commit, its confirmation tag.
public struct FramedContentAuthData: Hashable, Sendable {
    public var signature: [UInt8]
    /// Present exactly when the content is a Commit.
    public var confirmationTag: [UInt8]?

    public init(signature: [UInt8], confirmationTag: [UInt8]? = nil) {
        self.signature = signature
        self.confirmationTag = confirmationTag
    }

    func encode(to writer: inout TLSWriter, contentType: ContentType) throws {
        try writer.writeOpaque(signature)
        if contentType == .commit {
            guard let confirmationTag else { throw EncodingError.missingField("confirmation_tag of a commit") }
            try writer.writeOpaque(confirmationTag)
        }
    }

    init(from reader: inout TLSReader, contentType: ContentType) throws {
        signature = try reader.readOpaque()
        confirmationTag = contentType == .commit ? try reader.readOpaque() : nil
    }
}

/// `AuthenticatedContent` (RFC 9420 §6): what is signed, hashed into the
/// transcript and referenced by ProposalRef.
public struct AuthenticatedContent: Hashable, Sendable, TLSCodable {
    public var wireFormat: WireFormat
    public var content: FramedContent
    public var auth: FramedContentAuthData

    public init(wireFormat: WireFormat, content: FramedContent, auth: FramedContentAuthData) {
        self.wireFormat = wireFormat
        self.content = content
        self.auth = auth
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(wireFormat)
        try writer.write(content)
        try auth.encode(to: &writer, contentType: content.contentType)
    }

    public init(from reader: inout TLSReader) throws {
        wireFormat = try reader.read()
        content = try reader.read()
        auth = try FramedContentAuthData(from: &reader, contentType: content.contentType)
    }
}
