@testable import MLS

/// What a hostile member can send that the public API never would: any
/// content, signed with its own key and protected with its own epoch
/// secrets. `@testable` reaches those secrets (scripts/fuzz builds with
/// `-enable-testing`); nothing here changes how a receiver checks a message.
enum Forge {
    /// `content` signed by `member`, as PublicMessage with the real membership
    /// tag (§6.2), so members check it as far as the server's view does. A
    /// Commit's confirmation tag needs the next epoch's secrets, which only an
    /// honest commit computes: it is left as zeros, and checked last.
    static func publicMessage(_ content: FramedContent, from member: Group) throws -> MLSMessage {
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .publicMessage,
            context: member.context,
            signer: member.signer,
            member.suite
        )
        if content.contentType == .commit { signed.auth.confirmationTag = zeros(member) }
        guard case .member = content.sender else {
            return .publicMessage(PublicMessage(content: signed.content, auth: signed.auth))
        }
        return .publicMessage(
            try PublicMessage.protect(
                signed,
                membershipKey: member.epochSecrets.membershipKey,
                context: member.context,
                member.suite
            )
        )
    }

    /// `content` signed by `member` and encrypted under its own ratchet as
    /// PrivateMessage (§6.3), with a SenderData that claims `claim`'s leaf and
    /// generation. When the claim is the member's own leaf and a generation
    /// its ratchet reaches, the message is valid; otherwise receivers must
    /// refuse it cleanly, whatever the numbers.
    static func privateMessage(
        _ content: FramedContent,
        from member: inout Group,
        claiming claim: SenderData
    ) throws
        -> MLSMessage
    {
        let suite = member.suite
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .privateMessage,
            context: member.context,
            signer: member.signer,
            suite
        )
        if content.contentType == .commit { signed.auth.confirmationTag = zeros(member) }
        var plaintext = TLSWriter()
        try FramedContent.encodeBody(content.body, to: &plaintext)
        try signed.auth.encode(to: &plaintext, contentType: content.contentType)

        let type: RatchetType = content.contentType == .application ? .application : .handshake
        let key =
            try (try? member.secretTree.key(for: member.ownLeaf, type, generation: claim.generation))
            ?? member.secretTree.nextKey(for: member.ownLeaf, type)
        let aad = try PrivateMessage.contentAAD(
            groupID: content.groupID,
            epoch: content.epoch,
            contentType: content.contentType,
            authenticatedData: content.authenticatedData
        )
        let ciphertext = try suite.seal(
            key: key.key,
            nonce: PrivateMessage.guarded(key.nonce, claim.reuseGuard),
            aad: aad,
            plaintext: plaintext.bytes
        )
        let senderKey = try SenderDataKey(
            suite,
            senderDataSecret: member.epochSecrets.senderDataSecret,
            ciphertext: ciphertext
        )
        let senderData = try suite.seal(
            key: senderKey.key,
            nonce: senderKey.nonce,
            aad: PrivateMessage.senderDataAAD(
                groupID: content.groupID,
                epoch: content.epoch,
                contentType: content.contentType
            ),
            plaintext: claim.tlsEncoded()
        )
        return .privateMessage(
            PrivateMessage(
                groupID: content.groupID,
                epoch: content.epoch,
                contentType: content.contentType,
                authenticatedData: content.authenticatedData,
                encryptedSenderData: senderData,
                ciphertext: ciphertext
            )
        )
    }

    private static func zeros(_ member: Group) -> [UInt8] {
        [UInt8](repeating: 0, count: member.suite.hashLength)
    }
}
