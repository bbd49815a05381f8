/// The public ratchet tree of a group (RFC 9420 §4, §7) in array form
/// (Appendix C): node `i` is `nodes[i]`, `nil` for a blank node.
///
/// Tree hashes (§7.8) are cached per node. Every change marks the changed
/// nodes and their ancestors dirty, and only those are rehashed, so an Add,
/// Remove, Update or UpdatePath costs O(log n) hashes rather than O(n).
public struct RatchetTree: Sendable {
    public let suite: CipherSuiteProvider
    public private(set) var leafCount: LeafCount
    // Chunked storage: a commit copies the tree and changes one path, and
    // with chunks that copy costs O(n / 64) reference counts, not O(n) nodes.
    private(set) var nodes: ChunkedArray<Node?>
    private var hashes: ChunkedArray<[UInt8]>
    /// How many non-blank nodes each subtree holds, so that resolutions and
    /// filtered direct paths skip empty subtrees (such as the unused right
    /// end of the tree) instead of walking them node by node.
    private var nonBlankBelow: ChunkedArray<UInt32>
    private var dirty: Set<UInt32> = []
    /// Which node holds each encryption key and which leaf each signature
    /// key, so uniqueness checks (§7.3) do not scan the tree.
    private var encryptionKeyIndex = ShardedDictionary<HPKEPublicKey, NodeIndex>()
    private var signatureKeyIndex = ShardedDictionary<SignaturePublicKey, LeafIndex>()
    /// No leaf left of this one is blank, so Add's search for the leftmost
    /// blank leaf starts here instead of at leaf 0.
    private var firstBlankLeafCandidate = 0
    /// The number of members, how many use each credential type and how many
    /// list each type in their capabilities: what KeyPackage validation
    /// (§10.1) asks about the whole group, kept current instead of scanned.
    private(set) var memberCount = 0
    private var credentialTypeUse: [CredentialType: Int] = [:]
    private var credentialTypeSupport: [CredentialType: Int] = [:]
    /// How many cached node hashes have been recomputed after changes over
    /// this value's lifetime; the complexity tests read it.
    private(set) var treeHashComputations = 0

    /// A tree with one member.
    public init(_ suite: CipherSuiteProvider, firstLeaf: LeafNode) throws {
        self.suite = suite
        leafCount = LeafCount(rawValue: 1)!
        nodes = ChunkedArray(repeating: nil, count: 1)
        hashes = ChunkedArray(repeating: [], count: 1)
        nonBlankBelow = ChunkedArray(repeating: 0, count: 1)
        set(NodeIndex(0), .leaf(firstLeaf))
        try rehash()
    }

    /// Builds a tree from the nodes of a `ratchet_tree` extension (§12.4.3.3).
    /// The last node must be non-blank; the array is padded with blanks to the
    /// next full tree. Leaves must sit at even and parents at odd positions.
    public init(_ suite: CipherSuiteProvider, nodes received: [Node?]) throws {
        try Self.checkShape(received)
        self.suite = suite
        // n nodes need ceil((n + 1) / 2) leaves: an even count ends on a parent.
        leafCount = try LeafCount(covering: UInt32((received.count + 2) / 2))
        nodes = ChunkedArray(received)
        nodes.append(repeating: nil, count: Int(leafCount.nodeCount) - received.count)
        hashes = ChunkedArray(repeating: [], count: nodes.count)
        nonBlankBelow = ChunkedArray(repeating: 0, count: nodes.count)
        for (position, node) in nodes.enumerated() where node != nil { index(node, at: NodeIndex(UInt32(position))) }
        for level in 0...leafCount.root.level {
            // Children before parents: each level sums the one below.
            for position in stride(from: (1 << level) - 1, to: nodes.count, by: 1 << (level + 1)) {
                let node = NodeIndex(UInt32(position))
                var count: UInt32 = nodes[position] == nil ? 0 : 1
                if let left = node.left, let right = node.right {
                    count += nonBlankBelow[Int(left.rawValue)] + nonBlankBelow[Int(right.rawValue)]
                }
                nonBlankBelow[position] = count
            }
        }
        dirty = Set(0..<leafCount.nodeCount)
        try rehash()
    }

