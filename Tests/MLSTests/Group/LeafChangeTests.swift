import Testing

@testable import MLS

/// Findings 17 and 21: a member replacing its own leaf keeps its identity
/// (RFC 9420 §5.3.1) and meets the group's required_capabilities (§7.3).
@Suite struct LeafChangeTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func group(
        capabilities: Capabilities? = nil,
        extensions: [Extension] = []
    ) throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        let aliceClient = TestClient("alice", suite)
        var alice = try Group.create(
            suite,
            groupID: Array("group".utf8),
            credential: aliceClient.credential,
            signatureKeys: aliceClient.signatureKeys,
            capabilities: capabilities,
            extensions: extensions
        )
        var server = try PublicGroup(groupInfo: alice.groupInfo())
        let bundles = try [TestClient("bob", suite), TestClient("charlie", suite)].map { client in
            try KeyPackageBundle(
                suite,
                credential: client.credential,
                signatureKeys: client.signatureKeys,
                capabilities: capabilities,
                lifetime: Lifetime(notBefore: 0, notAfter: .max)
            )
        }
        let output = try alice.addMembers(bundles.map(\.keyPackage))
        _ = try server.process(output.message)
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (
            alice, try Group.join(welcome: welcome, keyPackage: bundles[0]),
            try Group.join(welcome: welcome, keyPackage: bundles[1]), server
        )
    }

    /// Bob's own leaf for an Update proposal, naming `identity`.
    func updateLeaf(_ member: Group, identity: String) throws -> LeafNode {
        var leaf = try #require(member.tree.leafNode(at: member.ownLeaf))
        leaf.credential = .basic(identity: Array(identity.utf8))
        leaf.encryptionKey = try suite.generateHPKEKeyPair().publicKey
        leaf.source = .update
        try leaf.sign(suite, with: member.signer, groupID: member.groupID, leafIndex: member.ownLeaf)
        return leaf
    }

    @Test func anUpdateProposalCannotTakeTheAdminsName() throws {
        var (alice, bob, charlie, server) = try group()
        let impostor = try bob.propose(.update(updateLeaf(bob, identity: "alice")))
        let serverError = #expect(throws: MLSError.self) { try server.process(impostor) }
        #expect(serverError?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try alice.process(impostor) }?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try charlie.process(impostor) }?.kind == "invalidLeafNode")
        #expect(server.proposals.isEmpty && alice.pendingProposals.isEmpty)
        // The same Update keeping bob's name is fine: only the identity was wrong.
        let honest = try bob.propose(.update(updateLeaf(bob, identity: "bob")))
        _ = try server.process(honest)
        _ = try alice.process(honest)
        #expect(server.proposals.count == 1)
    }

    @Test func anUpdatePathCannotTakeTheAdminsName() throws {
        var (alice, bob, charlie, server) = try group()
        var template = try #require(bob.tree.leafNode(at: bob.ownLeaf))
        template.credential = .basic(identity: Array("alice".utf8))
        // Bob's own client refuses to build it ...
        #expect(throws: MLSError.self) { try bob.commit(CommitOptions(forcePath: true, leafNode: template)) }
        // ... and a hostile client's commit is refused by the server and by members.
        let forged = try bob.forgedCommit([], path: bob.forgedPath(leafNode: template))
        #expect(#expect(throws: MLSError.self) { try server.process(forged) }?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try alice.process(forged) }?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try charlie.process(forged) }?.kind == "invalidLeafNode")
        #expect(server.epoch == 1 && alice.epoch == 1)
        #expect(server.members.map(\.credential).filter { $0 == .basic(identity: Array("alice".utf8)) }.count == 1)
    }

    /// An application's own successor rule replaces the default.
    @Test func theSuccessorRuleIsTheApplicationsHook() throws {
        struct SameFirstLetter: CredentialValidator {
            struct Refused: Error {}
            func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {}
            func validateSuccessor(_ credential: Credential, replacing old: Credential) throws {
                guard case .basic(let new) = credential, case .basic(let previous) = old, new.first == previous.first
                else { throw Refused() }
            }
        }
        var (_, bob, _, server) = try group()
        server.policy = GroupPolicy(credentialValidator: SameFirstLetter())
        _ = try server.process(bob.propose(.update(updateLeaf(bob, identity: "bobby"))))
        let renamed = try bob.propose(.update(updateLeaf(bob, identity: "carol")))
        let error = #expect(throws: MLSError.self) { try server.process(renamed) }
        guard case .rejectedByPolicy(let rejection)? = error else {
            Issue.record("not a policy refusal")
            return
        }
        #expect(rejection.subject == .credential && rejection.error is SameFirstLetter.Refused)
    }

    /// Finding 21: the UpdatePath's leaf must list what required_capabilities requires.
    @Test func anUpdatePathLeafMustMeetRequiredCapabilities() throws {
        let custom = ExtensionType(rawValue: 0xF0B0)
        let required = Extension(
            extensionType: .requiredCapabilities,
            extensionData: try RequiredCapabilities(extensionTypes: [custom]).tlsEncoded()
        )
        let capabilities = Capabilities(cipherSuites: [suite.suite], extensions: [custom])
        var (alice, bob, charlie, server) = try group(capabilities: capabilities, extensions: [required])
        var template = try #require(bob.tree.leafNode(at: bob.ownLeaf))
        template.capabilities = Capabilities(cipherSuites: [suite.suite])
        let forged = try bob.forgedCommit([], path: bob.forgedPath(leafNode: template))
        #expect(#expect(throws: MLSError.self) { try server.process(forged) }?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try alice.process(forged) }?.kind == "invalidLeafNode")
        #expect(#expect(throws: MLSError.self) { try charlie.process(forged) }?.kind == "invalidLeafNode")
        // With the capability kept, the same kind of self-update goes through.
        let honest = try bob.selfUpdate()
        _ = try server.process(honest.message)
        _ = try alice.process(honest.message)
        #expect(server.epoch == 2 && alice.epoch == 2)
    }
}
