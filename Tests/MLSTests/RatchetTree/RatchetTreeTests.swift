import Testing

@testable import MLS

@Suite struct RatchetTreeTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// A tree of `count` placeholder members with every parent blank.
    func placeholderTree(_ count: Int) throws -> RatchetTree {
        var nodes: [Node?] = []
        for number in 0..<count {
            if number > 0 { nodes.append(nil) }
            nodes.append(.leaf(TestMember.placeholderLeaf(number)))
        }
        return try RatchetTree(suite, nodes: nodes)
    }

    // MARK: Cost (§7.8): a change rehashes only the changed paths.

    @Test func changesToATenThousandLeafTreeRehashOnlyTheirPath() throws {
        var tree = try placeholderTree(10_000)
        #expect(tree.leafCount.rawValue == 16_384)
        let depth = 14  // log2(16384)
        #expect(tree.treeHashComputations == Int(tree.leafCount.nodeCount))  // the one full hash when the tree arrives

        // Add into the leftmost blank leaf: the leaf and its ancestors.
        var before = tree.treeHashComputations
        let added = try tree.add(TestMember.placeholderLeaf(10_000))
        #expect(added == LeafIndex(10_000))
        #expect(tree.treeHashComputations - before == depth + 1)

        // Remove a member in the middle: its leaf and its ancestors.
        before = tree.treeHashComputations
        try tree.remove(LeafIndex(4_321))
        #expect(tree.treeHashComputations - before == depth + 1)

        // An UpdatePath from a member, created and then merged by another member.
        let committer = try TestMember(suite, "committer")
        try tree.update(LeafIndex(77), with: committer.leafNode)
        before = tree.treeHashComputations
        let prepared = try tree.prepareUpdatePath(
            from: LeafIndex(77),
            signer: committer.signature.privateKey,
            groupID: [9]
        )
        #expect(prepared.tree.treeHashComputations - before == depth + 1)
        let path = UpdatePath(
            leafNode: prepared.leafNode,
            nodes: prepared.filteredPath.map {
                UpdatePathNode(encryptionKey: prepared.tree[$0]!.encryptionKey, encryptedPathSecret: [])
            }
        )
        var receiver = tree
        try receiver.merge(path, from: LeafIndex(77), groupID: [9])
        #expect(receiver.treeHashComputations - before == depth + 1)
        #expect(receiver.treeHash == prepared.tree.treeHash)
    }

    // MARK: Shape (§7.7, §12.1)

    @Test func addFillsTheLeftmostBlankLeafThenExtends() throws {
        var tree = try placeholderTree(3)
        #expect(tree.leafCount.rawValue == 4)
        #expect(try tree.add(TestMember.placeholderLeaf(3)) == LeafIndex(3))
        #expect(try tree.add(TestMember.placeholderLeaf(4)) == LeafIndex(4))
        #expect(tree.leafCount.rawValue == 8)
        try tree.remove(LeafIndex(1))
        #expect(try tree.add(TestMember.placeholderLeaf(5)) == LeafIndex(1))
    }

    @Test func addRecordsTheNewLeafAsUnmergedAboveIt() throws {
        var tree = try placeholderTree(3)
        tree.set(NodeIndex(3), .parent(ParentNode(encryptionKey: HPKEPublicKey([7]), parentHash: [])))
        tree.set(NodeIndex(5), .parent(ParentNode(encryptionKey: HPKEPublicKey([8]), parentHash: [])))
        let leaf = try tree.add(TestMember.placeholderLeaf(9))
        #expect(tree.parentNode(at: NodeIndex(3))?.unmergedLeaves == [leaf])
        #expect(tree.parentNode(at: NodeIndex(5))?.unmergedLeaves == [leaf])
        #expect(tree.resolution(of: NodeIndex(3)) == [NodeIndex(3), NodeIndex(6)])
    }

    @Test func removeBlanksThePathAndTruncatesTheEmptyRightHalf() throws {
        var tree = try placeholderTree(5)
        #expect(tree.leafCount.rawValue == 8)
        try tree.remove(LeafIndex(4))
        #expect(tree.leafCount.rawValue == 4)
        try tree.remove(LeafIndex(3))
        try tree.remove(LeafIndex(2))
        #expect(tree.leafCount.rawValue == 2)
        #expect(throws: MLSError.self) { try tree.remove(LeafIndex(2)) }
        #expect(throws: MLSError.self) { try tree.update(LeafIndex(3), with: TestMember.placeholderLeaf(1)) }
    }

    @Test func filteredDirectPathSkipsNodesWithEmptyCopathResolutions() throws {
        // RFC 9420 §4.1.2's example: members A, B, E, F, G at leaves 0, 1, 4, 5, 6.
        var nodes = [Node?](repeating: nil, count: 13)
        for leaf in [0, 1, 4, 5, 6] { nodes[leaf * 2] = .leaf(TestMember.placeholderLeaf(leaf)) }
        let tree = try RatchetTree(suite, nodes: nodes)
        #expect(tree.filteredDirectPath(of: LeafIndex(0)).map(\.rawValue) == [1, 7])
        #expect(tree.filteredDirectPath(of: LeafIndex(4)).map(\.rawValue) == [9, 11, 7])
        #expect(tree.filteredDirectPath(of: LeafIndex(6)).map(\.rawValue) == [11, 7])
    }

    // MARK: Strict decoding and validation

    @Test func receivedTreesMustBeWellFormed() throws {
        let leaf = Node.leaf(TestMember.placeholderLeaf(0))
        let parent = Node.parent(ParentNode(encryptionKey: HPKEPublicKey([5]), parentHash: []))
        #expect(throws: MLSError.self) { try RatchetTree(suite, nodes: []) }
        #expect(throws: MLSError.self) { try RatchetTree(suite, nodes: [leaf, nil]) }
        #expect(throws: MLSError.self) { try RatchetTree(suite, nodes: [parent]) }
        #expect(throws: MLSError.self) { try RatchetTree(suite, nodes: [leaf, leaf, leaf]) }
        #expect(throws: DecodingError.self) { try RatchetTree(suite, encoded: [0x02, 0x02, 0x00]) }
        // Two nodes pad to a three-node tree.
        #expect(try RatchetTree(suite, nodes: [leaf, nil, leaf]).leafCount.rawValue == 2)
        #expect(try RatchetTree(suite, nodes: [leaf, parent]).leafCount.rawValue == 2)
    }

    /// A three-member tree built by real commits, so every check applies.
    func committedTree() throws -> (RatchetTree, [TestMember]) {
        let members = try (0..<3).map { try TestMember(suite, "member\($0)") }
        var tree = try RatchetTree(suite, firstLeaf: members[0].leafNode)
        try tree.add(members[1].leafNode)
        try tree.add(members[2].leafNode)
        tree = try tree.prepareUpdatePath(from: LeafIndex(0), signer: members[0].signature.privateKey, groupID: [1])
            .tree
        try tree.validate(groupID: [1])
        return (tree, members)
    }

    @Test func validationRejectsABadLeafSignature() throws {
        var (tree, _) = try committedTree()
        var forged = tree.leafNode(at: LeafIndex(1))!
        forged.credential = .basic(identity: Array("mallory".utf8))
        #expect(throws: MLSError.invalidLeafNode("the signature of leaf 1 does not verify")) {
            try tree.validateLeafNode(forged, at: LeafIndex(1), groupID: [1])
        }
        // In the tree, the edit also breaks the parent-hash chain over it.
        tree.set(LeafIndex(1).nodeIndex, .leaf(forged))
        try tree.rehash()
        #expect(throws: MLSError.invalidTree("node 1 is not parent-hash valid (0 matching descendants)")) {
            try tree.validate(groupID: [1])
        }
    }

    @Test func validationRejectsLeafSignaturesForAnotherGroup() throws {
        let (tree, _) = try committedTree()
        #expect(throws: MLSError.self) { try tree.validate(groupID: [2]) }
    }

    @Test func validationRejectsAParentKeyNotChainedToALeaf() throws {
        var (tree, _) = try committedTree()
        let root = tree.leafCount.root
        var parent = tree.parentNode(at: root)!
        parent.encryptionKey = try suite.generateHPKEKeyPair().publicKey
        tree.set(root, .parent(parent))
        try tree.rehash()
        #expect(throws: MLSError.self) { try tree.validate(groupID: [1]) }
    }

    @Test func validationRejectsRepeatedKeys() throws {
        let member = try TestMember(suite, "twice")
        var tree = try RatchetTree(suite, firstLeaf: try TestMember(suite, "first").leafNode)
        try tree.add(member.leafNode)
        try tree.validate(groupID: [1])
        try tree.add(member.leafNode)
        #expect(throws: MLSError.invalidTree("node 4 repeats an encryption key used elsewhere in the tree")) {
            try tree.validate(groupID: [1])
        }
    }

    @Test func validationRejectsBogusUnmergedLeaves() throws {
        var (tree, _) = try committedTree()
        let root = tree.leafCount.root
        var parent = tree.parentNode(at: root)!
        parent.unmergedLeaves = [LeafIndex(3)]  // a blank leaf
        tree.set(root, .parent(parent))
        try tree.rehash()
        #expect(throws: MLSError.self) { try tree.validate(groupID: [1]) }
    }

    @Test func validationChecksLifetimesWhenGivenATime() throws {
        let member = try TestMember(suite, "short-lived")
        var leaf = member.leafNode
        leaf.source = .keyPackage(Lifetime(notBefore: 100, notAfter: 200))
        try leaf.sign(suite, with: member.signature.privateKey, groupID: [], leafIndex: LeafIndex(0))
        let tree = try RatchetTree(suite, firstLeaf: leaf)
        try tree.validate(groupID: [], now: 150)
        #expect(throws: MLSError.self) { try tree.validate(groupID: [], now: 201) }
    }
}
