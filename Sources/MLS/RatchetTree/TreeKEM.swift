import Dispatch
import Foundation

/// The private keys a member holds for the ratchet tree (RFC 9420 §4.2): its
/// own leaf's key and those of the parent nodes on its direct path it knows.
public struct TreeKEMPrivateKeys: Hashable, Sendable, CustomStringConvertible {
    public var leafIndex: LeafIndex
    public var leafKey: HPKEPrivateKey
    public private(set) var pathKeys: [NodeIndex: HPKEPrivateKey]

    public init(leafIndex: LeafIndex, leafKey: HPKEPrivateKey, pathKeys: [NodeIndex: HPKEPrivateKey] = [:]) {
        self.leafIndex = leafIndex
        self.leafKey = leafKey
        self.pathKeys = pathKeys
    }

    public var description: String { "TreeKEMPrivateKeys(\(leafIndex), \(pathKeys.count) path keys, redacted)" }

    /// The private key for `node`, if this member holds it.
    public func privateKey(for node: NodeIndex) -> HPKEPrivateKey? {
        node == leafIndex.nodeIndex ? leafKey : pathKeys[node]
    }

    /// Stores the key pair derived from `pathSecret` at `node` (§7.4:
    /// node_secret = DeriveSecret(path_secret, "node")) and returns its public key.
    @discardableResult
    public mutating func setPathSecret(
        _ pathSecret: [UInt8],
        at node: NodeIndex,
        _ suite: CipherSuiteProvider
    ) throws -> HPKEPublicKey {
        let pair = try suite.deriveHPKEKeyPair(ikm: suite.deriveSecret(pathSecret, label: "node"))
        pathKeys[node] = pair.privateKey
        return pair.publicKey
    }

    /// Whether every held key matches the public key at its node in `tree`.
    public func isConsistent(with tree: RatchetTree) throws -> Bool {
        guard let leaf = tree.leafNode(at: leafIndex),
            try tree.suite.hpkePublicKey(for: leafKey) == leaf.encryptionKey
        else { return false }
        for (node, key) in pathKeys {
            guard let parent = tree.parentNode(at: node), try tree.suite.hpkePublicKey(for: key) == parent.encryptionKey
            else { return false }
        }
        return true
    }

    /// Forgets keys for nodes that are blank or no longer on this member's
    /// direct path, e.g. after a Remove blanked or truncated them (§7.5: delete outdated keys).
    public mutating func prune(to tree: RatchetTree) {
        let path = Set(tree.leafCount.directPath(of: leafIndex.nodeIndex))
        pathKeys = pathKeys.filter { path.contains($0.key) && tree.parentNode(at: $0.key) != nil }
    }

    /// Decrypts and follows an UpdatePath already merged into `tree`
    /// (§7.5 "decrypt the path secrets"): finds the copath node this member
    /// can decrypt for, derives every key above it, checks each against the
    /// public key the sender published, and returns the new keys, the
    /// decrypted path secret and the commit secret.
    ///
    /// - Parameters:
    ///   - groupContext: the provisional GroupContext (new epoch, tree hash of `tree`).
    ///   - newLeaves: leaves added by the same Commit, which the sender did not encrypt to.
    public func applying(
        _ path: UpdatePath,
        from sender: LeafIndex,
        in tree: RatchetTree,
        groupContext: GroupContext,
        excluding newLeaves: Set<LeafIndex> = []
    ) throws -> (keys: TreeKEMPrivateKeys, pathSecret: [UInt8], commitSecret: [UInt8]) {
        let suite = tree.suite
        guard sender != leafIndex else {
            throw MLSError.invalidUpdatePath(
                "a member cannot process its own UpdatePath; it keeps the secrets it generated"
            )
        }
        let filtered = tree.filteredDirectPath(of: sender)
        guard path.nodes.count == filtered.count else {
            throw MLSError.invalidUpdatePath(
                "the path has \(path.nodes.count) nodes but the sender's filtered direct path has \(filtered.count)"
            )
        }
        let me = leafIndex.nodeIndex
        guard
            let start = filtered.firstIndex(where: {
                tree.isInSubtree(me, of: tree.copathChild(of: $0, toward: sender.nodeIndex))
            })
        else {
            throw MLSError.invalidUpdatePath("\(leafIndex) is not below any node of the sender's path")
        }
        let resolution = tree.excludingLeaves(
            tree.resolution(of: tree.copathChild(of: filtered[start], toward: sender.nodeIndex)),
            newLeaves
        )
        let ciphertexts = path.nodes[start].encryptedPathSecret
        guard ciphertexts.count == resolution.count else {
            throw MLSError.invalidUpdatePath(
                "\(ciphertexts.count) ciphertexts for a resolution of \(resolution.count) nodes"
            )
        }
        guard let position = resolution.firstIndex(where: { privateKey(for: $0) != nil }) else {
            throw MLSError.invalidUpdatePath("no key to decrypt the path secret")
        }
        let context = try groupContext.tlsEncoded()
        let pathSecret = try suite.decryptWithLabel(
            privateKey(for: resolution[position])!,
            label: "UpdatePathNode",
            context: context,
            ciphertext: ciphertexts[position]
        )

        var keys = self
        keys.pathKeys = keys.pathKeys.filter { !tree.isInSubtreeAbove($0.key, leaf: sender) }
        var secret = pathSecret
        for index in start..<filtered.count {
            if index > start { secret = try suite.deriveSecret(secret, label: "path") }
            let derived = try keys.setPathSecret(secret, at: filtered[index], suite)
            guard derived == path.nodes[index].encryptionKey else {
                throw MLSError.invalidUpdatePath("the public key at \(filtered[index]) does not match its path secret")
            }
        }
        keys.prune(to: tree)
        return (keys, pathSecret, try suite.deriveSecret(secret, label: "path"))
    }
}

