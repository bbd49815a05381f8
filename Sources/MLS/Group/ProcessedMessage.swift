/// What processing an incoming message produced.
public enum ProcessedMessage: Sendable {
    /// Application data from a member.
    case application(ApplicationMessage)
    /// A proposal, stored for a later Commit to include by reference.
    case proposal(reference: [UInt8], ProposalWithSender)
    /// A Commit was applied and the group is in a new epoch.
    case commit(CommitSummary)
}

/// Decrypted application data and who sent it.
public struct ApplicationMessage: Hashable, Sendable {
    public var data: [UInt8]
    public var sender: LeafIndex
    public var credential: Credential
    public var authenticatedData: [UInt8]
    public var epoch: UInt64
    public var generation: UInt32
}

/// What a Commit changed.
public struct CommitSummary: Sendable {
    public var committer: Sender
    /// The committer's leaf in the new epoch (for an external commit, the one it joined at).
    public var committerLeaf: LeafIndex
    public var added: [(index: LeafIndex, credential: Credential)]
    public var removed: [(index: LeafIndex, credential: Credential)]
    public var updated: [LeafIndex]
    /// The epoch the group is now in.
    public var epoch: UInt64
    /// This member's own Commit, echoed back by the delivery service.
    public var isOwnCommit: Bool
    /// This member was removed by the Commit; the group can no longer be used.
    public var removedSelf: Bool
    /// The group is being reinitialised with these parameters (§11.2).
    public var reInit: ReInit?
}

extension PublicGroup.StagedCommit {
    func summary(isOwnCommit: Bool, removedSelf: Bool) -> CommitSummary {
        CommitSummary(
            committer: content.content.sender,
            committerLeaf: committer,
            added: applied.added.map { ($0.leaf, $0.keyPackage.leafNode.credential) },
            removed: applied.removed.map { ($0.leaf, $0.leafNode.credential) },
            updated: applied.updated,
            epoch: newContext.epoch,
            isOwnCommit: isOwnCommit,
            removedSelf: removedSelf,
            reInit: applied.reInit
        )
    }
}
