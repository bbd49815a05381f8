import Testing

@testable import MLS

/// Wire values that name things outside the group: every one is a typed
/// error, nothing traps, nothing wraps around to a real member, nothing changes.
@Suite struct HostileInputTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func group() throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        var alice = try TestClient("alice", suite).createGroup()
        var server = try PublicGroup(groupInfo: alice.groupInfo())
        let bundles = try [TestClient("bob", suite), TestClient("charlie", suite)].map { try $0.keyPackage() }
        let output = try alice.addMembers(bundles.map(\.keyPackage))
        _ = try server.process(output.message)
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (
            alice, try Group.join(welcome: welcome, keyPackage: bundles[0]),
            try Group.join(welcome: welcome, keyPackage: bundles[1]), server
        )
    }

    /// Finding 10: leaf 2^31 + k used to wrap to node 2k, i.e. to leaf k.
    @Test func aRemoveNamingALeafBeyondTheTreeIsRefusedAndChangesNothing() throws {
        var (alice, bob, charlie, server) = try group()
        let wrapped = LeafIndex((1 << 31) + alice.ownLeaf.rawValue)
        #expect(LeafIndex((1 << 31) + 2).nodeIndex == .outsideEveryTree)
        #expect(alice.tree.leafNode(at: wrapped) == nil)

        let commit = try bob.forgedCommit([.proposal(.remove(removed: wrapped))], path: bob.forgedPath())
        let before = try server.serialized()
        let serverError = #expect(throws: MLSError.self) { try server.process(commit) }
        #expect(serverError?.kind == "invalidProposal")
        let memberError = #expect(throws: MLSError.self) { try charlie.process(commit) }
        #expect(memberError?.kind == "invalidProposal")
        #expect(try server.serialized() == before)
        #expect(charlie.epoch == 1 && charlie.members.count == 3 && server.members.count == 3)

        // The group carries on: a real removal still works for everyone.
        let real = try alice.removeMembers([charlie.ownLeaf])
        _ = try server.process(real.message)
        _ = try bob.process(real.message)
        #expect(server.members.count == 2 && bob.members.count == 2)
    }

    /// A sender index beyond the tree is "not a member", not leaf k.
    @Test func aSenderBeyondTheTreeIsNotAMember() throws {
        var (_, bob, charlie, server) = try group()
        var hostile = bob
        hostile.ownLeaf = LeafIndex((1 << 31) + bob.ownLeaf.rawValue)
        let message = try hostile.forgedCommit([], path: nil)
        #expect(throws: MLSError.self) { try server.process(message) }
        #expect(throws: MLSError.self) { try charlie.process(message) }
        #expect(server.epoch == 1 && charlie.epoch == 1)
    }

    /// A GroupInfo may start a view at epoch 2^64 - 1; the next commit is an
    /// error, not an overflow trap.
    @Test func theLastEpochCannotAdvanceButDoesNotTrap() throws {
        var alice = try TestClient("alice", suite).createGroup()
        alice.publicGroup.context.epoch = .max
        var info = try alice.groupInfo()
        info.signature = try suite.signWithLabel(alice.signer, label: "GroupInfoTBS", content: info.toBeSigned())
        var server = try PublicGroup(groupInfo: info)
        #expect(server.epoch == .max)

        let commitError = #expect(throws: MLSError.self) { try alice.selfUpdate() }
        #expect(commitError?.kind == "invalidCommit")
        let forged = try alice.forgedCommit([], path: alice.forgedPath())
        let serverError = #expect(throws: MLSError.self) { try server.process(forged) }
        #expect(serverError?.kind == "invalidCommit")
        #expect(server.epoch == .max)
    }

    /// Finding 7: a GroupInfo padded with hundreds of thousands of blank nodes
    /// is refused by its signature (or its trailing blanks) before any tree
    /// hash is computed.
    @Test func aPaddedUnsignedGroupInfoIsRefusedBeforeTheTreeIsBuilt() throws {
        let alice = try TestClient("alice", suite).createGroup()
        let leaf = try #require(alice.tree.leafNode(at: alice.ownLeaf))
        func groupInfo(blanks: Int, leafFirst: Bool) throws -> GroupInfo {
            var writer = TLSWriter()
            try writer.writeVector { inner in
                if leafFirst { try inner.writeOptional(Node.leaf(leaf)) }
                for _ in 0..<blanks { inner.write(UInt8(0)) }
                if !leafFirst { try inner.writeOptional(Node.leaf(leaf)) }
            }
            var info = try alice.groupInfo()
            info.extensions = [Extension(extensionType: .ratchetTree, extensionData: writer.bytes)]
            info.signer = LeafIndex(leafFirst ? 0 : UInt32(blanks / 2))
            info.signature = []
            return info
        }
        let padded = try groupInfo(blanks: 700_000, leafFirst: false)
        #expect(throws: MLSError.invalidMessage("the GroupInfo signature does not verify")) {
            try PublicGroup(groupInfo: padded)
        }
        let trailing = try groupInfo(blanks: 700_000, leafFirst: true)
        #expect(#expect(throws: MLSError.self) { try PublicGroup(groupInfo: trailing) }?.kind == "invalidTree")
        // The signer named beyond the tree is no signer at all.
        var beyond = try alice.groupInfo()
        beyond.signer = LeafIndex(1 << 31)
        #expect(throws: MLSError.invalidMessage("the GroupInfo signature does not verify")) {
            try PublicGroup(groupInfo: beyond)
        }
    }
}
