import Testing

@testable import MLS

/// Whole groups of real members: the API an application uses.
@Suite struct GroupTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    /// alice, bob and charlie in one group at epoch 1.
    func threeMembers(policy: GroupPolicy = GroupPolicy()) throws -> (alice: Group, bob: Group, charlie: Group) {
        var alice = try TestClient("alice", suite).createGroup(policy: policy)
        var nobody: [Group] = []
        let joined = try add(
            [TestClient("bob", suite), TestClient("charlie", suite)],
            to: &alice,
            others: &nobody,
            policy: policy
        )
        return (alice, joined[0], joined[1])
    }

    @Test func membersTalkAndAgreeOnTheEpoch() throws {
        var (alice, bob, charlie) = try threeMembers()
        #expect(alice.epoch == 1 && bob.epoch == 1 && charlie.epoch == 1)
        #expect(
            alice.epochAuthenticator == bob.epochAuthenticator && bob.epochAuthenticator == charlie.epochAuthenticator
        )
        #expect(
            try alice.export(label: "parley", context: [1], length: 32)
                == bob.export(label: "parley", context: [1], length: 32)
        )
        #expect(
            bob.members.map(\.credential) == [
                .basic(identity: text("alice")), .basic(identity: text("bob")), .basic(identity: text("charlie")),
            ]
        )

        let hello = try alice.encrypt(text("hello"), authenticatedData: [9])
        let fromBob = try bob.process(hello)
        #expect(fromBob.applicationText == "hello")
        if case .application(let message) = fromBob {
            #expect(message.sender == alice.ownLeaf)
            #expect(message.credential == .basic(identity: text("alice")))
            #expect(message.authenticatedData == [9])
        }
        #expect(try charlie.process(hello).applicationText == "hello")
        #expect(try alice.process(bob.encrypt(text("hi alice"))).applicationText == "hi alice")
        // The sender cannot read its own ciphertext back: its key is gone.
        #expect(throws: MLSError.ownMessage) { try alice.process(hello) }
    }

    @Test func aRemovedMemberCannotReadLaterMessages() throws {
        var (alice, bob, charlie) = try threeMembers()
        let removal = try alice.removeMembers([charlie.ownLeaf])
        #expect(alice.epoch == 1)  // nothing changes until the echo (RFC 9420 §14)
        #expect(try alice.process(removal.message).commitSummary?.isOwnCommit == true)
        #expect(alice.epoch == 2)
        #expect(
            try bob.process(removal.message).commitSummary?.removed.map(\.credential) == [
                .basic(identity: text("charlie"))
            ]
        )
        let charlieSees = try #require(try charlie.process(removal.message).commitSummary)
        #expect(charlieSees.removedSelf)
        #expect(!charlie.isActive)

        let secret = try alice.encrypt(text("charlie cant see this"))
        #expect(try bob.process(secret).applicationText == "charlie cant see this")
        #expect(throws: MLSError.self) { try charlie.process(secret) }
        #expect(throws: MLSError.groupInactive) { try charlie.encrypt(text("still here?")) }
        #expect(alice.members.count == 2)
    }

    @Test func selfUpdateRotatesKeysForEveryone() throws {
        var (alice, bob, charlie) = try threeMembers()
        let before = bob.tree.leafNode(at: bob.ownLeaf)!.encryptionKey
        let update = try bob.selfUpdate()
        _ = try bob.process(update.message)
        _ = try alice.process(update.message)
        _ = try charlie.process(update.message)
        #expect(bob.tree.leafNode(at: bob.ownLeaf)!.encryptionKey != before)
        #expect(
            alice.epochAuthenticator == bob.epochAuthenticator && charlie.epochAuthenticator == bob.epochAuthenticator
        )
        #expect(try charlie.process(alice.encrypt(text("after update"))).applicationText == "after update")
    }

    @Test func aMemberLeavesByProposalThatAnotherCommits() throws {
        var (alice, bob, charlie) = try threeMembers()
        let leave = try bob.proposeLeave()
        for index in 0..<2 {
            var member = index == 0 ? alice : charlie
            guard case .proposal = try member.process(leave) else {
                Issue.record("not a proposal")
                return
            }
            if index == 0 { alice = member } else { charlie = member }
        }
        _ = try bob.process(leave)
        let commit = try alice.commit()
        _ = try alice.process(commit.message)
        _ = try charlie.process(commit.message)
        #expect(try bob.process(commit.message).commitSummary?.removedSelf == true)
        #expect(
            alice.members.map(\.credential) == [.basic(identity: text("alice")), .basic(identity: text("charlie"))]
        )
        #expect(alice.epochAuthenticator == charlie.epochAuthenticator)
    }

    @Test func outOfOrderMessagesDecryptOnceAndReplaysFail() throws {
        var (alice, bob, _) = try threeMembers()
        let messages = try (0..<4).map { try alice.encrypt(text("m\($0)")) }
        #expect(try bob.process(messages[3]).applicationText == "m3")
        #expect(try bob.process(messages[0]).applicationText == "m0")
        #expect(try bob.process(messages[2]).applicationText == "m2")
        #expect(throws: MLSError.generationAlreadyUsed(0)) { try bob.process(messages[0]) }
        #expect(try bob.process(messages[1]).applicationText == "m1")
    }

    @Test func lateMessagesFromThePreviousEpochStillDecrypt() throws {
        var (alice, bob, charlie) = try threeMembers()
        let late = try alice.encrypt(text("sent in epoch 1"))
        let update = try charlie.selfUpdate()
        for index in 0..<3 {
            switch index {
            case 0: _ = try alice.process(update.message)
            case 1: _ = try bob.process(update.message)
            default: _ = try charlie.process(update.message)
            }
        }
        #expect(bob.epoch == 2)
        #expect(try bob.process(late).applicationText == "sent in epoch 1")
    }

    @Test func ofTwoConcurrentCommitsTheFirstWinsAndTheOtherIsRebuilt() throws {
        var (alice, bob, charlie) = try threeMembers()
        let fromAlice = try alice.selfUpdate()
        let fromBob = try bob.selfUpdate()
        // The delivery service accepts alice's; everyone processes it, including bob.
        _ = try alice.process(fromAlice.message)
        _ = try bob.process(fromAlice.message)
        _ = try charlie.process(fromAlice.message)
        #expect(!bob.hasPendingCommit)
        // Bob's stale commit is now for an old epoch.
        #expect(throws: MLSError.wrongEpoch(message: 1, group: 2)) { try charlie.process(fromBob.message) }
        let retried = try bob.selfUpdate()
        _ = try bob.process(retried.message)
        _ = try alice.process(retried.message)
        _ = try charlie.process(retried.message)
        #expect(
            alice.epoch == 3 && alice.epochAuthenticator == bob.epochAuthenticator
                && bob.epochAuthenticator == charlie.epochAuthenticator
        )
    }

    @Test func tamperedMessagesAreRejectedAndChangeNothing() throws {
        var (alice, bob, _) = try threeMembers()
        let commit = try alice.selfUpdate()
        guard case .publicMessage(var forged) = commit.message else {
            Issue.record("expected a PublicMessage")
            return
        }
        forged.auth.signature[0] ^= 1
        let epochBefore = bob.epoch
        #expect(throws: MLSError.self) { try bob.process(.publicMessage(forged)) }
        #expect(bob.epoch == epochBefore)
        _ = try bob.process(commit.message)

        guard case .privateMessage(var garbled) = try alice.encrypt(text("x")) else {
            Issue.record("expected a PrivateMessage")
            return
        }
        _ = try alice.process(commit.message)
        garbled = try { () throws -> PrivateMessage in
            guard case .privateMessage(var message) = try alice.encrypt(text("y")) else {
                throw MLSError.invalidMessage("")
            }
            message.ciphertext[message.ciphertext.count - 1] ^= 1
            return message
        }()
        #expect(throws: MLSError.decryptionFailed) { try bob.process(.privateMessage(garbled)) }
        #expect(throws: MLSError.self) { try bob.process(.keyPackage(TestClient("x", suite).keyPackage().keyPackage)) }
    }

    @Test func aWelcomeWithoutTheTreeNeedsItSuppliedSeparately() throws {
        var alice = try TestClient("alice", suite).createGroup()
        let bob = try TestClient("bob", suite).keyPackage()
        let output = try alice.commit(CommitOptions(add: [bob.keyPackage], ratchetTreeInWelcome: false))
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else {
            Issue.record("no Welcome")
            return
        }
        #expect(throws: MLSError.self) { try Group.join(welcome: welcome, keyPackage: bob) }
        var joined = try Group.join(welcome: welcome, keyPackage: bob, ratchetTree: alice.tree)
        #expect(
            try joined.process(alice.encrypt(text("tree by side channel"))).applicationText == "tree by side channel"
        )
        // A Welcome is useless to anyone else.
        #expect(throws: MLSError.self) {
            try Group.join(welcome: welcome, keyPackage: TestClient("eve", suite).keyPackage(), ratchetTree: alice.tree)
        }
    }

    @Test func externalJoinAddsTheJoinerForEveryone() throws {
        var (alice, bob, _) = try threeMembers()
        let info = try alice.groupInfo(includeExternalPub: true)
        let dave = TestClient("dave", suite)
        var (daveGroup, commit) = try Group.joinExternally(
            groupInfo: info,
            credential: dave.credential,
            signatureKeys: dave.signatureKeys
        )
        #expect(try alice.process(commit).commitSummary?.committer == .newMemberCommit)
        _ = try bob.process(commit)
        #expect(daveGroup.epochAuthenticator == alice.epochAuthenticator)
        #expect(try daveGroup.process(alice.encrypt(text("welcome dave"))).applicationText == "welcome dave")
        #expect(try bob.process(daveGroup.encrypt(text("thanks"))).applicationText == "thanks")
        #expect(throws: MLSError.self) {
            try Group.joinExternally(
                groupInfo: try alice.groupInfo(),
                credential: dave.credential,
                signatureKeys: dave.signatureKeys
            )
        }
    }

    @Test func stateSurvivesSerialisationIncludingAPendingCommit() throws {
        var (alice, bob, charlie) = try threeMembers()
        _ = try bob.process(alice.encrypt(text("before save")))
        let pending = try alice.selfUpdate()
        var restoredAlice = try Group(serialized: alice.serialized())
        var restoredBob = try Group(serialized: bob.serialized())
        #expect(restoredAlice.hasPendingCommit)
        #expect(try restoredAlice.process(pending.message).commitSummary?.isOwnCommit == true)
        _ = try restoredBob.process(pending.message)
        _ = try charlie.process(pending.message)
        #expect(restoredAlice.epochAuthenticator == restoredBob.epochAuthenticator)
        #expect(
            try restoredBob.process(restoredAlice.encrypt(text("after restore"))).applicationText == "after restore"
        )
        let commit = try restoredBob.removeMembers([charlie.ownLeaf])
        _ = try restoredBob.process(commit.message)
        _ = try restoredAlice.process(commit.message)
        #expect(restoredAlice.members.count == 2)
        #expect(throws: MLSError.self) { try Group(serialized: Array(try alice.serialized().dropLast())) }
        #expect(throws: MLSError.self) { try Group(serialized: [0, 9]) }
    }

    @Test func handshakesSentAsPrivateMessagesWorkIncludingTheOwnEcho() throws {
        var (alice, bob, charlie) = try threeMembers(policy: GroupPolicy(handshakeAsPublicMessage: false))
        let update = try alice.selfUpdate()
        guard case .privateMessage = update.message else {
            Issue.record("expected a PrivateMessage commit")
            return
        }
        // The echo is recognised by its bytes, also after a save and restore.
        var restored = try Group(serialized: alice.serialized(), policy: GroupPolicy(handshakeAsPublicMessage: false))
        #expect(try restored.process(update.message).commitSummary?.isOwnCommit == true)
        #expect(try alice.process(update.message).commitSummary?.isOwnCommit == true)
        _ = try bob.process(update.message)
        _ = try charlie.process(update.message)
        #expect(
            alice.epochAuthenticator == bob.epochAuthenticator
                && restored.epochAuthenticator == charlie.epochAuthenticator
        )
        // An older message of alice's own is still refused as her own.
        let stale = try alice.encrypt(text("x"))
        #expect(throws: MLSError.ownMessage) { try alice.process(stale) }
    }

    @Test(arguments: CipherSuite.supported)
    func everySuiteCarriesAConversation(suite: CipherSuite) throws {
        let provider = try suite.provider()
        var alice = try TestClient("alice", provider).createGroup()
        var nobody: [Group] = []
        var bob = try add([TestClient("bob", provider)], to: &alice, others: &nobody)[0]
        #expect(try bob.process(alice.encrypt(text("hi"))).applicationText == "hi")
        let update = try bob.selfUpdate()
        _ = try bob.process(update.message)
        _ = try alice.process(update.message)
        #expect(try alice.process(bob.encrypt(text("hello"))).applicationText == "hello")
    }
}
