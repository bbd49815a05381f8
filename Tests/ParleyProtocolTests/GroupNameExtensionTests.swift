import ParleyProtocol
import Testing

@testable import MLS

/// The group's name in the GroupContext: set at creation, changed only by an admin's commit,
/// never dropped, always a valid ``GroupName`` — on members and on the server's view alike.
@Suite struct GroupNameExtensionTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let policy = ParleyGroupPolicy.groupPolicy()

    func credential(_ name: String) -> Credential { .basic(identity: Array(name.utf8)) }

    /// alice (admin) and bob in "board-secrets", plus the server's view.
    func group() throws -> (alice: Group, bob: Group, server: PublicGroup) {
        var alice = try Group.create(
            suite,
            groupID: suite.randomBytes(16),
            credential: credential("alice"),
            signatureKeys: suite.generateSignatureKeyPair(),
            extensions: [
                try ParleyGroupPolicy.adminsExtension(["alice"]),
                try ParleyGroupPolicy.groupNameExtension("board-secrets"),
            ],
            policy: policy
        )
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        let bob = try KeyPackageBundle(
            suite,
            credential: credential("bob"),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let output = try alice.addMembers([bob.keyPackage])
        _ = try server.process(output.message)
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (alice, try Group.join(welcome: welcome, keyPackage: bob, policy: policy), server)
    }

    func policyError(_ error: MLSError?) -> ParleyPolicyError? {
        guard case .rejectedByPolicy(let rejection)? = error else { return nil }
        return rejection.error as? ParleyPolicyError
    }

    @Test func theNameTravelsInTheWelcomeAndAnAdminRenames() throws {
        var (alice, bob, server) = try group()
        #expect(try ParleyGroupPolicy.groupName(in: bob.context.extensions) == "board-secrets")
        // What HistoryLedger seeds its chain with: the same for every member of the epoch.
        #expect(alice.epochAuthenticator == bob.epochAuthenticator)
        let rename = try alice.commit(
            CommitOptions(groupContextExtensions: [
                try ParleyGroupPolicy.adminsExtension(["alice"]), try ParleyGroupPolicy.groupNameExtension("Board ✓"),
            ])
        )
        _ = try server.process(rename.message)
        _ = try bob.process(rename.message)
        #expect(try ParleyGroupPolicy.groupName(in: bob.context.extensions) == "Board ✓")
        #expect(try ParleyGroupPolicy.groupName(in: server.context.extensions) == "Board ✓")
    }

    @Test func aMemberWhoIsNotAnAdminCannotRename() throws {
        var (_, bob, server) = try group()
        let rename = try bob.propose(
            .groupContextExtensions([
                try ParleyGroupPolicy.adminsExtension(["alice"]),
                try ParleyGroupPolicy.groupNameExtension("family-chat"),
            ])
        )
        #expect(policyError(#expect(throws: MLSError.self) { try server.process(rename) }) == .notAdmin)
    }

    /// A hostile admin client (no local policy) commits extensions without the name, or with
    /// a name no client may display; the server and every member refuse the commit.
    @Test func aCommitThatDropsOrCorruptsTheNameIsRefused() throws {
        var (alice, bob, server) = try group()
        let admins = try ParleyGroupPolicy.adminsExtension(["alice"])
        #expect(
            policyError(
                #expect(throws: MLSError.self) { try alice.commit(CommitOptions(groupContextExtensions: [admins])) }
            )
                == .groupNameRemoved
        )
        var laxAlice = alice
        laxAlice.policy = GroupPolicy()
        var bidi = TLSWriter()
        try bidi.writeOpaque(Array("team\u{202E}terces".utf8))
        var slash = TLSWriter()
        try slash.writeOpaque(Array("a/b".utf8))
        let badNames = [bidi.bytes, slash.bytes, [0xFF], [1, 0xC3]].map {
            Extension(extensionType: ParleyGroupPolicy.groupNameExtension, extensionData: $0)
        }
        let cases: [([Extension], ParleyPolicyError)] =
            [([admins], .groupNameRemoved)] + badNames.map { ([admins, $0], .invalidGroupName) }
        for (extensions, expected) in cases {
            let forged = try laxAlice.commit(CommitOptions(groupContextExtensions: extensions))
            #expect(policyError(#expect(throws: MLSError.self) { try server.process(forged.message) }) == expected)
            #expect(policyError(#expect(throws: MLSError.self) { try bob.process(forged.message) }) == expected)
        }
        #expect(try ParleyGroupPolicy.groupName(in: bob.context.extensions) == "board-secrets")
        #expect(bob.epoch == 1)
    }

    @Test func onlyValidNamesMakeAnExtension() throws {
        for name in ["", "a/b", ".", "..", "x\u{202E}y", "e\u{301}", String(repeating: "a", count: 65)] {
            #expect(throws: ParleyPolicyError.invalidGroupName) { try ParleyGroupPolicy.groupNameExtension(name) }
        }
        #expect(try ParleyGroupPolicy.groupName(in: [ParleyGroupPolicy.groupNameExtension("team")]) == "team")
        #expect(try ParleyGroupPolicy.groupName(in: []) == nil)
        let trailing = Extension(extensionType: ParleyGroupPolicy.groupNameExtension, extensionData: [1, 0x61, 0])
        #expect(throws: ParleyPolicyError.invalidGroupName) { try ParleyGroupPolicy.groupName(in: [trailing]) }
    }

    @Test func adminsAreJudgedAtTheEpochsExtensions() throws {
        let extensions = [try ParleyGroupPolicy.adminsExtension(["alice"])]
        #expect(ParleyGroupPolicy.isAdmin("alice", in: extensions))
        #expect(!ParleyGroupPolicy.isAdmin("bob", in: extensions))
        #expect(!ParleyGroupPolicy.isAdmin("alice", in: []))
    }
}
