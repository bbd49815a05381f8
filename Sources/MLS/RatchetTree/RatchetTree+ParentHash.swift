/// Parent hashes (RFC 9420 §7.9): the chain from a committer's leaf to the
/// root that proves which keys one UpdatePath set together.
extension RatchetTree {
    /// The parent hash of `parent` with copath child `sibling`: the hash of
    /// `ParentHashInput`, using the sibling's tree hash as it was before
    /// `parent`'s unmerged leaves joined.
    func parentHash(of parent: NodeIndex, copathChild sibling: NodeIndex) throws -> [UInt8] {
        guard let node = parentNode(at: parent) else {
            throw MLSError.invalidTree("\(parent) is blank and has no parent hash")
        }
        var input = TLSWriter()
        try input.write(node.encryptionKey)
        try input.writeOpaque(node.parentHash)
        try input.writeOpaque(originalTreeHash(sibling, excluding: Set(node.unmergedLeaves)))
        return suite.hash(input.bytes)
    }

    /// Fills in `parent_hash` down a freshly set filtered direct path, root
    /// first, and returns the value the leaf at its bottom must carry.
    mutating func setParentHashes(along filteredPath: [NodeIndex], below leaf: LeafIndex) throws -> [UInt8] {
        var next: [UInt8] = []
        for node in filteredPath.reversed() {
            guard var parent = parentNode(at: node) else {
                throw MLSError.invalidTree("\(node) on the filtered direct path is blank")
            }
            parent.parentHash = next
            set(node, .parent(parent))
            next = try parentHash(of: node, copathChild: copathChild(of: node, toward: leaf.nodeIndex))
        }
        return next
    }

    /// The `parent_hash` a node carries: a parent's field, or a commit leaf's.
    private func storedParentHash(_ node: NodeIndex) -> [UInt8]? {
        switch self[node] {
        case .parent(let parent): return parent.parentHash
        case .leaf(let leaf):
            if case .commit(let parentHash) = leaf.source { return parentHash }
            return nil
        case nil: return nil
        }
    }

    /// Top-down check (§7.9.2): every non-blank parent P has exactly one
    /// descendant D whose parent hash is valid with respect to P.
    func verifyParentHashes() throws {
        for position in stride(from: 1, to: nodes.count, by: 2) where nodes[position] != nil {
            let parent = NodeIndex(UInt32(position))
            let unmerged = parentNode(at: parent)!.unmergedLeaves
            var validDescendants = 0
            for (child, sibling) in [(parent.left!, parent.right!), (parent.right!, parent.left!)] {
                let expected = try parentHash(of: parent, copathChild: sibling)
                let resolution = self.resolution(of: child)
                let unmergedUnderChild = Set(unmerged.map(\.nodeIndex).filter { isInSubtree($0, of: child) })
                for candidate in resolution where storedParentHash(candidate) == expected {
                    var rest = Set(resolution)
                    rest.remove(candidate)
                    if rest == unmergedUnderChild { validDescendants += 1 }
                }
            }
            guard validDescendants == 1 else {
                throw MLSError.invalidTree(
                    "\(parent) is not parent-hash valid (\(validDescendants) matching descendants)"
                )
            }
        }
    }
}
