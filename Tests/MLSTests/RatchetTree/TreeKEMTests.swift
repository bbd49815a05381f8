import Testing

@testable import MLS

/// TreeKEM (RFC 9420 §7.4–7.6) among real members: every member follows every
/// path, new members are left out of the encryption, removed members learn nothing.
@Suite struct TreeKEMTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let groupID: [UInt8] = Array("treekem".utf8)

    struct Group {
        var tree: RatchetTree
        var members: [LeafIndex: (member: TestMember, keys: TreeKEMPrivateKeys)]
        var epoch: UInt64 = 0
    }

    func context(_ tree: RatchetTree, epoch: UInt64) -> GroupContext {
        GroupContext(
            cipherSuite: suite.suite,
            groupID: groupID,
            epoch: epoch,
            treeHash: tree.treeHash,
            confirmedTranscriptHash: []
        )
    }

    func makeGroup(size: Int) throws -> Group {
        let people = try (0..<size).map { try TestMember(suite, "m\($0)") }
        var tree = try RatchetTree(suite, firstLeaf: people[0].leafNode)
        var members = [LeafIndex(0): (people[0], people[0].privateKeys(at: LeafIndex(0)))]
        for person in people.dropFirst() {
            let leaf = try tree.add(person.leafNode)
            members[leaf] = (person, person.privateKeys(at: leaf))
        }
        return Group(tree: tree, members: members)
    }

    /// `committer` sends a path; everyone else merges and decrypts it. Returns the commit secret all agree on.
    @discardableResult
    func commit(_ group: inout Group, from committer: LeafIndex, newLeaves: Set<LeafIndex> = []) throws -> [UInt8] {
        let (member, _) = group.members[committer]!
        let prepared = try group.tree.prepareUpdatePath(
            from: committer,
            signer: member.signature.privateKey,
            groupID: groupID
        )
        let provisional = context(prepared.tree, epoch: group.epoch + 1)
        let path = try prepared.encrypt(groupContext: provisional, excluding: newLeaves)
        var receivedTree = group.tree
        try receivedTree.merge(path, from: committer, groupID: groupID)
        #expect(receivedTree.treeHash == prepared.tree.treeHash)
        for (leaf, entry) in group.members where leaf != committer && !newLeaves.contains(leaf) {
            let result = try entry.keys.applying(
                path,
                from: committer,
                in: receivedTree,
                groupContext: provisional,
                excluding: newLeaves
            )
            #expect(result.commitSecret == prepared.commitSecret, "\(leaf) derived a different commit secret")
            #expect(try result.keys.isConsistent(with: receivedTree))
            group.members[leaf]!.keys = result.keys
        }
        group.members[committer]!.keys = prepared.privateKeys
        group.tree = receivedTree
        group.epoch += 1
        try group.tree.validate(groupID: groupID)
        return prepared.commitSecret
    }

    @Test func everyMemberFollowsEveryPath() throws {
        var group = try makeGroup(size: 5)
        for committer in [0, 3, 1, 4, 2, 0] as [UInt32] {
            try commit(&group, from: LeafIndex(committer))
        }
        // After everyone has committed, every member holds the root key.
        for (leaf, entry) in group.members {
            #expect(entry.keys.privateKey(for: group.tree.leafCount.root) != nil, "\(leaf) lacks the root key")
        }
    }

    @Test func aLargeFreshTreeIsEncryptedConcurrentlyAndEveryoneDecrypts() throws {
        // No parent keys yet, so the copath resolutions hold all 39 other
        // leaves: enough encryptions to take the concurrent path.
        var group = try makeGroup(size: 40)
        let prepared = try group.tree.prepareUpdatePath(
            from: LeafIndex(0),
            signer: group.members[LeafIndex(0)]!.member.signature.privateKey,
            groupID: groupID
        )
        let path = try prepared.encrypt(groupContext: context(prepared.tree, epoch: 1))
        #expect(path.nodes.map(\.encryptedPathSecret.count).reduce(0, +) == 39)
        try commit(&group, from: LeafIndex(0))
        try commit(&group, from: LeafIndex(39))
    }

    @Test func newMembersAreLeftOutOfTheResolution() throws {
        var group = try makeGroup(size: 3)
        try commit(&group, from: LeafIndex(0))
        let newcomer = try TestMember(suite, "new")
        let leaf = try group.tree.add(newcomer.leafNode)
        group.members[leaf] = (newcomer, newcomer.privateKeys(at: leaf))
        let prepared = try group.tree.prepareUpdatePath(
            from: LeafIndex(1),
            signer: group.members[LeafIndex(1)]!.member.signature.privateKey,
            groupID: groupID
        )
        let path = try prepared.encrypt(groupContext: context(prepared.tree, epoch: 2), excluding: [leaf])
        let allCiphertexts = path.nodes.map(\.encryptedPathSecret.count).reduce(0, +)
        let withNewcomer = try prepared.encrypt(groupContext: context(prepared.tree, epoch: 2)).nodes.map(
            \.encryptedPathSecret.count
        ).reduce(0, +)
        #expect(withNewcomer == allCiphertexts + 1)
        // The newcomer gets the secret of the lowest path node above it (in its Welcome).
        let ancestor = try #require(prepared.commonAncestorNode(with: leaf))
        #expect(prepared.pathSecret(for: ancestor) != nil)
        try commit(&group, from: LeafIndex(1), newLeaves: [leaf])
    }

    @Test func aRemovedMemberCannotDecryptTheNextPath() throws {
        var group = try makeGroup(size: 4)
        try commit(&group, from: LeafIndex(0))
        let removed = group.members.removeValue(forKey: LeafIndex(2))!
        try group.tree.remove(LeafIndex(2))
        let committer = group.members[LeafIndex(0)]!
        let prepared = try group.tree.prepareUpdatePath(
            from: LeafIndex(0),
            signer: committer.member.signature.privateKey,
            groupID: groupID
        )
        let provisional = context(prepared.tree, epoch: 2)
        let path = try prepared.encrypt(groupContext: provisional)
        var theirTree = group.tree
        try theirTree.merge(path, from: LeafIndex(0), groupID: groupID)
        #expect(throws: MLSError.self) {
            try removed.keys.applying(path, from: LeafIndex(0), in: theirTree, groupContext: provisional)
        }
        // Not one ciphertext opens with any key the removed member had.
        let oldKeys = [removed.keys.leafKey] + removed.keys.pathKeys.values
        for ciphertext in path.nodes.flatMap(\.encryptedPathSecret) {
            for key in oldKeys {
                #expect(throws: MLSError.decryptionFailed) {
                    try suite.decryptWithLabel(
                        key,
                        label: "UpdatePathNode",
                        context: provisional.tlsEncoded(),
                        ciphertext: ciphertext
                    )
                }
            }
        }
    }

    @Test func tamperedPathsAreRejected() throws {
        var group = try makeGroup(size: 4)
        try commit(&group, from: LeafIndex(0))
        let committer = group.members[LeafIndex(1)]!
        let prepared = try group.tree.prepareUpdatePath(
            from: LeafIndex(1),
            signer: committer.member.signature.privateKey,
            groupID: groupID
        )
        let provisional = context(prepared.tree, epoch: 2)
        let path = try prepared.encrypt(groupContext: provisional)

        // A swapped public key breaks the parent-hash chain the leaf signed.
        var wrongKey = path
        wrongKey.nodes[0].encryptionKey = try suite.generateHPKEKeyPair().publicKey
        var tree = group.tree
        #expect(throws: MLSError.invalidUpdatePath("the leaf's parent hash does not match the path")) {
            try tree.merge(wrongKey, from: LeafIndex(1), groupID: groupID)
        }
        // Too few nodes.
        var short = path
        short.nodes.removeLast()
        #expect(throws: MLSError.self) { try tree.merge(short, from: LeafIndex(1), groupID: groupID) }
        // A leaf re-signed by someone else.
        var forgedLeaf = path
        try forgedLeaf.leafNode.sign(
            suite,
            with: group.members[LeafIndex(2)]!.member.signature.privateKey,
            groupID: groupID,
            leafIndex: LeafIndex(1)
        )
        #expect(throws: MLSError.self) { try tree.merge(forgedLeaf, from: LeafIndex(1), groupID: groupID) }

        // A corrupted ciphertext fails to decrypt; a wrong group context too.
        try tree.merge(path, from: LeafIndex(1), groupID: groupID)
        var corrupted = path
        corrupted.nodes[0].encryptedPathSecret[0].ciphertext[0] ^= 1
        let receiver = group.members[LeafIndex(0)]!.keys
        #expect(throws: MLSError.decryptionFailed) {
            try receiver.applying(corrupted, from: LeafIndex(1), in: tree, groupContext: provisional)
        }
        #expect(throws: MLSError.decryptionFailed) {
            try receiver.applying(path, from: LeafIndex(1), in: tree, groupContext: context(tree, epoch: 99))
        }
        #expect(throws: MLSError.self) {
            try prepared.privateKeys.applying(path, from: LeafIndex(1), in: tree, groupContext: provisional)
        }
    }

    @Test(arguments: CipherSuite.supported)
    func pathsWorkInEverySuite(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let people = try (0..<3).map { try TestMember(provider, "p\($0)") }
        var tree = try RatchetTree(provider, firstLeaf: people[0].leafNode)
        try tree.add(people[1].leafNode)
        try tree.add(people[2].leafNode)
        let prepared = try tree.prepareUpdatePath(
            from: LeafIndex(2),
            signer: people[2].signature.privateKey,
            groupID: groupID
        )
        let groupContext = GroupContext(
            cipherSuite: suite,
            groupID: groupID,
            epoch: 1,
            treeHash: prepared.tree.treeHash,
            confirmedTranscriptHash: []
        )
        let path = try prepared.encrypt(groupContext: groupContext)
        try tree.merge(path, from: LeafIndex(2), groupID: groupID)
        let result = try people[0].privateKeys(at: LeafIndex(0)).applying(
            path,
            from: LeafIndex(2),
            in: tree,
            groupContext: groupContext
        )
        #expect(result.commitSecret == prepared.commitSecret)
    }
}