    /// Decodes the `ratchet_tree` extension body: `optional<Node> ratchet_tree<V>`.
    public init(_ suite: CipherSuiteProvider, encoded: [UInt8]) throws {
        try self.init(suite, nodes: Self.decodeNodes(encoded))
    }

    /// The nodes of a `ratchet_tree` extension body, with the checks that
    /// cost nothing per node beyond decoding (the last node is not blank, the
    /// tree fits 2^31 leaves, leaves and parents alternate), so a
    /// caller can look at them (e.g. verify a signature) before paying for
    /// tree hashes and validation.
    public static func decodeNodes(_ encoded: [UInt8]) throws -> [Node?] {
        var reader = TLSReader(encoded)
        let received = try reader.readVector(of: { try $0.readOptional(Node.self) })
        try reader.finish()
        try checkShape(received)
        return received
    }

    /// §12.4.3.1, §7.8: the last node is non-blank (so an encoding padded
    /// with blanks, which would cost a hash per blank, is refused first), the
    /// tree fits 2^31 leaves, leaves sit at even and parents at odd positions.
    static func checkShape(_ received: [Node?]) throws {
        guard let last = received.last, last != nil else {
            throw MLSError.invalidTree("the ratchet tree is empty or ends in a blank node")
        }
        guard received.count <= Int(LeafCount.maximum.nodeCount) else {
            throw MLSError.invalidTree("the ratchet tree has more nodes than 2^31 leaves allow")
        }
        for (index, node) in received.enumerated() {
            switch node {
            case .leaf where index % 2 == 1:
                throw MLSError.invalidTree("node \(index) is a leaf in a parent position")
            case .parent where index % 2 == 0:
                throw MLSError.invalidTree("node \(index) is a parent in a leaf position")
            default: break
            }
        }
    }

    /// The `ratchet_tree` extension body, without trailing blank nodes.
    public func encoded() throws -> [UInt8] {
        let lastNonBlank = nodes.lastIndex { $0 != nil } ?? -1
        var writer = TLSWriter()
        try writer.writeVector { inner in
            for node in nodes.prefix(lastNonBlank + 1) { try inner.writeOptional(node) }
        }
        return writer.bytes
    }

    // MARK: Reading

    public subscript(node: NodeIndex) -> Node? {
        leafCount.contains(node) ? nodes[Int(node.rawValue)] : nil
    }

    /// The LeafNode at `leaf`, or nil when the leaf is blank or outside the tree.
    public func leafNode(at leaf: LeafIndex) -> LeafNode? {
        guard case .leaf(let leafNode)? = self[leaf.nodeIndex] else { return nil }
        return leafNode
    }

    public func parentNode(at node: NodeIndex) -> ParentNode? {
        guard case .parent(let parent)? = self[node] else { return nil }
        return parent
    }

    /// Every non-blank leaf, in leaf order.
    public var members: [(index: LeafIndex, leaf: LeafNode)] {
        stride(from: 0, to: nodes.count, by: 2).compactMap { position in
            guard case .leaf(let leaf)? = nodes[position] else { return nil }
            return (LeafIndex(UInt32(position / 2)), leaf)
        }
    }

    /// The tree hash of the root (§7.8), the value in GroupContext.tree_hash.
    public var treeHash: [UInt8] { hashes[Int(leafCount.root.rawValue)] }

    /// The tree hash of any node.
    public func treeHash(of node: NodeIndex) -> [UInt8] { hashes[Int(node.rawValue)] }

