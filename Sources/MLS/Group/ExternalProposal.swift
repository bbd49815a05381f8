/// Proposals from outside the group (RFC 9420 §12.1.8): an external sender
/// listed in the `external_senders` GroupContext extension (§12.1.8.1), and a
/// new member proposing its own Add (sender `new_member_proposal`). Both are
/// PublicMessages without a membership tag, signed without the GroupContext
/// (§6.1); members verify them against the extension or the KeyPackage.
extension PublicGroup {
    /// The `external_senders` extension's list, in order (its index is the sender's `sender_index`).
    public func externalSenders() throws -> [ExternalSender] {
        try ExternalSender.list(in: context.extensions)
    }

    /// A proposal signed by the external sender whose signature key is
    /// `signer`'s, for this epoch. Only Add, Remove, PreSharedKey, ReInit and
    /// GroupContextExtensions may come from an external sender (§12.1.8.1).
    public func externalProposal(
        _ proposal: Proposal,
        signer: SignatureKeyPair,
        authenticatedData: [UInt8] = []
    ) throws -> MLSMessage {
        guard PublicGroup.externalSenderProposalTypes.contains(proposal.proposalType) else {
            throw MLSError.invalidProposal("an external sender may not send this type of proposal")
        }
        guard let index = try externalSenders().firstIndex(where: { $0.signatureKey == signer.publicKey }),
            let senderIndex = UInt32(exactly: index)
        else { throw MLSError.notAnExternalSender }
        return try outsiderProposal(
            proposal,
            sender: .external(senderIndex: senderIndex),
            signer: signer.privateKey,
            authenticatedData
        )
    }

    /// What an external sender may propose (§12.1.8.1).
    static let externalSenderProposalTypes: [ProposalType] = [.add, .remove, .psk, .reinit, .groupContextExtensions]

    /// A PublicMessage carrying `proposal` from a sender outside the group.
    func outsiderProposal(
        _ proposal: Proposal,
        sender: Sender,
        signer: SignaturePrivateKey,
        _ authenticatedData: [UInt8]
    ) throws -> MLSMessage {
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: sender,
            authenticatedData: authenticatedData,
            body: .proposal(proposal)
        )
        let signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .publicMessage,
            context: context,
            signer: signer,
            suite
        )
        return .publicMessage(try PublicMessage.protect(signed, membershipKey: nil, context: context, suite))
    }
}

extension KeyPackageBundle {
    /// This client's own Add proposal for `group` (§12.1.8, sender
    /// `new_member_proposal`), signed with the KeyPackage's signature key; a
    /// member commits it and the client joins by the Welcome, with this bundle.
    public func newMemberAddProposal(for group: PublicGroup, authenticatedData: [UInt8] = []) throws -> MLSMessage {
        guard keyPackage.cipherSuite == group.context.cipherSuite else {
            throw MLSError.invalidKeyPackage("the KeyPackage is for another cipher suite than the group")
        }
        return try group.outsiderProposal(
            .add(keyPackage),
            sender: .newMemberProposal,
            signer: signaturePrivateKey,
            authenticatedData
        )
    }
}

extension ExternalSender {
    /// The list an `external_senders` extension among `extensions` holds, decoded
    /// strictly; empty without one. A GroupContextExtensions proposal whose list
    /// does not decode is refused (§12.1.7), so a member cannot leave the group
    /// with an extension no external proposal could be checked against.
    static func list(in extensions: [Extension]) throws -> [ExternalSender] {
        try extensions.first(.externalSenders).map { bytes in
            var reader = TLSReader(bytes)
            let list = try reader.readVector(of: ExternalSender.self)
            try reader.finish()
            return list
        } ?? []
    }
}
