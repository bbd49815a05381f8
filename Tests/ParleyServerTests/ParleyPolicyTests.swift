import ParleyProtocol
import Testing

@testable import MLS

/// ParleyGroupPolicy through the MLS API: the rules judge who proposed, on
/// the server's view and on members alike (findings 3, 5, 6, 17, 21).
@Suite struct ParleyPolicyTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let policy = ParleyGroupPolicy.groupPolicy()

    struct Member {
        let name: String
        let keys: SignatureKeyPair
        var credential: Credential { .basic(identity: Array(name.utf8)) }
    }

    func member(_ name: String) -> Member { Member(name: name, keys: suite.generateSignatureKeyPair()) }

    func keyPackage(_ member: Member, notAfter: UInt64 = .max) throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: member.credential,
            signatureKeys: member.keys,
            lifetime: Lifetime(notBefore: 0, notAfter: notAfter)
        )
    }

    /// alice (admin), bob and charlie, plus the server's view, all under Parley's policy.
    func group() throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        let admin = member("alice")
        var alice = try Group.create(
            suite,
            groupID: Array("g".utf8),
            credential: admin.credential,
            signatureKeys: admin.keys,
            extensions: [ParleyGroupPolicy.adminsExtension(["alice"])],
            policy: policy
        )
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        let bundles = try [member("bob"), member("charlie")].map { try keyPackage($0) }
        let output = try alice.addMembers(bundles.map(\.keyPackage))
        _ = try server.process(output.message)
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (
            alice, try Group.join(welcome: welcome, keyPackage: bundles[0], policy: policy),
            try Group.join(welcome: welcome, keyPackage: bundles[1], policy: policy), server
        )
    }

    func parleyError(_ error: MLSError?) -> ParleyPolicyError? {
        guard case .rejectedByPolicy(let rejection)? = error else { return nil }
        return rejection.error as? ParleyPolicyError
    }

    /// The receipt of `message` by the server and each member fails with `expected`, and caches nothing.
    func refusedEverywhere(
        _ message: MLSMessage,
        _ expected: ParleyPolicyError,
        server: inout PublicGroup,
        members: inout [Group]
    ) {
        #expect(parleyError(#expect(throws: MLSError.self) { try server.process(message) }) == expected)
        for index in members.indices {
            #expect(parleyError(#expect(throws: MLSError.self) { try members[index].process(message) }) == expected)
            #expect(members[index].pendingProposals.isEmpty)
        }
        #expect(server.proposals.isEmpty)
    }

    /// Finding 3: the takeover proposals are refused when they arrive.
    @Test func aNonAdminCannotProposeItselfAdminNorRemoveOthers() throws {
        var (alice, bob, charlie, server) = try group()
        var members = [alice, charlie]
        let seize = try bob.propose(.groupContextExtensions([ParleyGroupPolicy.adminsExtension(["bob"])]))
        refusedEverywhere(seize, .notAdmin, server: &server, members: &members)
        let removeCharlie = try bob.propose(.remove(removed: charlie.ownLeaf))
        refusedEverywhere(removeCharlie, .notAdmin, server: &server, members: &members)
        let removeAdmin = try bob.propose(.remove(removed: alice.ownLeaf))
        refusedEverywhere(removeAdmin, .adminCannotBeRemoved, server: &server, members: &members)
        // Finding 6: nothing was cached, so the admin's commits keep working.
        let leave = try bob.proposeLeave()
        _ = try server.process(leave)
        _ = try alice.process(leave)
        let commit = try alice.removeMembers([charlie.ownLeaf])
        _ = try server.process(commit.message)
        _ = try alice.process(commit.message)
        #expect(try ParleyGroupPolicy.admins(in: server.context.extensions) == ["alice"])
        #expect(server.members.count == 1 && alice.members.count == 1)
    }

    /// The same proposals, cached by lax views, cannot be committed by reference
    /// by the admin: its own client leaves them out, and a lax admin client's commit is refused.
    @Test func anAdminCannotCommitANonAdminsTakeoverByReference() throws {
        var (alice, bob, charlie, _) = try group()
        var laxAlice = alice
        laxAlice.policy = GroupPolicy()
        var laxServer = try PublicGroup(groupInfo: alice.groupInfo(), policy: GroupPolicy())
        let seize = try bob.propose(.groupContextExtensions([ParleyGroupPolicy.adminsExtension(["bob"])]))
        let removeCharlie = try bob.propose(.remove(removed: charlie.ownLeaf))
        for message in [seize, removeCharlie] {
            _ = try laxAlice.process(message)
            _ = try laxServer.process(message)
        }
        var strictServer = laxServer
        strictServer.policy = policy
        var strictAlice = laxAlice
        strictAlice.policy = policy
        let own = try strictAlice.commit()
        #expect(own.summary.removed.isEmpty)
        let forged = try laxAlice.commit()
        #expect(forged.summary.removed.count == 1)
        #expect(parleyError(#expect(throws: MLSError.self) { try strictServer.process(forged.message) }) == .notAdmin)
        #expect(parleyError(#expect(throws: MLSError.self) { try charlie.process(forged.message) }) == nil)
        #expect(charlie.isActive && charlie.epoch == 1)
    }

    /// Finding 5 and the Systematic list: proposal kinds Parley does not use are refused.
    @Test func pskReInitAndExternalInitAreRefused() throws {
        var (alice, bob, _, server) = try group()
        var members = [alice]
        let psk = PreSharedKeyID(kind: .external(pskID: [1, 2, 3]), pskNonce: suite.randomBytes(suite.hashLength))
        refusedEverywhere(
            try bob.propose(.preSharedKey(psk)),
            .proposalNotAllowed(.psk),
            server: &server,
            members: &members
        )
        // A ReInit is `parley upgrade`, an admin's only (UpgradePolicyTests has the rest).
        refusedEverywhere(
            try bob.propose(.reInit(ReInit(groupID: [9], cipherSuite: suite.suite))),
            .notAdmin,
            server: &server,
            members: &members
        )
        // Even the admin may not: the admin's inline PSK is judged as proposed by the admin.
        let forged = try alice.forgedParleyCommit([.proposal(.preSharedKey(psk))])
        #expect(parleyError(#expect(throws: MLSError.self) { try server.process(forged) }) == .proposalNotAllowed(.psk))
        #expect(server.epoch == 1)
    }

    /// Group extensions keep every admin and a valid admin list.
    @Test func theAdminListCanGrowButNeverLoseAnAdmin() throws {
        var (alice, _, _, server) = try group()
        #expect(
            parleyError(
                #expect(throws: MLSError.self) {
                    try alice.commit(
                        CommitOptions(groupContextExtensions: [ParleyGroupPolicy.adminsExtension(["bob"])])
                    )
                }
            ) == .adminListChange
        )
        #expect(
            parleyError(
                #expect(throws: MLSError.self) {
                    try alice.commit(CommitOptions(groupContextExtensions: []))
                }
            ) == .invalidAdminList
        )
        let bothAdmins = try ParleyGroupPolicy.adminsExtension(["alice", "bob"])
        let grow = try alice.commit(CommitOptions(groupContextExtensions: [bothAdmins]))
        _ = try server.process(grow.message)
        #expect(try ParleyGroupPolicy.admins(in: server.context.extensions) == ["alice", "bob"])
    }

    /// Finding 17: a leaf cannot take another username.
    @Test func aMemberCannotRenameItselfToTheAdmin() throws {
        var (alice, bob, _, server) = try group()
        var leaf = try #require(bob.tree.leafNode(at: bob.ownLeaf))
        leaf.credential = .basic(identity: Array("alice".utf8))
        leaf.encryptionKey = try suite.generateHPKEKeyPair().publicKey
        leaf.source = .update
        try leaf.sign(suite, with: bob.signer, groupID: bob.groupID, leafIndex: bob.ownLeaf)
        let update = try bob.propose(.update(leaf))
        #expect(parleyError(#expect(throws: MLSError.self) { try server.process(update) }) == .identityChange)
        #expect(parleyError(#expect(throws: MLSError.self) { try alice.process(update) }) == .identityChange)
    }

    /// Finding 21: groupPolicy() runs on the real clock, so an expired KeyPackage cannot be added.
    @Test func anExpiredKeyPackageCannotBeAdded() throws {
        var (alice, _, _, server) = try group()
        let expired = try keyPackage(member("dave"), notAfter: 1_000)
        #expect(throws: MLSError.self) { try alice.addMembers([expired.keyPackage]) }
        var lax = alice
        lax.policy = GroupPolicy()
        let commit = try lax.addMembers([expired.keyPackage])
        #expect(throws: MLSError.self) { try server.process(commit.message) }
        // A KeyPackage like the client's (valid for 90 days from now) is fine.
        let now = try #require(ParleyGroupPolicy.currentTime())
        let fresh = try keyPackage(member("erin"), notAfter: now + 90 * 86_400)
        _ = try server.process(alice.addMembers([fresh.keyPackage]).message)
        #expect(server.members.count == 4)
    }

    /// The one mapping from a policy refusal to the wire error.
    @Test func refusalsMapToWireErrors() {
        let rejection = PolicyRejection(.proposal, ParleyPolicyError.notAdmin)
        #expect(ParleyPolicyError.errorBody(for: rejection).code == .notPermitted)
        let credential = PolicyRejection(.credential, ParleyPolicyError.invalidCredential)
        #expect(ParleyPolicyError.errorBody(for: credential).code == .invalidMessage)
        struct Other: Error {}
        #expect(ParleyPolicyError.errorBody(for: PolicyRejection(.commit, Other())).code == .notPermitted)
    }

    /// A stolen or lost admin device can be removed by the admin's other
    /// device, but never by anyone else, and a commit never drops every
    /// device of an admin.
    @Test func anAdminRemovesItsOwnOtherDeviceButNeverItsLast() throws {
        var (alice, bob, charlie, server) = try group()
        let stolenBundle = try keyPackage(member("alice"))
        let add = try alice.addMembers([stolenBundle.keyPackage])
        _ = try server.process(add.message)
        _ = try alice.process(add.message)
        _ = try bob.process(add.message)
        _ = try charlie.process(add.message)
        guard case .welcome(let welcome)? = add.welcome else { throw MLSError.invalidWelcome("none") }
        let stolen = try Group.join(welcome: welcome, keyPackage: stolenBundle, policy: policy)
        // A non-admin may not remove any device of the admin.
        var members = [alice, charlie]
        let bobRemoves = try bob.propose(.remove(removed: stolen.ownLeaf))
        refusedEverywhere(bobRemoves, .adminCannotBeRemoved, server: &server, members: &members)
        // No commit drops every device of an admin, whoever proposed the removals.
        let both = [(stolen.ownLeaf, alice.ownLeaf), (alice.ownLeaf, stolen.ownLeaf)].map { proposer, removed in
            ProposalWithSender(proposal: .remove(removed: removed), sender: .member(proposer), reference: nil)
        }
        #expect(throws: ParleyPolicyError.adminCannotBeRemoved) {
            try ParleyGroupPolicy.CommitRule().validate(both, committer: .member(alice.ownLeaf), group: server)
        }
        // alice removes the stolen device: the server and every member accept it.
        let removal = try alice.removeMembers([stolen.ownLeaf])
        _ = try server.process(removal.message)
        _ = try alice.process(removal.message)
        _ = try bob.process(removal.message)
        #expect(server.members.count == 3 && bob.members.count == 3)
        #expect(server.members.filter { ParleyGroupPolicy.username(of: $0.credential) == "alice" }.count == 1)
        #expect(try ParleyGroupPolicy.admins(in: server.context.extensions) == ["alice"])
    }
}

extension Group {
    /// A commit signed and tagged by this member, built without any local check.
    fileprivate func forgedParleyCommit(_ proposals: [ProposalOrRef]) throws -> MLSMessage {
        let prepared = try tree.prepareUpdatePath(from: ownLeaf, signer: signer, groupID: groupID)
        var provisional = context
        provisional.treeHash = prepared.tree.treeHash
        let path = try prepared.encrypt(groupContext: provisional)
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
        signed.auth.confirmationTag = suite.randomBytes(suite.hashLength)
        return .publicMessage(
            try PublicMessage.protect(
                signed,
                membershipKey: epochSecrets.membershipKey,
                context: context,
                suite
            )
        )
    }
}
