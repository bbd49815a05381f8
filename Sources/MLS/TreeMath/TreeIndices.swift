/// A leaf's position among the leaves of the ratchet tree (RFC 9420 §4.1,
/// `uint32 leaf_index`).
public struct LeafIndex: RawRepresentable, Hashable, Comparable, Sendable, TLSCodable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }

    /// The leaf's node in the array representation: leaf `i` is node `2i` (Appendix C).
    ///
    /// A leaf index off the wire can be anything up to 2^32 - 1, but only
    /// leaves below 2^31 have a node index. Wrapping (`2i mod 2^32`) would turn
    /// leaf 2^31 + k into leaf k, a real member; instead every leaf beyond
    /// that maps to ``NodeIndex/outsideEveryTree``, which no tree contains, so
    /// every lookup through it finds nothing and the caller's "not a member" error applies.
    public var nodeIndex: NodeIndex {
        rawValue < LeafCount.maximum.rawValue ? NodeIndex(rawValue << 1) : .outsideEveryTree
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "leaf \(rawValue)" }
    public func encode(to writer: inout TLSWriter) { writer.write(rawValue) }
    public init(from reader: inout TLSReader) throws { rawValue = try reader.read() }
}

/// A node's position in the array representation of the tree (RFC 9420 Appendix C):
/// leaves at even indices, parents at odd ones.
public struct NodeIndex: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { rawValue = value }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "node \(rawValue)" }

    /// 2^32 - 1: the largest tree (2^31 leaves) has nodes 0 ... 2^32 - 2, so
    /// no tree contains this index; it stands for leaves that have no node.
    public static let outsideEveryTree = NodeIndex(UInt32.max)

    public var isLeaf: Bool { rawValue & 1 == 0 }

    /// The leaf at this node, if it is one.
    public var leafIndex: LeafIndex? { isLeaf ? LeafIndex(rawValue / 2) : nil }

    /// Leaves are level 0; a parent is one above its children (the number of trailing one bits).
    public var level: Int { (~rawValue).trailingZeroBitCount }

    /// The left child, or nil for a leaf.
    public var left: NodeIndex? {
        let k = level
        guard k > 0 else { return nil }
        return NodeIndex(rawValue ^ (1 << (k - 1)))
    }

    /// The right child, or nil for a leaf.
    public var right: NodeIndex? {
        let k = level
        guard k > 0 else { return nil }
        return NodeIndex(rawValue ^ (3 << (k - 1)))
    }
}

/// The number of leaves in a ratchet tree. RFC 9420 trees are always full, so
/// this is a power of two; every tree-relative index calculation goes through it.
public struct LeafCount: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    /// The largest tree this implementation addresses: 2^31 leaves, whose
    /// 2^32 - 1 nodes still have `uint32` indices.
    public static let maximum = LeafCount(unchecked: 1 << 31)

    /// Fails unless `rawValue` is a power of two no larger than 2^31.
    public init?(rawValue: UInt32) {
        guard rawValue > 0, rawValue & (rawValue - 1) == 0, rawValue <= 1 << 31 else { return nil }
        self.rawValue = rawValue
    }

    private init(unchecked: UInt32) { rawValue = unchecked }

    /// The smallest full tree with room for `leaves` leaves.
    public init(covering leaves: UInt32) throws {
        guard leaves <= 1 << 31 else { throw MLSError.invalidTreeIndex(leaves) }
        var width: UInt32 = 1
        while width < leaves { width <<= 1 }
        rawValue = width
    }

    public var description: String { "\(rawValue) leaves" }

    /// node_width(n) = 2(n - 1) + 1.
    public var nodeCount: UInt32 { 2 * (rawValue - 1) + 1 }

    /// root(n): for a full tree, the node at index n - 1.
    public var root: NodeIndex { NodeIndex(rawValue - 1) }

    public func contains(_ node: NodeIndex) -> Bool { node.rawValue < nodeCount }
    public func contains(_ leaf: LeafIndex) -> Bool { leaf.rawValue < rawValue }

    /// parent(x, n), or nil for the root and for nodes outside the tree.
    public func parent(of node: NodeIndex) -> NodeIndex? {
        guard contains(node), node != root else { return nil }
        let k = node.level
        let x = node.rawValue
        // k < 31 because only the root of a 2^31-leaf tree is at level 31.
        let b = (x >> (k + 1)) & 1
        return NodeIndex((x | (1 << k)) ^ (b << (k + 1)))
    }

    /// sibling(x, n), or nil for the root.
    public func sibling(of node: NodeIndex) -> NodeIndex? {
        guard let parent = parent(of: node) else { return nil }
        return node < parent ? parent.right : parent.left
    }

    /// direct_path(x, n): the node's ancestors from its parent up to the root.
    public func directPath(of node: NodeIndex) -> [NodeIndex] {
        var path: [NodeIndex] = []
        var current = node
        while let next = parent(of: current) {
            path.append(next)
            current = next
        }
        return path
    }

    /// copath(x, n): the sibling of the node and of each ancestor below the root.
    public func copath(of node: NodeIndex) -> [NodeIndex] {
        var path: [NodeIndex] = []
        var current = node
        while let sibling = sibling(of: current), let next = parent(of: current) {
            path.append(sibling)
            current = next
        }
        return path
    }

    /// The lowest node on the direct paths (or equal to) both nodes.
    public func commonAncestor(_ a: NodeIndex, _ b: NodeIndex) -> NodeIndex {
        let (la, lb) = (a.level + 1, b.level + 1)
        if la <= lb, a.rawValue >> lb == b.rawValue >> lb { return b }
        if lb <= la, a.rawValue >> la == b.rawValue >> la { return a }
        var (x, y, k) = (a.rawValue, b.rawValue, 0)
        while x != y {
            x >>= 1
            y >>= 1
            k += 1
        }
        return NodeIndex((x << k) + (1 << (k - 1)) - 1)
    }
}
