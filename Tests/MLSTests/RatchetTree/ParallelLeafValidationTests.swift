import Testing

@testable import MLS

/// A received tree's leaves are checked on every core (issue 15); the result is the same as
/// one by one: every leaf is checked, and the first failing leaf in tree order is reported.
@Suite struct ParallelLeafValidationTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// `count` real members, each leaf signed by its own key, added to one tree.
    func tree(of count: Int) throws -> RatchetTree {
        let members = try (0..<count).map { try TestMember(suite, "member\($0)") }
        var tree = try RatchetTree(suite, firstLeaf: members[0].leafNode)
        for member in members.dropFirst() { try tree.add(member.leafNode) }
        return tree
    }

    func forging(_ leaves: [UInt32], in tree: RatchetTree) throws -> RatchetTree {
        var tree = tree
        for leaf in leaves {
            var forged = tree.leafNode(at: LeafIndex(leaf))!
            forged.credential = .basic(identity: Array("mallory\(leaf)".utf8))
            tree.set(LeafIndex(leaf).nodeIndex, .leaf(forged))
        }
        try tree.rehash()
        return tree
    }

    @Test func everyLeafOfALargeTreeIsCheckedAndTheFirstBadOneIsNamed() throws {
        let tree = try tree(of: 90)
        try tree.validate(groupID: [1])
        // The last leaf alone: checked even though it is in the last chunk.
        #expect(throws: MLSError.invalidLeafNode("the signature of leaf 89 does not verify")) {
            try forging([89], in: tree).validate(groupID: [1])
        }
        // Two bad leaves in different chunks: the one first in tree order, every time.
        let twoBad = try forging([77, 31], in: tree)
        for _ in 0..<5 {
            #expect(throws: MLSError.invalidLeafNode("the signature of leaf 31 does not verify")) {
                try twoBad.validate(groupID: [1])
            }
        }
    }
}
