import Testing

@testable import MLS

/// Appendix C tree math beyond the vectors: the 2^31-leaf extreme and the
/// helpers the vectors do not cover.
@Suite struct TreeMathTests {
    @Test func onlyFullTreesAreLeafCounts() throws {
        #expect(LeafCount(rawValue: 0) == nil)
        #expect(LeafCount(rawValue: 3) == nil)
        #expect(LeafCount(rawValue: (1 << 31) + 1) == nil)
        #expect(LeafCount(rawValue: 1 << 31) == LeafCount.maximum)
        #expect(try LeafCount(covering: 0).rawValue == 1)
        #expect(try LeafCount(covering: 5).rawValue == 8)
        #expect(try LeafCount(covering: 1 << 31).rawValue == 1 << 31)
        #expect(throws: MLSError.self) { try LeafCount(covering: (1 << 31) + 1) }
    }

    @Test func theLargestTreeDoesNotOverflow() {
        let n = LeafCount.maximum
        #expect(n.nodeCount == UInt32.max)
        #expect(n.root == NodeIndex((1 << 31) - 1))
        #expect(n.root.level == 31)
        #expect(n.parent(of: n.root) == nil)
        let lastLeaf = LeafIndex((1 << 31) - 1).nodeIndex
        #expect(lastLeaf.rawValue == UInt32.max - 1)
        #expect(n.sibling(of: lastLeaf) == NodeIndex(UInt32.max - 3))
        let path = n.directPath(of: lastLeaf)
        #expect(path.count == 31)
        #expect(path.last == n.root)
        #expect(zip(path, path.dropFirst()).allSatisfy { n.parent(of: $0) == $1 })
        #expect(n.copath(of: lastLeaf).count == 31)
        #expect(n.copath(of: lastLeaf).last == n.root.left)
        #expect(n.root.right == NodeIndex((1 << 31) - 1 + (1 << 30)))
        #expect(n.commonAncestor(LeafIndex(0).nodeIndex, lastLeaf) == n.root)
        // A node index beyond the tree has no parent rather than a wrong one.
        #expect(LeafCount(rawValue: 4)!.parent(of: NodeIndex(7)) == nil)
    }

    @Test func commonAncestorMatchesTheSemanticDefinition() {
        let n = LeafCount(rawValue: 16)!
        for a in 0..<n.nodeCount {
            for b in 0..<n.nodeCount {
                let x = NodeIndex(a)
                let y = NodeIndex(b)
                let ancestorsOfX = [x] + n.directPath(of: x)
                let ancestorsOfY = Set([y] + n.directPath(of: y))
                let expected = ancestorsOfX.first { ancestorsOfY.contains($0) }
                #expect(n.commonAncestor(x, y) == expected, "common ancestor of \(a) and \(b)")
            }
        }
    }

    @Test func copathIsTheSiblingOfEachNodeBelowTheRoot() {
        let n = LeafCount(rawValue: 8)!
        let leaf = LeafIndex(5).nodeIndex
        #expect(n.directPath(of: leaf).map(\.rawValue) == [9, 11, 7])
        #expect(n.copath(of: leaf).map(\.rawValue) == [8, 13, 3])
        #expect(n.directPath(of: n.root).isEmpty)
        #expect(n.copath(of: n.root).isEmpty)
    }
}
