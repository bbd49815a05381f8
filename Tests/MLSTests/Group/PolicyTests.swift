import Testing

@testable import MLS

/// The application's hooks, applied identically by members and by the
/// delivery service's public view.
@Suite struct PolicyTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// Only the member at leaf 0 may change membership; nobody may remove leaf 0.
    struct AdminOnly: CommitPolicy {
        struct NotPermitted: Error, CustomStringConvertible { let description: String }
        func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {
            // Adding anyone, or removing someone other than the proposer itself (leaving).
            let changesMembership = proposals.contains {
                switch $0.proposal {
                case .add: return true
                case .remove(let leaf): return $0.sender != .member(leaf)
                default: return false
                }
            }
            if proposals.contains(where: { $0.proposal == .remove(removed: LeafIndex(0)) }) {
                throw NotPermitted(description: "the admin cannot be removed")
            }
            if changesMembership, committer != .member(LeafIndex(0)) {
                throw NotPermitted(description: "only the admin may add or remove members")
            }
        }
    }

    /// Refuses anyone called mallory.
    struct NoMallory: CredentialValidator {
        struct Refused: Error {}
        func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            if credential == .basic(identity: Array("mallory".utf8)) { throw Refused() }
        }
    }

    var strict: GroupPolicy { GroupPolicy(credentialValidator: NoMallory(), commitPolicy: AdminOnly()) }

    func group(policy: GroupPolicy) throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        try TestClient.threeMemberGroup(suite, policy: policy)
    }

    @Test func theServerViewFollowsTheGroupWithoutSecrets() throws {
        var (alice, bob, charlie, server) = try group(policy: GroupPolicy())
        #expect(server.epoch == 1 && server.members.map(\.credential) == alice.members.map(\.credential))
        let update = try bob.selfUpdate()
        guard case .commit(let summary) = try server.process(update.message) else {
            Issue.record("not a commit")
            return
        }
        #expect(summary.committerLeaf == bob.ownLeaf && summary.epoch == 2)
        for index in 0..<3 {
            switch index {
            case 0: _ = try alice.process(update.message)
            case 1: _ = try bob.process(update.message)
            default: _ = try charlie.process(update.message)
            }
        }
        #expect(server.context == alice.context && server.tree.treeHash == bob.tree.treeHash)
        // Application data is opaque to it, and a second commit for the same epoch loses.
        #expect(throws: MLSError.self) { try server.process(alice.encrypt(Array("secret".utf8))) }
        let late = try charlie.selfUpdate()
        let first = try alice.removeMembers([charlie.ownLeaf])
        _ = try server.process(first.message)
        #expect(throws: MLSError.wrongEpoch(message: 2, group: 3)) { try server.process(late.message) }
        #expect(server.members.count == 2)
    }

    @Test func aNonAdminCannotCreateAMembershipCommit() throws {
        var (_, bob, charlie, _) = try group(policy: strict)
        #expect(throws: MLSError.self) { try bob.removeMembers([charlie.ownLeaf]) }
        #expect(throws: MLSError.self) { try bob.addMembers([TestClient("dave", suite).keyPackage().keyPackage]) }
        // Ordinary self-updates are fine.
        _ = try bob.selfUpdate()
    }

    @Test func aForgedNonAdminCommitIsRejectedByMembersAndServer() throws {
        var (alice, bob, charlie, server) = try group(policy: strict)
        // Bob's client ignores the rule; everyone else enforces it.
        bob.policy = GroupPolicy()
        let forged = try bob.removeMembers([charlie.ownLeaf])
        #expect(throws: MLSError.self) { try server.process(forged.message) }
        #expect(throws: MLSError.self) { try alice.process(forged.message) }
        #expect(throws: MLSError.self) { try charlie.process(forged.message) }
        #expect(server.epoch == 1 && alice.epoch == 1 && charlie.isActive)
    }

    @Test func theAdminCannotBeRemovedEvenByItself() throws {
        var (alice, _, _, _) = try group(policy: strict)
        #expect(throws: MLSError.self) { try alice.removeMembers([LeafIndex(0)]) }
    }

    @Test func aMemberMayStillLeave() throws {
        var (alice, bob, charlie, server) = try group(policy: strict)
        let leave = try charlie.proposeLeave()
        _ = try server.process(leave)
        _ = try alice.process(leave)
        _ = try bob.process(leave)
        let commit = try alice.commit()
        _ = try server.process(commit.message)
        _ = try alice.process(commit.message)
        _ = try bob.process(commit.message)
        #expect(server.members.count == 2 && bob.members.count == 2)
    }

    @Test func refusedCredentialsCannotJoin() throws {
        var (alice, bob, _, server) = try group(policy: strict)
        let mallory = try TestClient("mallory", suite).keyPackage()
        #expect(throws: MLSError.self) { try alice.addMembers([mallory.keyPackage]) }
        // Even when a lax admin client adds mallory, the others refuse the commit.
        alice.policy = GroupPolicy()
        let sneaky = try alice.addMembers([mallory.keyPackage])
        #expect(throws: MLSError.self) { try bob.process(sneaky.message) }
        #expect(throws: MLSError.self) { try server.process(sneaky.message) }
    }
}
