import Testing

@testable import MLS

/// Reinitialisation (RFC 9420 §11.2, §12.1.5): a ReInit Commit closes the group,
/// and its successor, started with the reinit resumption PSK (§8.6), is joined
/// by Welcome; joiners check the PSK, the parameters and the members (§12.4.3.1).
@Suite struct ReInitTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let xWing = try! CipherSuite.mls256XWingChaCha20Poly1305SHA256Ed25519.provider()

    /// alice, bob and charlie with `reInit` proposed by alice and committed by bob by reference.
    func closedGroup(_ reInit: ReInit) throws -> (alice: Group, bob: Group, charlie: Group) {
        var (alice, bob, charlie, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        let proposal = try alice.propose(.reInit(reInit))
        guard case .proposal(let reference, _) = try bob.process(proposal) else { throw MLSError.invalidMessage("") }
        _ = try charlie.process(proposal)
        let output = try bob.commit(CommitOptions(onlyPendingReferences: [reference]))
        #expect(output.summary.reInit == reInit)
        for index in [0, 1, 2] {
            var member = [alice, bob, charlie][index]
            _ = try member.process(output.message)
            #expect(!member.isActive && member.reInit == reInit)
            if index == 0 { alice = member } else if index == 1 { bob = member } else { charlie = member }
        }
        return (alice, bob, charlie)
    }

    func bundle(_ name: String, _ suite: CipherSuiteProvider) throws -> KeyPackageBundle {
        try TestClient(name, suite).keyPackage()
    }

    @Test func aGroupMovesToThePostQuantumSuiteAndKeepsTalking() throws {
        let reInit = ReInit(groupID: Array("group-pq".utf8), cipherSuite: xWing.suite, extensions: [])
        let (alice, bob, charlie) = try closedGroup(reInit)
        #expect(alice.epochAuthenticator == bob.epochAuthenticator)
        let (bobsBundle, charliesBundle) = (try bundle("bob", xWing), try bundle("charlie", xWing))
        var successor = try alice.createSuccessor(
            signatureKeys: xWing.generateSignatureKeyPair(),
            keyPackages: [bobsBundle.keyPackage, charliesBundle.keyPackage]
        )
        let welcome = try #require(successor.welcome)
        var newBob = try bob.joinSuccessor(welcome: welcome, keyPackage: bobsBundle)
        let newCharlie = try charlie.joinSuccessor(welcome: welcome, keyPackage: charliesBundle)
        #expect(successor.group.suite.suite == xWing.suite && successor.group.epoch == 1)
        #expect(newBob.epochAuthenticator == successor.group.epochAuthenticator)
        #expect(newCharlie.epochAuthenticator == successor.group.epochAuthenticator)
        #expect(newBob.groupID == Array("group-pq".utf8) && newBob.isActive && newBob.reInit == nil)
        let text = try newBob.process(successor.group.encrypt(Array("after".utf8))).applicationText
        #expect(text == "after")
        // The old group is closed for good.
        var old = alice
        #expect(throws: MLSError.groupInactive) { try old.encrypt(Array("x".utf8)) }
    }

    /// Suite 7 hashes with SHA-384: the reinit PSK's nonce is Nh bytes of the new suite (§8.4).
    @Test func theSuccessorMayKeepTheGroupIDAndChangeTheHash() throws {
        let p384 = try CipherSuite.mls256DHKEMP384AES256GCMSHA384P384.provider()
        let reInit = ReInit(groupID: Array("group".utf8), cipherSuite: p384.suite, extensions: [])
        let (alice, bob, charlie) = try closedGroup(reInit)
        let (bobsBundle, charliesBundle) = (try bundle("bob", p384), try bundle("charlie", p384))
        let successor = try alice.createSuccessor(
            signatureKeys: p384.generateSignatureKeyPair(),
            keyPackages: [bobsBundle.keyPackage, charliesBundle.keyPackage],
            forcePath: true,
            ratchetTreeInWelcome: false
        )
        let welcome = try #require(successor.welcome)
        let joined = try bob.joinSuccessor(welcome: welcome, keyPackage: bobsBundle, ratchetTree: successor.group.tree)
        #expect(joined.epochAuthenticator == successor.group.epochAuthenticator)
        _ = charlie
    }

    @Test func theCreatorMustBringEveryOldMemberAndNoOneElse() throws {
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite, extensions: [])
        let (alice, _, _) = try closedGroup(reInit)
        let missing = #expect(throws: MLSError.self) {
            try alice.createSuccessor(
                signatureKeys: suite.generateSignatureKeyPair(),
                keyPackages: [try bundle("bob", suite).keyPackage]
            )
        }
        #expect(missing?.kind == "invalidCommit")
        let extra = #expect(throws: MLSError.self) {
            try alice.createSuccessor(
                signatureKeys: suite.generateSignatureKeyPair(),
                keyPackages: ["bob", "charlie", "mallory"].map { try bundle($0, suite).keyPackage }
            )
        }
        #expect(extra?.kind == "invalidCommit")
    }

    /// A hostile welcomer's new group, built by hand: `names` added with
    /// `psk` (when given) under `groupID` and `extensions`.
    func hostileSuccessor(
        groupID: String,
        extensions: [Extension] = [],
        bundles: [KeyPackageBundle],
        psk: (id: PreSharedKeyID, psk: [UInt8])?
    ) throws -> Welcome {
        var policy = GroupPolicy()
        if let psk { policy.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk }
        var group = try TestClient("alice", suite).createGroup(groupID, policy: policy, extensions: extensions)
        let output = try group.commit(
            CommitOptions(add: bundles.map(\.keyPackage), preSharedKeys: psk.map { [$0.id] } ?? [])
        )
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return welcome
    }

    @Test func aJoinerRefusesASuccessorThatIsNotTheReInits() throws {
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite, extensions: [])
        let (alice, bob, _) = try closedGroup(reInit)
        let psk = try alice.reInitPSK()
        let charlie = try bundle("charlie", suite)
        let attempts: [(String, [Extension], [String], Bool)] = [
            ("next", [], ["bob", "charlie", "mallory"], true),  // an outsider smuggled in
            ("next", [], ["bob"], true),  // charlie dropped
            ("other", [], ["bob", "charlie"], true),  // another group ID
            ("next", [Extension(extensionType: .externalSenders, extensionData: [0])], ["bob", "charlie"], true),
            ("next", [], ["bob", "charlie"], false),  // no reinit PSK: not a continuation
        ]
        for (groupID, extensions, names, withPSK) in attempts {
            let bobsBundle = try bundle("bob", suite)
            let bundles = try names.map { $0 == "bob" ? bobsBundle : $0 == "charlie" ? charlie : try bundle($0, suite) }
            let welcome = try hostileSuccessor(
                groupID: groupID,
                extensions: extensions,
                bundles: bundles,
                psk: withPSK ? psk : nil
            )
            let error = #expect(throws: MLSError.self) {
                try bob.joinSuccessor(welcome: welcome, keyPackage: bobsBundle)
            }
            #expect(error?.kind == "invalidWelcome", "\(groupID) \(names) psk: \(withPSK)")
        }
    }

    @Test func anOpenGroupHasNoSuccessor() throws {
        let (alice, _, _, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        #expect(throws: MLSError.notReinitialized) { try alice.reInitPSK() }
        #expect(throws: MLSError.notReinitialized) {
            try alice.createSuccessor(signatureKeys: suite.generateSignatureKeyPair(), keyPackages: [])
        }
    }

    @Test func aReceivedReInitIsNeverSweptIntoAnOrdinaryCommit() throws {
        var (alice, bob, _, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite)
        _ = try bob.process(alice.propose(.reInit(reInit)))
        let output = try bob.commit()
        _ = try bob.process(output.message)
        #expect(bob.isActive && output.summary.reInit == nil)
    }

    @Test func aReInitMustBeCommittedAlone() throws {
        var (alice, _, _, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite)
        let error = #expect(throws: MLSError.self) {
            try alice.commit(CommitOptions(add: [try bundle("dave", suite).keyPackage], reInit: reInit))
        }
        #expect(error?.kind == "invalidProposal")
    }

    /// Received proposals wait: a ReInit by value is committed alone (§12.2) even when
    /// other proposals are pending, which would otherwise make the commit invalid.
    @Test func aReInitByValueLeavesPendingProposalsOut() throws {
        var (alice, bob, _, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        _ = try alice.process(bob.proposeUpdate())
        #expect(alice.pendingProposals.count == 1)
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite)
        let output = try alice.commit(CommitOptions(reInit: reInit))
        _ = try bob.process(output.message)
        #expect(bob.reInit == reInit && output.summary.updated.isEmpty)
    }

    @Test func aCommitterRefusesAReInitToASuiteItLacks() throws {
        var (alice, _, _, _) = try TestClient.threeMemberGroup(suite, policy: GroupPolicy())
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: .mls256DHKEMX448AES256GCMSHA512Ed448)
        #expect(throws: MLSError.unsupportedCipherSuite(0x0004)) { try alice.commit(CommitOptions(reInit: reInit)) }
        #expect(alice.isActive && !alice.hasPendingCommit)
    }

    @Test func aStoredClosedGroupStillJoinsItsSuccessor() throws {
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: suite.suite, extensions: [])
        let (alice, bob, charlie) = try closedGroup(reInit)
        let restored = try Group(serialized: bob.serialized())
        #expect(restored.reInit == reInit && !restored.isActive)
        let (bobsBundle, charliesBundle) = (try bundle("bob", suite), try bundle("charlie", suite))
        let successor = try alice.createSuccessor(
            signatureKeys: suite.generateSignatureKeyPair(),
            keyPackages: [bobsBundle.keyPackage, charliesBundle.keyPackage]
        )
        let joined = try restored.joinSuccessor(welcome: #require(successor.welcome), keyPackage: bobsBundle)
        #expect(joined.epochAuthenticator == successor.group.epochAuthenticator)
        _ = charlie
    }

    /// A closed group records which leaf committed the ReInit (bob's, leaf 1, committing alice's
    /// proposal), also across storage; joining a successor names the leaf that signed its
    /// GroupInfo. RFC 9420 §11.2 lets any member create the successor, so both alice's and bob's
    /// are joined here; an application compares the creator with the committer (Parley does).
    @Test func theCommitterIsRecordedAndJoiningNamesTheSuccessorsCreator() throws {
        let reInit = ReInit(groupID: Array("next".utf8), cipherSuite: xWing.suite, extensions: [])
        let (alice, bob, charlie) = try closedGroup(reInit)
        for member in [alice, bob, charlie] {
            #expect(member.reInitCommitter == LeafIndex(1))
            #expect(try Group(serialized: member.serialized()).reInitCommitter == LeafIndex(1))
        }
        let committerLeaf = try #require(charlie.reInitCommitter)
        let committer = try #require(charlie.tree.leafNode(at: committerLeaf))
        let charliesBundle = try bundle("charlie", xWing)
        let byBob = try bob.createSuccessor(
            signatureKeys: xWing.generateSignatureKeyPair(),
            keyPackages: [try bundle("alice", xWing).keyPackage, charliesBundle.keyPackage]
        )
        let joined = try charlie.joinSuccessorNamingCreator(
            welcome: #require(byBob.welcome),
            keyPackage: charliesBundle
        )
        #expect(joined.creator == byBob.group.ownLeaf)
        #expect(joined.group.tree.leafNode(at: joined.creator)?.credential == committer.credential)

        let byAlice = try alice.createSuccessor(
            signatureKeys: xWing.generateSignatureKeyPair(),
            keyPackages: [try bundle("bob", xWing).keyPackage, charliesBundle.keyPackage]
        )
        let other = try charlie.joinSuccessorNamingCreator(
            welcome: #require(byAlice.welcome),
            keyPackage: charliesBundle
        )
        #expect(other.group.tree.leafNode(at: other.creator)?.credential == .basic(identity: Array("alice".utf8)))
        #expect(other.group.tree.leafNode(at: other.creator)?.credential != committer.credential)
        // An open group has no ReInit and no committer.
        #expect(joined.group.reInitCommitter == nil && other.group.reInitCommitter == nil)
    }
}