/// An UpdatePath generated for a Commit but not yet encrypted (RFC 9420 §7.4,
/// §7.5). Encryption needs the provisional GroupContext, whose tree hash is
/// that of `tree`, so it is a second step.
public struct PreparedUpdatePath: Sendable {
    /// The tree with the new path and leaf in place.
    public let tree: RatchetTree
    public let sender: LeafIndex
    public let leafNode: LeafNode
    /// The committer's private keys after the path.
    public let privateKeys: TreeKEMPrivateKeys
    public let commitSecret: [UInt8]
    let filteredPath: [NodeIndex]
    let pathSecrets: [[UInt8]]

    /// The path secret for the `index`-th node of the filtered direct path (for Welcome's `path_secret`).
    public func pathSecret(for node: NodeIndex) -> [UInt8]? {
        filteredPath.firstIndex(of: node).map { pathSecrets[$0] }
    }

    /// The lowest node of the path that is an ancestor of `leaf`, i.e. the
    /// one whose path secret a new member at `leaf` receives in its Welcome.
    public func commonAncestorNode(with leaf: LeafIndex) -> NodeIndex? {
        filteredPath.first { tree.isInSubtree(leaf.nodeIndex, of: $0) }
    }

    /// Encrypts each path secret to the resolution of the copath child below
    /// its node, leaving out leaves added by the same Commit (§7.6).
    ///
    /// The encryptions are independent, so large ones run on all cores (a
    /// fresh tree's copath resolutions can hold thousands of leaves).
    public func encrypt(groupContext: GroupContext, excluding newLeaves: Set<LeafIndex> = []) throws -> UpdatePath {
        let suite = tree.suite
        let context = try groupContext.tlsEncoded()
        let recipients = zip(filteredPath, pathSecrets).map { node, _ in
            tree.excludingLeaves(tree.resolution(of: tree.copathChild(of: node, toward: sender.nodeIndex)), newLeaves)
        }
        let jobs = recipients.enumerated().flatMap { index, nodes in
            nodes.map { (path: index, key: tree[$0]!.encryptionKey) }
        }
        let ciphertexts = try Self.encryptAll(
            jobs.map { ($0.key, pathSecrets[$0.path]) },
            suite: suite,
            context: context
        )
        var next = ciphertexts.makeIterator()
        let nodes = zip(filteredPath, recipients).map { node, resolution in
            UpdatePathNode(
                encryptionKey: tree[node]!.encryptionKey,
                encryptedPathSecret: resolution.map { _ in next.next()! }
            )
        }
        return UpdatePath(leafNode: leafNode, nodes: nodes)
    }

    /// EncryptWithLabel("UpdatePathNode") for each (key, secret), in order; concurrently when there are many.
    private static func encryptAll(
        _ jobs: [(HPKEPublicKey, [UInt8])],
        suite: CipherSuiteProvider,
        context: [UInt8]
    ) throws -> [HPKECiphertext] {
        @Sendable func seal(_ job: (HPKEPublicKey, [UInt8])) throws -> HPKECiphertext {
            try suite.encryptWithLabel(job.0, label: "UpdatePathNode", context: context, plaintext: job.1)
        }
        guard jobs.count >= 8 else { return try jobs.map(seal) }
        let results = ConcurrentResults<HPKECiphertext>(count: jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            results.set(index, Result { try seal(jobs[index]) })
        }
        return try results.values()
    }
}

/// Slots written once each from concurrent iterations, read after all finish.
private final class ConcurrentResults<Value>: @unchecked Sendable {
    private var slots: [Result<Value, Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<Value, Error>) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    func values() throws -> [Value] {
        try slots.map { try $0!.get() }
    }
}

