/// Content authentication and protection (RFC 9420 §6.1–§6.3): signatures
/// over `FramedContentTBS`, membership tags for PublicMessage, and the
/// two-layer encryption of PrivateMessage.
extension FramedContent {
    /// `FramedContentTBS` (§6.1). Member and new-member-commit senders bind
    /// the signature to the group's current context.
    public func toBeSigned(wireFormat: WireFormat, context: GroupContext) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.write(ProtocolVersion.mls10)
        try writer.write(wireFormat)
        try writer.write(self)
        switch sender {
        case .member, .newMemberCommit: try writer.write(context)
        case .external, .newMemberProposal: break
        }
        return writer.bytes
    }
}

extension AuthenticatedContent {
    /// Signs `content` for sending as `wireFormat` (§6.1). A commit's
    /// confirmation tag is added afterwards, as it depends on the signature.
    public static func sign(
        _ content: FramedContent,
        wireFormat: WireFormat,
        context: GroupContext,
        signer: SignaturePrivateKey,
        _ suite: CipherSuiteProvider
    ) throws -> AuthenticatedContent {
        let signature = try suite.signWithLabel(
            signer,
            label: "FramedContentTBS",
            content: content.toBeSigned(wireFormat: wireFormat, context: context)
        )
        return AuthenticatedContent(
            wireFormat: wireFormat,
            content: content,
            auth: FramedContentAuthData(signature: signature)
        )
    }

    /// Verifies the sender's signature (§6.1).
    public func verifySignature(
        _ suite: CipherSuiteProvider,
        publicKey: SignaturePublicKey,
        context: GroupContext
    ) throws -> Bool {
        try suite.verifyWithLabel(
            publicKey,
            label: "FramedContentTBS",
            content: content.toBeSigned(wireFormat: wireFormat, context: context),
            signature: auth.signature
        )
    }

    /// `AuthenticatedContentTBM` (§6.2): what the membership tag covers.
    func toBeMACed(context: GroupContext) throws -> [UInt8] {
        var writer = TLSWriter()
        writer.writeRaw(try content.toBeSigned(wireFormat: wireFormat, context: context))
        try auth.encode(to: &writer, contentType: content.contentType)
        return writer.bytes
    }
}

extension PublicMessage {
    /// Encodes signed content as a PublicMessage (§6.2), with a membership tag
    /// when the sender is a member. Application data may not be sent this way.
    public static func protect(
        _ content: AuthenticatedContent,
        membershipKey: [UInt8]?,
        context: GroupContext,
        _ suite: CipherSuiteProvider
    ) throws -> PublicMessage {
        guard content.wireFormat == .publicMessage else {
            throw MLSError.invalidMessage("the content was signed for another wire format")
        }
        guard content.content.contentType != .application else {
            throw MLSError.invalidMessage("application messages must be sent as PrivateMessage (RFC 9420 §6)")
        }
        var tag: [UInt8]?
        if case .member = content.content.sender {
            guard let membershipKey else {
                throw MLSError.invalidMessage("a member's PublicMessage needs the membership key")
            }
            tag = suite.mac(key: membershipKey, data: try content.toBeMACed(context: context))
        }
        return PublicMessage(content: content.content, auth: content.auth, membershipTag: tag)
    }

    /// The content with its wire format, before any check.
    public var authenticatedContent: AuthenticatedContent {
        AuthenticatedContent(wireFormat: .publicMessage, content: content, auth: auth)
    }

    /// Checks a member sender's membership tag in constant time (§6.2).
    /// Messages from non-members carry none and pass.
    public func verifyMembershipTag(
        _ suite: CipherSuiteProvider,
        membershipKey: [UInt8],
        context: GroupContext
    ) throws -> Bool {
        guard case .member = content.sender else { return membershipTag == nil }
        guard let membershipTag else { return false }
        return suite.verifyMAC(
            membershipTag,
            key: membershipKey,
            data: try authenticatedContent.toBeMACed(context: context)
        )
    }
}

/// `SenderData` (RFC 9420 §6.3.2).
struct SenderData: TLSCodable {
    var leafIndex: LeafIndex
    var generation: UInt32
    var reuseGuard: [UInt8]

    func encode(to writer: inout TLSWriter) throws {
        try writer.write(leafIndex)
        writer.write(generation)
        writer.writeRaw(reuseGuard)
    }

    init(leafIndex: LeafIndex, generation: UInt32, reuseGuard: [UInt8]) {
        self.leafIndex = leafIndex
        self.generation = generation
        self.reuseGuard = reuseGuard
    }

    init(from reader: inout TLSReader) throws {
        leafIndex = try reader.read()
        generation = try reader.read()
        reuseGuard = try reader.readRaw(count: 4)
    }
}

