import Testing

@testable import MLS

/// Findings 3, 6 and 8 at the library level: proposals are judged by who
/// proposed them, when they arrive and again when a commit covers them,
/// and the cache of one epoch's proposals is bounded.
@Suite struct ProposalPolicyTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// Only leaf 0 may propose adding members, removing others, or new extensions.
    struct OnlyLeafZeroProposes: CommitPolicy {
        struct NotAdmin: Error, Equatable {}
        func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {}
        func validateProposal(_ proposal: ProposalWithSender, group: PublicGroup) throws {
            switch proposal.proposal {
            case .add, .groupContextExtensions:
                guard proposal.sender == .member(LeafIndex(0)) else { throw NotAdmin() }
            case .remove(let leaf):
                let allowed = proposal.sender == .member(LeafIndex(0)) || proposal.sender == .member(leaf)
                guard allowed else { throw NotAdmin() }
            default: break
            }
        }
    }

    func group(policy: GroupPolicy) throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        try TestClient.threeMemberGroup(suite, policy: policy)
    }

    /// A GroupContextExtensions proposal with one extension.
    func extensions(_ type: UInt16, _ data: [UInt8]) -> Proposal {
        .groupContextExtensions([Extension(extensionType: ExtensionType(rawValue: type), extensionData: data)])
    }

    func isProposalRejection(_ error: MLSError?) -> Bool {
        guard case .rejectedByPolicy(let rejection)? = error else { return false }
        return rejection.subject == .proposal && rejection.error is OnlyLeafZeroProposes.NotAdmin
    }

    @Test func aForbiddenProposalIsRefusedOnArrivalByServerAndMembers() throws {
        let policy = GroupPolicy(commitPolicy: OnlyLeafZeroProposes())
        var (alice, bob, charlie, server) = try group(policy: policy)
        let removeAlice = try bob.propose(.remove(removed: alice.ownLeaf))
        let takeover = try bob.propose(extensions(0xF0A0, [1]))
        for message in [removeAlice, takeover] {
            #expect(isProposalRejection(#expect(throws: MLSError.self) { try server.process(message) }))
            #expect(isProposalRejection(#expect(throws: MLSError.self) { try alice.process(message) }))
            #expect(isProposalRejection(#expect(throws: MLSError.self) { try charlie.process(message) }))
        }
        #expect(server.proposals.isEmpty && alice.pendingProposals.isEmpty && charlie.pendingProposals.isEmpty)
        // Alice's next commit is unaffected, and bob may still leave.
        let leave = try bob.proposeLeave()
        _ = try server.process(leave)
        _ = try alice.process(leave)
        let commit = try alice.commit()
        _ = try server.process(commit.message)
        #expect(try alice.process(commit.message).commitSummary?.removed.map(\.index) == [bob.ownLeaf])
        #expect(server.members.count == 2)
    }

    /// Inline proposals count as proposed by the committer.
    @Test func anInlineProposalIsJudgedAsTheCommittersOwn() throws {
        let policy = GroupPolicy(commitPolicy: OnlyLeafZeroProposes())
        var (alice, bob, charlie, server) = try group(policy: policy)
        #expect(isProposalRejection(#expect(throws: MLSError.self) { try bob.removeMembers([charlie.ownLeaf]) }))
        let forged = try bob.forgedCommit([.proposal(.remove(removed: charlie.ownLeaf))], path: bob.forgedPath())
        #expect(isProposalRejection(#expect(throws: MLSError.self) { try server.process(forged) }))
        #expect(isProposalRejection(#expect(throws: MLSError.self) { try alice.process(forged) }))
        #expect(server.epoch == 1 && alice.epoch == 1 && charlie.isActive)
    }

    /// A proposal cached under a lax policy is judged again when a commit covers it by reference.
    @Test func aCommitByReferenceIsJudgedByTheProposer() throws {
        var (alice, bob, charlie, _) = try group(policy: GroupPolicy())
        let removeCharlie = try bob.propose(.remove(removed: charlie.ownLeaf))
        _ = try alice.process(removeCharlie)
        var server = try PublicGroup(groupInfo: alice.groupInfo())
        _ = try server.process(removeCharlie)
        alice.policy = GroupPolicy(commitPolicy: OnlyLeafZeroProposes())
        server.policy = alice.policy
        // Alice's own client leaves it out rather than fail her commit ...
        var honest = alice
        #expect(try honest.commit().summary.removed.isEmpty)
        // ... while her lax twin commits it; the strict server refuses.
        var lax = alice
        lax.policy = GroupPolicy()
        let commit = try lax.commit(CommitOptions(forcePath: true))
        #expect(isProposalRejection(#expect(throws: MLSError.self) { try server.process(commit.message) }))
    }

    /// Finding 10's proposal form, and the other §12.1 checks on arrival.
    @Test func invalidProposalsAreNeverCached() throws {
        var (alice, bob, _, server) = try group(policy: GroupPolicy())
        let beyond = try bob.propose(.remove(removed: LeafIndex((1 << 31) + alice.ownLeaf.rawValue)))
        let blank = try bob.propose(.remove(removed: LeafIndex(7)))
        let externalInit = try bob.propose(.externalInit(kemOutput: [1, 2, 3]))
        for message in [beyond, blank, externalInit] {
            #expect(#expect(throws: MLSError.self) { try server.process(message) }?.kind == "invalidProposal")
            #expect(#expect(throws: MLSError.self) { try alice.process(message) }?.kind == "invalidProposal")
        }
        #expect(server.proposals.isEmpty && alice.pendingProposals.isEmpty)
    }

    /// Finding 6: two GroupContextExtensions proposals (or two changes to one
    /// leaf) in the cache never make the member's own commit fail.
    @Test func conflictingPendingProposalsNeverBreakTheCommittersCommit() throws {
        var (alice, bob, charlie, server) = try group(policy: GroupPolicy())
        let proposals = try [
            bob.propose(extensions(0xF0A1, [1])),
            bob.propose(extensions(0xF0A1, [2])),
            charlie.proposeLeave(), bob.propose(.remove(removed: charlie.ownLeaf)),
        ]
        for message in proposals {
            _ = try server.process(message)
            _ = try alice.process(message)
        }
        #expect(alice.pendingProposals.count == 4)
        let commit = try alice.commit()
        _ = try server.process(commit.message)
        _ = try alice.process(commit.message)
        #expect(alice.epoch == 2 && alice.members.count == 2 && server.epoch == 2)
    }

    /// Finding 8: the cache holds at most the policy's count and bytes per
    /// epoch; beyond, a typed error and nothing stored.
    @Test func theProposalCacheIsBounded() throws {
        let policy = GroupPolicy(maximumProposalsPerEpoch: 3, maximumProposalBytesPerEpoch: 10_000)
        var (alice, bob, _, server) = try group(policy: policy)
        func extensions(_ tag: UInt8, size: Int) -> Proposal {
            self.extensions(0xF0A1, [UInt8](repeating: tag, count: size))
        }
        var sent: [MLSMessage] = []
        for tag in UInt8(1)...3 {
            let message = try bob.propose(extensions(tag, size: 10))
            sent.append(message)
            _ = try server.process(message)
            _ = try alice.process(message)
            _ = try bob.process(message)
        }
        let fourth = try bob.propose(extensions(4, size: 10))
        let expected = MLSError.tooManyProposals(maximumCount: 3, maximumBytes: 10_000)
        #expect(throws: expected) { try server.process(fourth) }
        #expect(throws: expected) { try alice.process(fourth) }
        #expect(server.proposals.count == 3 && alice.pendingProposals.count == 3)
        // A proposal already cached, received again, is not a new one.
        _ = try server.process(sent[0])
        #expect(server.proposals.count == 3)
        // Bytes: a fresh epoch, then one proposal too large for the byte budget.
        let commit = try alice.commit()
        _ = try server.process(commit.message)
        _ = try alice.process(commit.message)
        _ = try bob.process(commit.message)
        let small = try bob.propose(extensions(5, size: 6_000))
        _ = try server.process(small)
        let large = try bob.propose(extensions(6, size: 6_000))
        #expect(throws: expected) { try server.process(large) }
        #expect(server.proposals.count == 1 && server.proposalBytes < 10_000)
        // The bound survives a restore.
        let restored = try PublicGroup(serialized: server.serialized(), policy: policy)
        #expect(restored.proposalBytes == server.proposalBytes)
    }

    /// A committer can choose which received proposals to commit, e.g. only leaves.
    @Test func aCommitterCommitsOnlyTheProposalsItChooses() throws {
        var (alice, bob, charlie, server) = try group(policy: GroupPolicy())
        let leave = try charlie.proposeLeave()
        let extensionsChange = try bob.propose(extensions(0xF0A1, [1]))
        var leaveReference: [UInt8] = []
        for message in [leave, extensionsChange] {
            _ = try server.process(message)
            if case .proposal(let reference, let proposal) = try alice.process(message),
                proposal.sender == .member(charlie.ownLeaf)
            {
                leaveReference = reference
            }
        }
        let commit = try alice.commit(CommitOptions(onlyPendingReferences: [leaveReference]))
        _ = try server.process(commit.message)
        _ = try alice.process(commit.message)
        #expect(commit.summary.removed.map(\.index) == [charlie.ownLeaf])
        #expect(alice.context.extensions.isEmpty && server.members.count == 2)
    }
}