extension RatchetTree {
    /// Generates a fresh UpdatePath for `sender` (§7.4, §7.5): new path
    /// secrets and key pairs up the filtered direct path, parent hashes, and a
    /// new leaf with a fresh encryption key, signed by `signer`.
    ///
    /// - Parameter template: the sender's new leaf content (credential,
    ///   capabilities, extensions, signature key); its encryption key, source
    ///   and signature are replaced. Defaults to the current leaf.
    public func prepareUpdatePath(
        from sender: LeafIndex,
        signer: SignaturePrivateKey,
        groupID: [UInt8],
        leafNode template: LeafNode? = nil
    ) throws -> PreparedUpdatePath {
        guard let current = leafNode(at: sender) else { throw MLSError.invalidUpdatePath("\(sender) is blank") }
        let filtered = filteredDirectPath(of: sender)
        var tree = self
        tree.blankDirectPath(of: sender)

        let leafKeys = try suite.generateHPKEKeyPair()
        var privateKeys = TreeKEMPrivateKeys(leafIndex: sender, leafKey: leafKeys.privateKey)
        var secret = suite.randomBytes(suite.hashLength)
        var secrets: [[UInt8]] = []
        for node in filtered {
            secrets.append(secret)
            let publicKey = try privateKeys.setPathSecret(secret, at: node, suite)
            tree.set(node, .parent(ParentNode(encryptionKey: publicKey, parentHash: [])))
            secret = try suite.deriveSecret(secret, label: "path")
        }

        var leaf = template ?? current
        leaf.encryptionKey = leafKeys.publicKey
        leaf.source = .commit(parentHash: try tree.setParentHashes(along: filtered, below: sender))
        try leaf.sign(suite, with: signer, groupID: groupID, leafIndex: sender)
        tree.set(sender.nodeIndex, .leaf(leaf))
        try tree.rehash()
        return PreparedUpdatePath(
            tree: tree,
            sender: sender,
            leafNode: leaf,
            privateKeys: privateKeys,
            commitSecret: secret,
            filteredPath: filtered,
            pathSecrets: secrets
        )
    }

    /// Merges a received UpdatePath (§7.5 "merge UpdatePath into the tree"):
    /// checks its shape and the new leaf, blanks the sender's direct path,
    /// installs the new keys and verifies the leaf's parent hash.
    ///
    /// - Parameter isNewLeaf: the sender joined by this very commit (an
    ///   external commit), so its leaf has no previous version to differ from.
    /// - Parameter requiredCapabilities: the group's `required_capabilities`
    ///   after the commit; the new leaf must meet them (§7.3).
    public mutating func merge(
        _ path: UpdatePath,
        from sender: LeafIndex,
        groupID: [UInt8],
        isNewLeaf: Bool = false,
        requiredCapabilities: RequiredCapabilities? = nil
    ) throws {
        guard let current = leafNode(at: sender) else {
            throw MLSError.invalidUpdatePath("the sender \(sender) is blank")
        }
        let filtered = filteredDirectPath(of: sender)
        guard path.nodes.count == filtered.count else {
            throw MLSError.invalidUpdatePath(
                "the path has \(path.nodes.count) nodes but the sender's filtered direct path has \(filtered.count)"
            )
        }
        guard case .commit(let claimedParentHash) = path.leafNode.source else {
            throw MLSError.invalidLeafNode("the leaf node of an UpdatePath must have source commit")
        }
        guard isNewLeaf || path.leafNode.encryptionKey != current.encryptionKey else {
            throw MLSError.invalidLeafNode("the UpdatePath leaf reuses the sender's old encryption key")
        }
        // §12.4.2: no key of the path may already be in the tree.
        for key in path.nodes.map(\.encryptionKey) + (isNewLeaf ? [] : [path.leafNode.encryptionKey])
        where node(withEncryptionKey: key) != nil {
            throw MLSError.invalidUpdatePath("the UpdatePath reuses an encryption key already in the tree")
        }
        if let holder = leaf(withSignatureKey: path.leafNode.signatureKey), holder != sender {
            throw MLSError.invalidLeafNode("the UpdatePath leaf uses another member's signature key")
        }
        try validateLeafNode(path.leafNode, at: sender, groupID: groupID, requiredCapabilities: requiredCapabilities)
        var tree = self
        tree.blankDirectPath(of: sender)
        for (node, pathNode) in zip(filtered, path.nodes) {
            tree.set(node, .parent(ParentNode(encryptionKey: pathNode.encryptionKey, parentHash: [])))
        }
        guard try tree.setParentHashes(along: filtered, below: sender) == claimedParentHash else {
            throw MLSError.invalidUpdatePath("the leaf's parent hash does not match the path")
        }
        tree.set(sender.nodeIndex, .leaf(path.leafNode))
        try tree.rehash()
        self = tree
    }

    /// `nodes` without the leaves in `excluded` (new members of this Commit).
    func excludingLeaves(_ nodes: [NodeIndex], _ excluded: Set<LeafIndex>) -> [NodeIndex] {
        excluded.isEmpty ? nodes : nodes.filter { $0.leafIndex.map { !excluded.contains($0) } ?? true }
    }

    /// Whether `node` is on the direct path of `leaf` (strictly above it).
    func isInSubtreeAbove(_ node: NodeIndex, leaf: LeafIndex) -> Bool {
        node != leaf.nodeIndex && isInSubtree(leaf.nodeIndex, of: node)
    }
}
