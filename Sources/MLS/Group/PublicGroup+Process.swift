/// What the public view learned from a handshake message.
public enum PublicGroupEvent: Sendable {
    /// A valid proposal, cached for a later Commit.
    case proposal(reference: [UInt8], ProposalWithSender)
    /// A valid Commit: the view is now in the next epoch.
    case commit(CommitSummary)
}

extension PublicGroup {
    /// Follows the group through a handshake PublicMessage (§6.2, §12.4.2),
    /// checking everything that needs no secret: group, epoch (the first
    /// Commit of an epoch wins; later ones fail with ``MLSError/wrongEpoch(message:group:)``),
    /// the sender's signature, the proposal list, the application's policy,
    /// the UpdatePath's shape, new leaves and parent hashes. On error the view is unchanged.
    ///
    /// PrivateMessages are opaque to the view; application data is never handed to it.
    public mutating func process(_ message: MLSMessage) throws -> PublicGroupEvent {
        guard case .publicMessage(let publicMessage) = message else {
            throw MLSError.invalidMessage("the public view can only check handshake messages sent as PublicMessage")
        }
        let content = publicMessage.authenticatedContent
        if case .member = content.content.sender, publicMessage.membershipTag == nil {
            throw MLSError.invalidMessage("a member's PublicMessage needs a membership tag")
        }
        switch content.content.body {
        case .application:
            throw MLSError.invalidMessage("application data must be sent as PrivateMessage")
        case .proposal:
            try verify(content)
            var next = self
            let (reference, proposal) = try next.cacheProposal(content)
            self = next
            return .proposal(reference: reference, proposal)
        case .commit:
            let staged = try stage(content)
            adopt(staged)
            return .commit(staged.summary(isOwnCommit: false, removedSelf: false))
        }
    }
}