    /// resolution(node) (§4.1.1): the non-blank nodes covering the subtree,
    /// with each non-blank parent followed by its unmerged leaves.
    public func resolution(of node: NodeIndex) -> [NodeIndex] {
        switch self[node] {
        case .leaf: return [node]
        case .parent(let parent): return [node] + parent.unmergedLeaves.map(\.nodeIndex)
        case nil:
            guard hasNonBlankDescendant(node), let left = node.left, let right = node.right else { return [] }
            return resolution(of: left) + resolution(of: right)
        }
    }

    /// Whether the resolution is non-empty, without building it.
    func hasNonBlankDescendant(_ node: NodeIndex) -> Bool {
        leafCount.contains(node) && nonBlankBelow[Int(node.rawValue)] > 0
    }

    /// The filtered direct path of a leaf (§4.1.2): its direct path without
    /// the nodes whose copath child has an empty resolution.
    public func filteredDirectPath(of leaf: LeafIndex) -> [NodeIndex] {
        var path: [NodeIndex] = []
        var child = leaf.nodeIndex
        while let parent = leafCount.parent(of: child), let sibling = leafCount.sibling(of: child) {
            if hasNonBlankDescendant(sibling) { path.append(parent) }
            child = parent
        }
        return path
    }

    /// The child of `ancestor` that is not on the path down to `descendant`.
    func copathChild(of ancestor: NodeIndex, toward descendant: NodeIndex) -> NodeIndex {
        descendant < ancestor ? ancestor.right! : ancestor.left!
    }

    /// Whether `node` lies in the subtree headed by `head`.
    func isInSubtree(_ node: NodeIndex, of head: NodeIndex) -> Bool {
        let level = head.level
        return node.level <= level && node.rawValue >> (level + 1) == head.rawValue >> (level + 1)
    }

    // MARK: Changing (§7.7, §12.1)

    /// Adds a member in the leftmost blank leaf, extending the tree if there is
    /// none, and records it as unmerged at every non-blank ancestor (§12.1.1).
    @discardableResult
    public mutating func add(_ leafNode: LeafNode) throws -> LeafIndex {
        let position = stride(from: firstBlankLeafCandidate * 2, to: nodes.count, by: 2).first { nodes[$0] == nil }
        let leaf: LeafIndex
        if let position {
            leaf = LeafIndex(UInt32(position / 2))
        } else {
            leaf = LeafIndex(leafCount.rawValue)
            try extend()
        }
        for ancestor in leafCount.directPath(of: leaf.nodeIndex) {
            guard case .parent(var parent)? = self[ancestor] else { continue }
            // Leaf indices only grow to the right, but keep the list sorted regardless (§7.1).
            parent.unmergedLeaves.append(leaf)
            parent.unmergedLeaves.sort()
            set(ancestor, .parent(parent))
        }
        set(leaf.nodeIndex, .leaf(leafNode))
        firstBlankLeafCandidate = Int(leaf.rawValue) + 1
        try rehash()
        return leaf
    }

    /// Replaces a member's leaf and blanks its direct path (§12.1.2).
    public mutating func update(_ leaf: LeafIndex, with leafNode: LeafNode) throws {
        guard self.leafNode(at: leaf) != nil else {
            throw MLSError.invalidTree("\(leaf) is blank and cannot be updated")
        }
        set(leaf.nodeIndex, .leaf(leafNode))
        blankDirectPath(of: leaf)
        try rehash()
    }

    /// Blanks a member's leaf and direct path, then drops the right half of
    /// the tree while it holds no member (§12.1.3).
    public mutating func remove(_ leaf: LeafIndex) throws {
        guard leafNode(at: leaf) != nil else { throw MLSError.invalidTree("\(leaf) is blank and cannot be removed") }
        set(leaf.nodeIndex, nil)
        blankDirectPath(of: leaf)
        truncate()
        try rehash()
    }

