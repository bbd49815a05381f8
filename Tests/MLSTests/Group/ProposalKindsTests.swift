import Testing

@testable import MLS

/// Standalone Update proposals (RFC 9420 §12.1.2), a member's own proposals
/// committed by someone else, and PreSharedKey proposals (§8.4, §12.1.4),
/// external and resumption, in a Commit and in the Welcome of a joiner.
@Suite struct ProposalKindsTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// Alice and bob in one group, handshakes as PublicMessage or PrivateMessage.
    func pair(publicHandshakes: Bool = true, psks: [[UInt8]: [UInt8]] = [:]) throws -> (alice: Group, bob: Group) {
        let policy = GroupPolicy(handshakeAsPublicMessage: publicHandshakes, externalPSKs: psks)
        var alice = try TestClient("alice", suite).createGroup(policy: policy)
        let bob = try TestClient("bob", suite).keyPackage()
        let output = try alice.addMembers([bob.keyPackage])
        _ = try alice.process(output.message)
        let welcome = try #require(output.welcome.flatMap { if case .welcome(let w) = $0 { w } else { nil } })
        return (alice, try Group.join(welcome: welcome, keyPackage: bob, policy: policy))
    }

    /// Both members read each other's messages in the epoch they share.
    func expectInSync(_ alice: inout Group, _ bob: inout Group) throws {
        #expect(alice.epoch == bob.epoch && alice.epochAuthenticator == bob.epochAuthenticator)
        guard case .application(let message) = try bob.process(alice.encrypt(Array("hi".utf8))) else {
            Issue.record("not an application message")
            return
        }
        #expect(message.data == Array("hi".utf8))
        guard case .application = try alice.process(bob.encrypt(Array("ho".utf8))) else {
            Issue.record("not an application message")
            return
        }
    }

    @Test(arguments: [true, false])
    func anUpdateCommittedByAnotherMemberGivesTheProposerItsNewLeafKey(publicHandshakes: Bool) throws {
        var (alice, bob) = try pair(publicHandshakes: publicHandshakes)
        let oldKey = try #require(bob.tree.leafNode(at: bob.ownLeaf)).encryptionKey
        let update = try bob.proposeUpdate()
        _ = try alice.process(update)
        let commit = try alice.commit()
        _ = try alice.process(commit.message)
        _ = try bob.process(commit.message)
        let newKey = try #require(bob.tree.leafNode(at: bob.ownLeaf)).encryptionKey
        #expect(newKey != oldKey && alice.tree.leafNode(at: bob.ownLeaf)?.encryptionKey == newKey)
        try expectInSync(&alice, &bob)
        // The next path is encrypted to bob's new leaf key: only the key made for the Update opens it.
        let next = try alice.commit(.selfUpdate)
        _ = try alice.process(next.message)
        _ = try bob.process(next.message)
        try expectInSync(&alice, &bob)
    }

    @Test func aCommitOfAnUpdateThisMemberNeverMadeIsRefused() throws {
        var (alice, bob) = try pair()
        var bobElsewhere = bob
        _ = try alice.process(try bobElsewhere.proposeUpdate())
        let commit = try alice.commit()
        // This copy of bob has no private key for the Update it never proposed.
        let error = #expect(throws: MLSError.self) { try bob.process(commit.message) }
        #expect(error?.kind == "invalidCommit")
        #expect(bob.epoch == 1)
    }

    @Test func aProposalSentAsPrivateMessageIsKnownToItsSenderWhenCommittedByReference() throws {
        var (alice, bob) = try pair(publicHandshakes: false)
        let charlie = try TestClient("charlie", suite).keyPackage()
        let proposal = try bob.propose(.add(charlie.keyPackage))
        #expect(bob.pendingProposals.count == 1)
        _ = try alice.process(proposal)
        let commit = try alice.commit()
        guard case .commit(let summary) = try bob.process(commit.message) else {
            Issue.record("not a commit")
            return
        }
        #expect(summary.added.count == 1 && bob.members.count == 3 && bob.pendingProposals.isEmpty)
        _ = try alice.process(commit.message)
        try expectInSync(&alice, &bob)
    }

    @Test func externalAndResumptionPSKsEnterTheNewEpochForMembersAndTheJoiner() throws {
        let psk: [[UInt8]: [UInt8]] = [Array("psk".utf8): Array(repeating: 7, count: 32)]
        var (alice, bob) = try pair(psks: psk)
        let external = PreSharedKeyID.fresh(.external(pskID: Array("psk".utf8)), suite: suite)
        let resumption = PreSharedKeyID.fresh(
            .resumption(usage: .application, groupID: alice.groupID, epoch: 1),
            suite: suite
        )
        let commit = try alice.commit(CommitOptions(preSharedKeys: [external, resumption]))
        _ = try alice.process(commit.message)
        _ = try bob.process(commit.message)
        try expectInSync(&alice, &bob)

        // A joiner can know an external PSK only (§8.6: resumption PSKs stay in the group).
        let charlie = try TestClient("charlie", suite).keyPackage()
        let fresh = PreSharedKeyID.fresh(.external(pskID: Array("psk".utf8)), suite: suite)
        let add = try alice.commit(CommitOptions(add: [charlie.keyPackage], preSharedKeys: [fresh]))
        _ = try alice.process(add.message)
        _ = try bob.process(add.message)
        let welcome = try #require(add.welcome.flatMap { if case .welcome(let w) = $0 { w } else { nil } })
        // The Welcome names the external PSK: a joiner without it cannot read the GroupInfo.
        #expect(
            #expect(throws: MLSError.self) { try Group.join(welcome: welcome, keyPackage: charlie) }?.kind
                == "missingPSK"
        )
        var joined = try Group.join(welcome: welcome, keyPackage: charlie, policy: GroupPolicy(externalPSKs: psk))
        #expect(joined.epochAuthenticator == alice.epochAuthenticator)
        try expectInSync(&alice, &joined)
    }

    @Test func aMemberWithoutTheExternalPSKCannotFollowTheCommitAndStaysInItsEpoch() throws {
        var (alice, bob) = try pair()
        alice.policy.externalPSKs[Array("psk".utf8)] = Array(repeating: 1, count: 32)
        let id = PreSharedKeyID.fresh(.external(pskID: Array("psk".utf8)), suite: suite)
        let commit = try alice.commit(CommitOptions(preSharedKeys: [id]))
        let error = #expect(throws: MLSError.self) { try bob.process(commit.message) }
        #expect(error?.kind == "missingPSK")
        #expect(bob.epoch == 1)
        // A PSK that differs in value gives another key schedule: the confirmation tag does not match.
        bob.policy.externalPSKs[Array("psk".utf8)] = Array(repeating: 2, count: 32)
        #expect(#expect(throws: MLSError.self) { try bob.process(commit.message) }?.kind == "invalidCommit")
    }

    @Test func anExternalJoinerInjectsAnExternalPSKThatEveryMemberMustHold() throws {
        let psk: [[UInt8]: [UInt8]] = [Array("psk".utf8): Array(repeating: 9, count: 32)]
        var (alice, bob) = try pair(psks: psk)
        bob.policy.externalPSKs = [:]
        let charlie = TestClient("charlie", suite)
        var (joined, commit) = try Group.joinExternally(
            groupInfo: alice.groupInfo(includeExternalPub: true),
            credential: charlie.credential,
            signatureKeys: charlie.signatureKeys,
            preSharedKeys: [.fresh(.external(pskID: Array("psk".utf8)), suite: suite)],
            policy: GroupPolicy(externalPSKs: psk)
        )
        _ = try alice.process(commit)
        try expectInSync(&alice, &joined)
        #expect(#expect(throws: MLSError.self) { try bob.process(commit) }?.kind == "missingPSK")
        #expect(bob.epoch == 1)
    }
}
