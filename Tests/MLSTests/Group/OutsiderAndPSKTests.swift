import Testing

@testable import MLS

/// What a member refuses from outside the group and in PSK lists (review s6): an outsider's
/// proposal is never committed unless named, an external sender's credential passes the
/// application's check, and a PSK no member can use is refused before it is cached.
@Suite struct OutsiderAndPSKTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// Refuses the external sender called "ds".
    struct NoDS: CredentialValidator {
        struct Refused: Error {}
        func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            if credential == .basic(identity: Array("ds".utf8)) { throw Refused() }
        }
    }

    /// alice, bob and charlie in a group whose `external_senders` lists `sender` as "ds"; the
    /// joiners use `policy`.
    func group(
        externalSender sender: SignatureKeyPair,
        policy: GroupPolicy = GroupPolicy()
    ) throws -> (
        alice: Group, bob: Group, charlie: Group
    ) {
        var writer = TLSWriter()
        try writer.writeVector([
            ExternalSender(signatureKey: sender.publicKey, credential: .basic(identity: Array("ds".utf8)))
        ])
        var alice = try TestClient("alice", suite).createGroup(
            extensions: [Extension(extensionType: .externalSenders, extensionData: writer.bytes)]
        )
        var others: [Group] = []
        let joined = try add(
            [TestClient("bob", suite), TestClient("charlie", suite)],
            to: &alice,
            others: &others,
            policy: policy
        )
        return (alice, joined[0], joined[1])
    }

    @Test func anOutsidersProposalIsCommittedOnlyWhenNamed() throws {
        let ds = suite.generateSignatureKeyPair()
        var (alice, bob, charlie) = try group(externalSender: ds)
        let dave = try TestClient("dave", suite).keyPackage()
        let join = try dave.newMemberAddProposal(for: alice.publicGroup)
        let removal = try alice.publicGroup.externalProposal(.remove(removed: charlie.ownLeaf), signer: ds)
        var references: [[UInt8]] = []
        for proposal in [join, removal] {
            guard case .proposal(let reference, _) = try alice.process(proposal) else {
                Issue.record("not a proposal")
                return
            }
            references.append(reference)
            _ = try bob.process(proposal)
        }
        // Alice's next ordinary commit leaves both alone: no one joins or leaves through it.
        let plain = try alice.commit()
        _ = try alice.process(plain.message)
        let summary = try #require(try bob.process(plain.message).commitSummary)
        #expect(summary.added.isEmpty && summary.removed.isEmpty && plain.welcome == nil)
        #expect(alice.members.count == 3 && bob.members.count == 3)
        // Named, the new member's own Add is committed.
        let dave2 = try TestClient("dave", suite).keyPackage()
        let again = try dave2.newMemberAddProposal(for: alice.publicGroup)
        guard case .proposal(let reference, _) = try alice.process(again) else {
            Issue.record("not a proposal")
            return
        }
        let named = try alice.commit(CommitOptions(onlyPendingReferences: [reference]))
        _ = try alice.process(named.message)
        #expect(alice.members.count == 4 && named.welcome != nil)
    }

    @Test func anExternalSenderTheApplicationRefusesCannotPropose() throws {
        let ds = suite.generateSignatureKeyPair()
        var (alice, bob, charlie) = try group(
            externalSender: ds,
            policy: GroupPolicy(credentialValidator: NoDS())
        )
        let removal = try alice.publicGroup.externalProposal(.remove(removed: charlie.ownLeaf), signer: ds)
        // Alice's policy accepts "ds"; bob's and charlie's refuse it, on every use.
        _ = try alice.process(removal)
        let error = #expect(throws: MLSError.self) { try bob.process(removal) }
        #expect(error?.kind == "rejectedByPolicy")
        #expect(bob.pendingProposals.isEmpty)
        #expect(throws: MLSError.self) { try charlie.process(removal) }
        // A member whose policy refuses "ds" cannot be made to list it either.
        var writer = TLSWriter()
        try writer.writeVector([
            ExternalSender(signatureKey: ds.publicKey, credential: .basic(identity: Array("ds".utf8)))
        ])
        let listing = try alice.propose(
            .groupContextExtensions([Extension(extensionType: .externalSenders, extensionData: writer.bytes)])
        )
        #expect(throws: MLSError.self) { try bob.process(listing) }
        #expect(bob.pendingProposals.isEmpty)
    }

    @Test func aPSKNoMemberHoldsIsRefusedOnArrivalAndCommitsGoOn() throws {
        var alice = try TestClient("alice", suite).createGroup()
        var others: [Group] = []
        var bob = try add([TestClient("bob", suite)], to: &alice, others: &others)[0]
        let unknown = PreSharedKeyID.fresh(.external(pskID: Array("nobody has this".utf8)), suite: suite)
        let proposal = try bob.propose(.preSharedKey(unknown))
        #expect(throws: MLSError.missingPSK) { try alice.process(proposal) }
        #expect(alice.pendingProposals.isEmpty)
        // Alice's next commit is not poisoned by it.
        let output = try alice.commit()
        _ = try alice.process(output.message)
        _ = try bob.process(output.message)
        #expect(alice.epochAuthenticator == bob.epochAuthenticator)
    }

    @Test func aReInitOrBranchPSKIsRefusedAsAStandaloneProposal() throws {
        var alice = try TestClient("alice", suite).createGroup()
        var others: [Group] = []
        var bob = try add([TestClient("bob", suite)], to: &alice, others: &others)[0]
        let reinit = PreSharedKeyID.fresh(
            .resumption(usage: .reinit, groupID: Array("old".utf8), epoch: 3),
            suite: suite
        )
        let proposal = try bob.propose(.preSharedKey(reinit))
        let error = #expect(throws: MLSError.self) { try alice.process(proposal) }
        #expect(error?.kind == "invalidProposal")
        #expect(alice.pendingProposals.isEmpty)
    }

    @Test func aWelcomesPSKListIsCheckedLikeACommits() throws {
        let id = PreSharedKeyID.fresh(.external(pskID: Array("shared".utf8)), suite: suite)
        let policy = GroupPolicy(externalPSKs: [Array("shared".utf8): Array(repeating: 7, count: 32)])
        #expect(try Group.joinPSKSecret([id], suite, policy) != nil)
        let twice = #expect(throws: MLSError.self) { try Group.joinPSKSecret([id, id], suite, policy) }
        #expect(twice?.kind == "invalidWelcome")
        var short = id
        short.pskNonce = [1, 2, 3]
        let nonce = #expect(throws: MLSError.self) { try Group.joinPSKSecret([short], suite, policy) }
        #expect(nonce?.kind == "invalidWelcome")
    }
}
