import MLS
import Testing

/// The code of `Sources/MLS/MLS.docc/PolicyHooks.md`; see `GettingStartedSnippets`
/// for how the article and these regions are kept identical.
@Suite struct PolicyHookSnippets {
    // snippet: commit-policy
    /// Only the group's creator, at leaf 0, may add or remove members.
    struct CreatorManagesMembers: CommitPolicy {
        struct NotPermitted: Error {}

        func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {
            let changesMembership = proposals.contains {
                switch $0.proposal {
                case .add, .remove: true
                default: false
                }
            }
            if changesMembership, committer != .member(LeafIndex(0)) { throw NotPermitted() }
        }
    }
    // end-snippet

    // snippet: credential-validator
    /// Accepts only `basic` credentials whose identity the application's directory knows.
    struct KnownUsers: CredentialValidator {
        struct UnknownUser: Error {}
        let directory: Set<[UInt8]>

        func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            guard case .basic(let identity) = credential, directory.contains(identity) else { throw UnknownUser() }
        }
    }
    // end-snippet

    // snippet: sentence
    /// The application's edge: its own error values become sentences for the user.
    func sentence(for error: any Error) -> String {
        guard case MLSError.rejectedByPolicy(let rejection) = error else { return "The group could not be changed." }
        switch rejection.error {
        case is CreatorManagesMembers.NotPermitted: return "Only the group's creator can add or remove members."
        case is KnownUsers.UnknownUser: return "That person is not in the directory."
        default: return "The group's rules refused this \(rejection.subject)."
        }
    }
    // end-snippet

    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func keyPackage(_ name: String) throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array(name.utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
    }

    @Test func aHooksErrorReachesTheApplicationAsAValue() throws {
        let suite = suite
        // snippet: install
        let policy = GroupPolicy(
            credentialValidator: KnownUsers(directory: [Array("alice".utf8), Array("bob".utf8), Array("carol".utf8)]),
            commitPolicy: CreatorManagesMembers()
        )
        var alice = try Group.create(
            suite,
            groupID: Array("book club".utf8),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            policy: policy
        )
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        // end-snippet
        let bobBundle = try keyPackage("bob")
        let carolBundle = try keyPackage("carol")
        let added = try alice.addMembers([bobBundle.keyPackage, carolBundle.keyPackage])
        _ = try server.process(added.message)
        _ = try alice.process(added.message)
        guard case .welcome(let welcome)? = added.welcome else { throw MLSError.invalidWelcome("none") }
        var bob = try Group.join(welcome: welcome, keyPackage: bobBundle, policy: policy)
        let carol = try Group.join(welcome: welcome, keyPackage: carolBundle, policy: policy)
        #expect(server.epoch == 1 && bob.epoch == 1)

        // snippet: refusals
        let notCreator = try #require(throws: MLSError.self) { try bob.removeMembers([carol.ownLeaf]) }
        #expect(sentence(for: notCreator) == "Only the group's creator can add or remove members.")

        let mallory = try keyPackage("mallory")
        let unknown = try #require(throws: MLSError.self) { try alice.addMembers([mallory.keyPackage]) }
        #expect(sentence(for: unknown) == "That person is not in the directory.")
        // end-snippet
        // A refused commit changes nothing: both still hold epoch 1 and no pending Commit.
        #expect(bob.epoch == 1 && !bob.hasPendingCommit && alice.epoch == 1 && !alice.hasPendingCommit)
        guard case .rejectedByPolicy(let rejection) = unknown else { throw MLSError.invalidCommit("not a rejection") }
        #expect(rejection.subject == .credential)
    }
}
