@testable import MLS

/// What a hostile member's own client can send: content signed with its real
/// key and tagged with the real membership key, but built without any of the
/// checks `Group.commit` and `Group.propose` make.
extension Group {
    func forgedCommit(
        _ proposals: [ProposalOrRef],
        path: UpdatePath? = nil,
        confirmationTag: [UInt8]? = nil
    ) throws -> MLSMessage {
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: .member(ownLeaf),
            authenticatedData: [],
            body: .commit(Commit(proposals: proposals, path: path))
        )
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .publicMessage,
            context: context,
            signer: signer,
            suite
        )
        signed.auth.confirmationTag = confirmationTag ?? suite.randomBytes(suite.hashLength)
        return .publicMessage(
            try PublicMessage.protect(
                signed,
                membershipKey: epochSecrets.membershipKey,
                context: context,
                suite
            )
        )
    }

    /// A fresh UpdatePath for this member, with `leafNode` as its new leaf content.
    func forgedPath(leafNode: LeafNode? = nil) throws -> UpdatePath {
        let prepared = try tree.prepareUpdatePath(from: ownLeaf, signer: signer, groupID: groupID, leafNode: leafNode)
        var provisional = context
        provisional.treeHash = prepared.tree.treeHash
        return try prepared.encrypt(groupContext: provisional)
    }
}

extension MLSError {
    /// The case, without its sentence: tests assert the kind of refusal.
    var kind: String {
        String(describing: self).prefix { $0 != "(" }.description
    }
}
