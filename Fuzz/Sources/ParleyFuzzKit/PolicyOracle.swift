import Foundation
import MLS
import ParleyProtocol

/// Parley's group rules (ParleyGroupPolicy, issue 11 "Systematic") as an
/// oracle over every Commit that the server's view or a member accepted:
/// the fuzzer then looks for a hostile member's way around them, not only
/// for crashes.
///
/// - Add and GroupContextExtensions are applied only when an admin *proposed* them.
/// - An admin is never removed: only its own other device may drop one of its
///   devices, and it keeps at least one; others are removed by an admin or by themselves.
/// - PreSharedKey, ReInit and ExternalInit proposals are never applied.
/// - A member's credential names the same user before and after (§5.3.1 successor).
///
/// `PARLEY_FUZZ_POLICY=0` turns the oracle off, to hunt only for crashes.
struct PolicyOracle {
    static let enabled = ProcessInfo.processInfo.environment["PARLEY_FUZZ_POLICY"] != "0"

    /// The state before the Commit, the state after it and what it said.
    let before: PublicGroup
    let after: PublicGroup
    let summary: CommitSummary

    /// `commit` is nil when only the state is known (a Commit sent as PrivateMessage);
    /// `cached` are the proposals the checking party held, by reference.
    func check(commit: Commit?, committer: Sender, cached: [[UInt8]: ProposalWithSender]) {
        guard Self.enabled else { return }
        let admins = Set((try? ParleyGroupPolicy.admins(in: before.context.extensions)) ?? [])
        if let commit {
            for item in commit.proposals {
                switch item {
                case .proposal(let proposal): checkApplied(proposal, proposer: committer, admins: admins)
                case .reference(let reference):
                    guard let cachedProposal = cached[reference] else {
                        fatalError("policy broken: an accepted Commit names a proposal the party never accepted")
                    }
                    checkApplied(cachedProposal.proposal, proposer: cachedProposal.sender, admins: admins)
                }
            }
        } else if after.context.extensions != before.context.extensions || !summary.added.isEmpty {
            Invariant.require(
                isAdmin(committer, admins),
                "policy broken: a non-admin's Commit changed extensions or members"
            )
        }
        checkMembers(admins: admins)
    }

    private func checkApplied(_ proposal: Proposal, proposer: Sender, admins: Set<String>) {
        switch proposal {
        case .add, .groupContextExtensions:
            Invariant.require(
                isAdmin(proposer, admins),
                "policy broken: a non-admin's \(proposal.proposalType.rawValue) proposal was applied"
            )
        case .remove(let removed):
            let removedUser = name(removed, in: before) ?? ""
            let ownOtherDevice = proposer != .member(removed) && senderName(proposer) == removedUser
            Invariant.require(!admins.contains(removedUser) || ownOtherDevice, "policy broken: an admin was removed")
            Invariant.require(
                isAdmin(proposer, admins) || proposer == .member(removed),
                "policy broken: a non-admin removed another member"
            )
        case .preSharedKey, .reInit, .externalInit:
            fatalError(
                "policy broken: a proposal of type \(proposal.proposalType.rawValue), which Parley refuses, was applied"
            )
        case .update:
            break
        }
    }

    /// Admins stay, and every member that stays keeps its identity.
    private func checkMembers(admins: Set<String>) {
        let removed = Set(summary.removed.map(\.index))
        let adminsBefore = Set(before.tree.members.compactMap { ParleyGroupPolicy.username(of: $0.leaf.credential) })
            .intersection(admins)
        let usersAfter = Set(after.tree.members.compactMap { ParleyGroupPolicy.username(of: $0.leaf.credential) })
        Invariant.require(adminsBefore.isSubset(of: usersAfter), "policy broken: an admin's last device is gone")
        for (leaf, node) in before.tree.members {
            guard !removed.contains(leaf) else { continue }
            Invariant.require(
                after.tree.leafNode(at: leaf)?.credential == node.credential,
                "policy broken: a member's credential changed without a removal (§5.3.1)"
            )
        }
    }

    private func senderName(_ sender: Sender) -> String? {
        guard case .member(let leaf) = sender else { return nil }
        return name(leaf, in: before)
    }

    private func isAdmin(_ sender: Sender, _ admins: Set<String>) -> Bool {
        guard case .member(let leaf) = sender, let user = name(leaf, in: before) else { return false }
        return admins.contains(user)
    }

    private func name(_ leaf: LeafIndex, in group: PublicGroup) -> String? {
        group.tree.leafNode(at: leaf).flatMap { ParleyGroupPolicy.username(of: $0.credential) }
    }
}
