/// The secret tree of one epoch (RFC 9420 §9): per-sender ratchets derived
/// from the epoch's `encryption_secret`.
///
/// Derivation is lazy: only the path to a sender's leaf is expanded when that
/// sender is first used, and each node secret is deleted as soon as its
/// children exist, as the deletion schedule of §9.2 requires. The unexpanded
/// frontier stays O(log n) per used leaf, so a 10,000-member group does not
/// derive 20,000 secrets up front.
public struct SecretTree: Sendable {
    public let suite: CipherSuiteProvider
    public let leafCount: LeafCount
    public let configuration: SecretTreeConfiguration
    /// Node secrets not yet consumed. A node is removed once its children (or,
    /// for a leaf, its two ratchets) have been derived from it.
    private(set) var nodeSecrets: [NodeIndex: [UInt8]]
    private(set) var ratchets: [LeafIndex: (handshake: HashRatchet, application: HashRatchet)] = [:]

    public init(
        _ suite: CipherSuiteProvider,
        encryptionSecret: [UInt8],
        leafCount: LeafCount,
        configuration: SecretTreeConfiguration = .default
    ) {
        self.suite = suite
        self.leafCount = leafCount
        self.configuration = configuration
        nodeSecrets = [leafCount.root: encryptionSecret]
    }

    /// Rebuilds a tree from stored state.
    init(
        _ suite: CipherSuiteProvider,
        leafCount: LeafCount,
        configuration: SecretTreeConfiguration,
        nodeSecrets: [NodeIndex: [UInt8]],
        ratchets: [LeafIndex: (handshake: HashRatchet, application: HashRatchet)]
    ) {
        self.suite = suite
        self.leafCount = leafCount
        self.configuration = configuration
        self.nodeSecrets = nodeSecrets
        self.ratchets = ratchets
    }

    /// How many node secrets are held: the lazily expanded frontier (for tests of §9.2 deletion).
    var heldNodeSecretCount: Int { nodeSecrets.count }

    /// The key and nonce for this member's next message of `type`.
    public mutating func nextKey(for leaf: LeafIndex, _ type: RatchetType) throws -> RatchetKey {
        try withRatchet(leaf, type) { ratchet, suite in try ratchet.next(suite) }
    }

    /// The key and nonce that `leaf` used for `generation`. Consumes it: a second
    /// request for the same generation fails with ``MLSError/generationAlreadyUsed(_:)``.
    public mutating func key(for leaf: LeafIndex, _ type: RatchetType, generation: UInt32) throws -> RatchetKey {
        let configuration = configuration
        return try withRatchet(leaf, type) { ratchet, suite in
            try ratchet.key(for: generation, suite, configuration)
        }
    }

    private mutating func withRatchet(
        _ leaf: LeafIndex,
        _ type: RatchetType,
        _ body: (inout HashRatchet, CipherSuiteProvider) throws -> RatchetKey
    ) throws -> RatchetKey {
        var pair = try ratchetPair(for: leaf)
        defer { ratchets[leaf] = pair }
        switch type {
        case .handshake: return try body(&pair.handshake, suite)
        case .application: return try body(&pair.application, suite)
        }
    }

    private mutating func ratchetPair(for leaf: LeafIndex) throws -> (handshake: HashRatchet, application: HashRatchet)
    {
        if let existing = ratchets[leaf] { return existing }
        guard leafCount.contains(leaf) else { throw MLSError.invalidTreeIndex(leaf.rawValue) }
        let target = leaf.nodeIndex
        // The lowest ancestor whose secret is still held; everything below it is derived now.
        var node = target
        while nodeSecrets[node] == nil {
            guard let parent = leafCount.parent(of: node) else { throw MLSError.invalidTreeIndex(leaf.rawValue) }
            node = parent
        }
        while node != target, let secret = nodeSecrets.removeValue(forKey: node), let left = node.left,
            let right = node.right
        {
            nodeSecrets[left] = try suite.expandWithLabel(
                secret,
                label: "tree",
                context: Array("left".utf8),
                length: suite.hashLength
            )
            nodeSecrets[right] = try suite.expandWithLabel(
                secret,
                label: "tree",
                context: Array("right".utf8),
                length: suite.hashLength
            )
            node = target < node ? left : right
        }
        guard let leafSecret = nodeSecrets.removeValue(forKey: target) else {
            throw MLSError.invalidTreeIndex(leaf.rawValue)
        }
        let pair = (
            handshake: HashRatchet(
                secret: try suite.expandWithLabel(leafSecret, label: "handshake", context: [], length: suite.hashLength)
            ),
            application: HashRatchet(
                secret: try suite.expandWithLabel(
                    leafSecret,
                    label: "application",
                    context: [],
                    length: suite.hashLength
                )
            )
        )
        ratchets[leaf] = pair
        return pair
    }
}