    /// Sets a node directly. TreeKEM uses this to place UpdatePath keys.
    mutating func set(_ node: NodeIndex, _ value: Node?) {
        let old = nodes[Int(node.rawValue)]
        if let old { unindex(old, at: node) }
        if (old == nil) != (value == nil) {
            for counted in [node] + leafCount.directPath(of: node) {
                if value == nil {
                    nonBlankBelow[Int(counted.rawValue)] -= 1
                } else {
                    nonBlankBelow[Int(counted.rawValue)] += 1
                }
            }
        }
        if value == nil, let leaf = node.leafIndex {
            firstBlankLeafCandidate = min(firstBlankLeafCandidate, Int(leaf.rawValue))
        }
        nodes[Int(node.rawValue)] = value
        index(value, at: node)
        markDirty(node)
    }

    private mutating func index(_ value: Node?, at node: NodeIndex) {
        guard let value else { return }
        encryptionKeyIndex[value.encryptionKey] = node
        if case .leaf(let leaf) = value, let leafIndex = node.leafIndex {
            signatureKeyIndex[leaf.signatureKey] = leafIndex
            countCredentials(of: leaf, by: 1)
        }
    }

    private mutating func unindex(_ value: Node, at node: NodeIndex) {
        if encryptionKeyIndex[value.encryptionKey] == node { encryptionKeyIndex[value.encryptionKey] = nil }
        if case .leaf(let leaf) = value {
            if signatureKeyIndex[leaf.signatureKey] == node.leafIndex { signatureKeyIndex[leaf.signatureKey] = nil }
            countCredentials(of: leaf, by: -1)
        }
    }

    private mutating func countCredentials(of leaf: LeafNode, by change: Int) {
        memberCount += change
        credentialTypeUse[leaf.credential.credentialType, default: 0] += change
        if credentialTypeUse[leaf.credential.credentialType] == 0 {
            credentialTypeUse[leaf.credential.credentialType] = nil
        }
        for type in Set(leaf.capabilities.credentials) {
            credentialTypeSupport[type, default: 0] += change
            if credentialTypeSupport[type] == 0 { credentialTypeSupport[type] = nil }
        }
    }

    /// The credential types members use.
    var credentialTypesInUse: Set<CredentialType> { Set(credentialTypeUse.keys) }

    /// The credential types every member supports; nil for a tree without members.
    var credentialTypesSupportedByAll: Set<CredentialType>? {
        memberCount == 0 ? nil : Set(credentialTypeSupport.filter { $0.value == memberCount }.keys)
    }

    /// The node whose encryption key is `key`, if any.
    public func node(withEncryptionKey key: HPKEPublicKey) -> NodeIndex? { encryptionKeyIndex[key] }

    /// The member whose signature key is `key`, if any.
    public func leaf(withSignatureKey key: SignaturePublicKey) -> LeafIndex? { signatureKeyIndex[key] }

    mutating func blankDirectPath(of leaf: LeafIndex) {
        for ancestor in leafCount.directPath(of: leaf.nodeIndex) where self[ancestor] != nil {
            set(ancestor, nil)
        }
    }

    /// Doubles the tree: the old tree becomes the left subtree of a new blank
    /// root and a blank right subtree is added (§7.7).
    private mutating func extend() throws {
        guard leafCount.rawValue < LeafCount.maximum.rawValue else {
            throw MLSError.invalidTree("the tree cannot grow beyond 2^31 leaves")
        }
        let oldCount = nodes.count
        let oldRoot = leafCount.root
        leafCount = LeafCount(rawValue: leafCount.rawValue * 2)!
        nodes.append(repeating: nil, count: Int(leafCount.nodeCount) - oldCount)
        hashes.append(repeating: [], count: Int(leafCount.nodeCount) - oldCount)
        nonBlankBelow.append(repeating: 0, count: Int(leafCount.nodeCount) - oldCount)
        nonBlankBelow[Int(leafCount.root.rawValue)] = nonBlankBelow[Int(oldRoot.rawValue)]
        // Existing nodes keep their indices and hashes; the new half and the new root need hashing.
        dirty.formUnion(UInt32(oldCount)..<leafCount.nodeCount)
    }

