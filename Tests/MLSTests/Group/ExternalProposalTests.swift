import Testing

@testable import MLS

/// Proposals from outside the group (RFC 9420 §12.1.8): an external sender listed
/// in `external_senders` (§12.1.8.1), and a new member proposing its own Add.
@Suite struct ExternalProposalTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// alice, bob and charlie in a group whose `external_senders` lists `senders`.
    func group(externalSenders senders: [SignatureKeyPair]) throws -> (alice: Group, bob: Group, charlie: Group) {
        var writer = TLSWriter()
        try writer.writeVector(
            senders.map { ExternalSender(signatureKey: $0.publicKey, credential: .basic(identity: Array("ds".utf8))) }
        )
        var alice = try TestClient("alice", suite).createGroup(
            extensions: [Extension(extensionType: .externalSenders, extensionData: writer.bytes)]
        )
        var others: [Group] = []
        let joined = try add([TestClient("bob", suite), TestClient("charlie", suite)], to: &alice, others: &others)
        return (alice, joined[0], joined[1])
    }

    @Test func anExternalSendersRemoveIsCommittedByAMember() throws {
        let ds = suite.generateSignatureKeyPair()
        var (alice, bob, charlie) = try group(externalSenders: [suite.generateSignatureKeyPair(), ds])
        let proposal = try alice.publicGroup.externalProposal(.remove(removed: charlie.ownLeaf), signer: ds)
        guard case .proposal(let reference, let cached) = try alice.process(proposal) else {
            Issue.record("not a proposal")
            return
        }
        #expect(cached.sender == .external(senderIndex: 1))
        _ = try bob.process(proposal)
        _ = try charlie.process(proposal)
        let output = try alice.commit(CommitOptions(onlyPendingReferences: [reference]))
        _ = try alice.process(output.message)
        let summary = try bob.process(output.message).commitSummary
        #expect(summary?.removed.map(\.index) == [charlie.ownLeaf])
        #expect(try charlie.process(output.message).commitSummary?.removedSelf == true)
        #expect(alice.epochAuthenticator == bob.epochAuthenticator && alice.members.count == 2)
    }

    @Test func aSignerOutsideTheExtensionCannotPropose() throws {
        let ds = suite.generateSignatureKeyPair()
        let mallory = suite.generateSignatureKeyPair()
        var (alice, bob, _) = try group(externalSenders: [ds])
        #expect(throws: MLSError.notAnExternalSender) {
            try alice.publicGroup.externalProposal(.remove(removed: bob.ownLeaf), signer: mallory)
        }
        // Mallory claims to be sender 0, the listed one: the signature gives her away.
        let forged = try alice.publicGroup.outsiderProposal(
            .remove(removed: bob.ownLeaf),
            sender: .external(senderIndex: 0),
            signer: mallory.privateKey,
            []
        )
        #expect(throws: MLSError.invalidSignature) { try bob.process(forged) }
        // An index past the list is refused, in a group without the extension too.
        let pastTheList = try alice.publicGroup.outsiderProposal(
            .remove(removed: bob.ownLeaf),
            sender: .external(senderIndex: 1),
            signer: ds.privateKey,
            []
        )
        #expect(throws: MLSError.notAnExternalSender) { try bob.process(pastTheList) }
        #expect(alice.pendingProposals.isEmpty && bob.pendingProposals.isEmpty)
        _ = try alice.process(try alice.commit().message)
        #expect(alice.members.count == 3)
    }

    @Test func anExternalSenderMayNotSendAnUpdate() throws {
        let ds = suite.generateSignatureKeyPair()
        let made = try group(externalSenders: [ds])
        let alice = made.alice
        var bob = made.bob
        let leaf = try #require(alice.tree.leafNode(at: alice.ownLeaf))
        #expect(throws: MLSError.self) { try alice.publicGroup.externalProposal(.update(leaf), signer: ds) }
        let smuggled = try alice.publicGroup.outsiderProposal(
            .update(leaf),
            sender: .external(senderIndex: 0),
            signer: ds.privateKey,
            []
        )
        let error = #expect(throws: MLSError.self) { try bob.process(smuggled) }
        #expect(error?.kind == "invalidMessage")
    }

    @Test func aNewMemberProposesItsOwnAddAndJoins() throws {
        var (alice, bob, _) = try group(externalSenders: [])
        let dave = try TestClient("dave", suite).keyPackage()
        let proposal = try dave.newMemberAddProposal(for: alice.publicGroup)
        guard case .proposal(let reference, let cached) = try alice.process(proposal) else {
            Issue.record("not a proposal")
            return
        }
        #expect(cached.sender == .newMemberProposal)
        _ = try bob.process(proposal)
        let output = try alice.commit(CommitOptions(onlyPendingReferences: [reference]))
        _ = try alice.process(output.message)
        _ = try bob.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else {
            Issue.record("no Welcome")
            return
        }
        let joined = try Group.join(welcome: welcome, keyPackage: dave)
        #expect(joined.epochAuthenticator == alice.epochAuthenticator && bob.members.count == 4)
    }

    @Test func aNewMemberCannotProposeAddingSomeoneElse() throws {
        var (alice, _, _) = try group(externalSenders: [])
        let victim = try TestClient("victim", suite).keyPackage()
        let mallory = try TestClient("mallory", suite).keyPackage()
        let forged = try alice.publicGroup.outsiderProposal(
            .add(victim.keyPackage),
            sender: .newMemberProposal,
            signer: mallory.signaturePrivateKey,
            []
        )
        #expect(throws: MLSError.invalidSignature) { try alice.process(forged) }
        let notAnAdd = try alice.publicGroup.outsiderProposal(
            .remove(removed: LeafIndex(1)),
            sender: .newMemberProposal,
            signer: mallory.signaturePrivateKey,
            []
        )
        let error = #expect(throws: MLSError.self) { try alice.process(notAnAdd) }
        #expect(error?.kind == "invalidMessage")
    }

    /// A member cannot leave the group with an `external_senders` list no one can decode.
    @Test func aMalformedExternalSendersListIsRefused() throws {
        var (alice, bob, _) = try group(externalSenders: [])
        let malformed = [Extension(extensionType: .externalSenders, extensionData: [5, 1, 2])]
        #expect(throws: MLS.DecodingError.self) { try alice.commit(CommitOptions(groupContextExtensions: malformed)) }
        #expect(throws: MLS.DecodingError.self) { try bob.process(alice.propose(.groupContextExtensions(malformed))) }
        #expect(bob.pendingProposals.isEmpty && !alice.hasPendingCommit)
        _ = try alice.process(try alice.commit().message)
        #expect(alice.epoch == 2)
    }

    @Test func anExternalReInitClosesTheGroup() throws {
        let ds = suite.generateSignatureKeyPair()
        var (alice, bob, _) = try group(externalSenders: [ds])
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite)
        let proposal = try alice.publicGroup.externalProposal(.reInit(reInit), signer: ds)
        guard case .proposal(let reference, _) = try bob.process(proposal) else {
            Issue.record("not a proposal")
            return
        }
        _ = try alice.process(proposal)
        let output = try bob.commit(CommitOptions(onlyPendingReferences: [reference]))
        _ = try bob.process(output.message)
        _ = try alice.process(output.message)
        #expect(alice.reInit == reInit && !alice.isActive && bob.reInit == reInit)
    }
}
