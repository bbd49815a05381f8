import MLS

/// `parley upgrade`: the one ReInit (RFC 9420 §12.1.5) Parley groups accept, judged by members
/// and the server alike. Only an admin proposes it; it moves a group from
/// ``ParleySuites/standard`` to ``ParleySuites/postQuantum`` and nowhere else (never a
/// downgrade, never a second upgrade); the successor keeps the group's extensions (admins and
/// name: the successor cannot seize the admin list) and takes a fresh 32-byte group ID (review
/// s6: a successor with the old ID would let old external proposals replay at its epochs).
extension ParleyGroupPolicy {
    /// The length of a Parley group ID (GroupEngine.createGroup), asked of a successor's too.
    public static let groupIDLength = 32

    static func checkUpgrade(_ reInit: ReInit, proposerIsAdmin: Bool, group: PublicGroup) throws {
        guard proposerIsAdmin else { throw ParleyPolicyError.notAdmin }
        guard group.context.cipherSuite == ParleySuites.standard, reInit.cipherSuite == ParleySuites.postQuantum,
            reInit.version == .mls10, reInit.extensions == group.context.extensions,
            reInit.groupID.count == groupIDLength, reInit.groupID != group.groupID
        else { throw ParleyPolicyError.invalidUpgrade }
    }

    /// The successor's first commit injects the old group's reinit PSK (§11.2); no other PSK
    /// is used, and only there: at epoch 0, by its creator, the one admin-led member.
    static func checkSuccessorPSK(_ id: PreSharedKeyID, proposerIsAdmin: Bool, group: PublicGroup) throws {
        guard proposerIsAdmin, group.epoch == 0, case .resumption(usage: .reinit, _, _) = id.kind else {
            throw ParleyPolicyError.proposalNotAllowed(.psk)
        }
    }
}