    /// Drops the right subtree while it contains no non-blank leaf (§12.1.3).
    private mutating func truncate() {
        while leafCount.rawValue > 1 {
            let half = Int(leafCount.rawValue / 2)
            let rightLeavesBlank = stride(from: half * 2, to: nodes.count, by: 2).allSatisfy { nodes[$0] == nil }
            guard rightLeavesBlank else { return }
            let oldRoot = Int(leafCount.root.rawValue)
            leafCount = LeafCount(rawValue: UInt32(half))!
            // Unindex whatever non-blank parents the dropped half and root still hold.
            if nonBlankBelow[oldRoot] > nonBlankBelow[Int(leafCount.root.rawValue)] {
                for position in Int(leafCount.nodeCount)..<nodes.count {
                    if let node = nodes[position] { unindex(node, at: NodeIndex(UInt32(position))) }
                }
            }
            nodes.removeLast(nodes.count - Int(leafCount.nodeCount))
            hashes.removeLast(hashes.count - Int(leafCount.nodeCount))
            nonBlankBelow.removeLast(nonBlankBelow.count - Int(leafCount.nodeCount))
            firstBlankLeafCandidate = min(firstBlankLeafCandidate, Int(leafCount.rawValue))
            dirty = dirty.filter { $0 < leafCount.nodeCount }
        }
    }

    // MARK: Tree hashes (§7.8)

    private mutating func markDirty(_ node: NodeIndex) {
        dirty.insert(node.rawValue)
        for ancestor in leafCount.directPath(of: node) { dirty.insert(ancestor.rawValue) }
    }

    /// Recomputes the hashes of dirty nodes, children before parents.
    mutating func rehash() throws {
        guard !dirty.isEmpty else { return }
        let order = dirty.sorted { (NodeIndex($0).level, $0) < (NodeIndex($1).level, $1) }
        for index in order {
            hashes[Int(index)] = try computeTreeHash(NodeIndex(index), unmergedExcluded: [])
        }
        treeHashComputations += order.count
        dirty.removeAll(keepingCapacity: true)
    }

    /// The hash of one node from its content and its children's hashes
    /// (`TreeHashInput`). `unmergedExcluded` blanks those leaves and strips
    /// them from unmerged lists, as `original_sibling_tree_hash` requires
    /// (§7.9); subtrees without them come from the cache.
    func computeTreeHash(_ node: NodeIndex, unmergedExcluded: Set<LeafIndex>) throws -> [UInt8] {
        var input = TLSWriter()
        if let leaf = node.leafIndex {
            input.write(NodeType.leaf.rawValue)
            input.write(leaf.rawValue)
            try input.writeOptional(unmergedExcluded.contains(leaf) ? nil : leafNode(at: leaf))
        } else {
            input.write(NodeType.parent.rawValue)
            var parent = parentNode(at: node)
            parent?.unmergedLeaves.removeAll { unmergedExcluded.contains($0) }
            try input.writeOptional(parent)
            try input.writeOpaque(originalTreeHash(node.left!, excluding: unmergedExcluded))
            try input.writeOpaque(originalTreeHash(node.right!, excluding: unmergedExcluded))
        }
        return suite.hash(input.bytes)
    }

    /// The tree hash of `node` with `excluding` leaves blanked and removed from
    /// unmerged lists; the cached hash when none of them lies below `node`.
    func originalTreeHash(_ node: NodeIndex, excluding: Set<LeafIndex>) throws -> [UInt8] {
        guard excluding.contains(where: { isInSubtree($0.nodeIndex, of: node) }) else {
            return hashes[Int(node.rawValue)]
        }
        return try computeTreeHash(node, unmergedExcluded: excluding)
    }
}