extension PrivateMessage {
    /// Encrypts signed member content (§6.3): the content and auth data under
    /// the sender's next ratchet key with a fresh reuse guard, then the sender
    /// data under a key derived from a sample of that ciphertext.
    ///
    /// - Parameter paddingBlock: the plaintext is zero-padded to a multiple of
    ///   this many bytes so lengths leak less (0 for no padding).
    public static func protect(
        _ content: AuthenticatedContent,
        secretTree: inout SecretTree,
        senderDataSecret: [UInt8],
        paddingBlock: Int = 0
    ) throws -> PrivateMessage {
        let suite = secretTree.suite
        guard content.wireFormat == .privateMessage else {
            throw MLSError.invalidMessage("the content was signed for another wire format")
        }
        guard case .member(let sender) = content.content.sender else {
            throw MLSError.invalidMessage("only members can send a PrivateMessage")
        }
        let framed = content.content
        var plaintext = TLSWriter()
        try FramedContent.encodeBody(framed.body, to: &plaintext)
        try content.auth.encode(to: &plaintext, contentType: framed.contentType)
        if paddingBlock > 1 {
            let remainder = plaintext.bytes.count % paddingBlock
            if remainder != 0 { plaintext.writeRaw([UInt8](repeating: 0, count: paddingBlock - remainder)) }
        }

        let key = try secretTree.nextKey(for: sender, framed.contentType == .application ? .application : .handshake)
        let reuseGuard = suite.randomBytes(4)
        let aad = try contentAAD(
            groupID: framed.groupID,
            epoch: framed.epoch,
            contentType: framed.contentType,
            authenticatedData: framed.authenticatedData
        )
        let ciphertext = try suite.seal(
            key: key.key,
            nonce: guarded(key.nonce, reuseGuard),
            aad: aad,
            plaintext: plaintext.bytes
        )

        let senderKey = try SenderDataKey(suite, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
        let senderData = try SenderData(leafIndex: sender, generation: key.generation, reuseGuard: reuseGuard)
            .tlsEncoded()
        let encryptedSenderData = try suite.seal(
            key: senderKey.key,
            nonce: senderKey.nonce,
            aad: senderDataAAD(groupID: framed.groupID, epoch: framed.epoch, contentType: framed.contentType),
            plaintext: senderData
        )
        return PrivateMessage(
            groupID: framed.groupID,
            epoch: framed.epoch,
            contentType: framed.contentType,
            authenticatedData: framed.authenticatedData,
            encryptedSenderData: encryptedSenderData,
            ciphertext: ciphertext
        )
    }

    /// The sender's leaf and ratchet generation, from the encrypted sender data (§6.3.2).
    public func decryptSenderData(
        _ suite: CipherSuiteProvider,
        senderDataSecret: [UInt8]
    ) throws -> (sender: LeafIndex, generation: UInt32, reuseGuard: [UInt8]) {
        let senderKey = try SenderDataKey(suite, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
        let plaintext = try suite.open(
            key: senderKey.key,
            nonce: senderKey.nonce,
            aad: Self.senderDataAAD(groupID: groupID, epoch: epoch, contentType: contentType),
            ciphertext: encryptedSenderData
        )
        let data = try SenderData(tlsEncoded: plaintext)
        return (data.leafIndex, data.generation, data.reuseGuard)
    }

    /// Decrypts with the sender's ratchet key (§6.3.1), consuming it, and
    /// checks that the padding is all zeros. The caller verifies the signature
    /// and that the sender's leaf is non-blank.
    public func unprotect(
        secretTree: inout SecretTree,
        senderDataSecret: [UInt8]
    ) throws -> (content: AuthenticatedContent, generation: UInt32) {
        let suite = secretTree.suite
        let (sender, generation, reuseGuard) = try decryptSenderData(suite, senderDataSecret: senderDataSecret)
        // Work on a copy so a failed decryption consumes nothing.
        var tree = secretTree
        let key = try tree.key(
            for: sender,
            contentType == .application ? .application : .handshake,
            generation: generation
        )
        let aad = try Self.contentAAD(
            groupID: groupID,
            epoch: epoch,
            contentType: contentType,
            authenticatedData: authenticatedData
        )
        let plaintext = try suite.open(
            key: key.key,
            nonce: Self.guarded(key.nonce, reuseGuard),
            aad: aad,
            ciphertext: ciphertext
        )

        var reader = TLSReader(plaintext)
        let body = try FramedContent.decodeBody(of: contentType, from: &reader)
        let auth = try FramedContentAuthData(from: &reader, contentType: contentType)
        guard try reader.readRaw(count: reader.remaining).allSatisfy({ $0 == 0 }) else {
            throw MLSError.invalidMessage("the padding of a PrivateMessage is not all zeros")
        }
        secretTree = tree
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: .member(sender),
            authenticatedData: authenticatedData,
            body: body
        )
        return (AuthenticatedContent(wireFormat: .privateMessage, content: content, auth: auth), generation)
    }

    /// `PrivateContentAAD` (§6.3.1).
    static func contentAAD(
        groupID: [UInt8],
        epoch: UInt64,
        contentType: ContentType,
        authenticatedData: [UInt8]
    ) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(groupID)
        writer.write(epoch)
        try writer.write(contentType)
        try writer.writeOpaque(authenticatedData)
        return writer.bytes
    }

    /// `SenderDataAAD` (§6.3.2).
    static func senderDataAAD(groupID: [UInt8], epoch: UInt64, contentType: ContentType) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(groupID)
        writer.write(epoch)
        try writer.write(contentType)
        return writer.bytes
    }

    /// The nonce with its first four bytes XORed with the reuse guard (§6.3.1).
    static func guarded(_ nonce: [UInt8], _ reuseGuard: [UInt8]) -> [UInt8] {
        var result = nonce
        for index in 0..<4 { result[index] ^= reuseGuard[index] }
        return result
    }
}
