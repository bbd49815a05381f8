import Dispatch
import Foundation

/// Validation of a received tree (RFC 9420 §12.4.3.1) and of leaf nodes (§7.3).
extension RatchetTree {
    /// Everything a joiner checks besides comparing the root hash with the
    /// GroupInfo: parent-hash chains, unmerged-leaf bookkeeping, unique keys,
    /// and every leaf node.
    ///
    /// - Parameters:
    ///   - groupID: binds update/commit leaf signatures to this group.
    ///   - requiredCapabilities: the group's `required_capabilities`, if any.
    ///   - now: seconds since the Unix epoch; when given, KeyPackage-sourced
    ///     leaves must be within their lifetime (RECOMMENDED, not required, on receipt).
    public func validate(groupID: [UInt8], requiredCapabilities: RequiredCapabilities? = nil, now: UInt64? = nil) throws
    {
        try verifyParentHashes()
        try verifyUnmergedLeaves()
        try verifyUniqueKeys()
        let members = self.members
        let credentialTypesInUse = Set(members.map { $0.leaf.credential.credentialType })
        @Sendable func check(_ member: (index: LeafIndex, leaf: LeafNode)) throws {
            try validateLeafNode(
                member.leaf,
                at: member.index,
                groupID: groupID,
                requiredCapabilities: requiredCapabilities,
                now: now
            )
            for type in credentialTypesInUse where !member.leaf.capabilities.credentials.contains(type) {
                throw MLSError.invalidLeafNode(
                    "\(member.index) does not support credential type \(type.rawValue), which a member uses"
                )
            }
        }
        // Each leaf's checks (mostly one signature verification) are independent of the others:
        // in chunks on every core; the first failing leaf in tree order is the one reported.
        guard members.count >= 32 else { return try members.forEach(check) }
        let chunks = min(members.count / 16, 4 * ProcessInfo.processInfo.activeProcessorCount)
        let failures = ChunkFailures(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let range = (chunk * members.count / chunks)..<((chunk + 1) * members.count / chunks)
            do { try members[range].forEach(check) } catch { failures.record(error, chunk: chunk) }
        }
        try failures.throwFirst()
    }

    /// The checks of §7.3 that depend only on the leaf and the group: the
    /// signature, capabilities covering its own credential and extensions and
    /// the group's requirements, and (when `now` is given) its lifetime.
    /// Whether the credential itself is acceptable is the application's call.
    public func validateLeafNode(
        _ leaf: LeafNode,
        at index: LeafIndex,
        groupID: [UInt8],
        requiredCapabilities: RequiredCapabilities? = nil,
        now: UInt64? = nil
    ) throws {
        guard try leaf.verifySignature(suite, groupID: groupID, leafIndex: index) else {
            throw MLSError.invalidLeafNode("the signature of \(index) does not verify")
        }
        let capabilities = leaf.capabilities
        guard capabilities.credentials.contains(leaf.credential.credentialType) else {
            throw MLSError.invalidLeafNode("\(index) uses a credential type its capabilities do not list")
        }
        for extensionType in leaf.extensions.map(\.extensionType) where !capabilities.supports(extensionType) {
            throw MLSError.invalidLeafNode(
                "\(index) carries extension \(extensionType.rawValue) its capabilities do not list"
            )
        }
        if let required = requiredCapabilities {
            guard required.extensionTypes.allSatisfy(capabilities.supports),
                required.proposalTypes.allSatisfy(capabilities.supports),
                required.credentialTypes.allSatisfy(capabilities.credentials.contains)
            else { throw MLSError.invalidLeafNode("\(index) lacks a capability the group requires") }
        }
        if let now, case .keyPackage(let lifetime) = leaf.source {
            guard lifetime.notBefore <= now, now <= lifetime.notAfter else {
                throw MLSError.invalidLeafNode("the lifetime of \(index) does not include the current time")
            }
        }
    }

    /// §12.4.3.1: each unmerged leaf is a non-blank descendant, listed at every
    /// non-blank node between it and the parent, in increasing order.
    private func verifyUnmergedLeaves() throws {
        for position in stride(from: 1, to: nodes.count, by: 2) {
            guard case .parent(let parent)? = nodes[position] else { continue }
            let node = NodeIndex(UInt32(position))
            guard zip(parent.unmergedLeaves, parent.unmergedLeaves.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw MLSError.invalidTree("the unmerged leaves of \(node) are not in increasing order")
            }
            for leaf in parent.unmergedLeaves {
                guard isInSubtree(leaf.nodeIndex, of: node), leafNode(at: leaf) != nil else {
                    throw MLSError.invalidTree("\(node) lists \(leaf) as unmerged, but it is not a member below it")
                }
                for between in leafCount.directPath(of: leaf.nodeIndex) {
                    guard between != node else { break }
                    if let intermediate = parentNode(at: between), !intermediate.unmergedLeaves.contains(leaf) {
                        throw MLSError.invalidTree("\(leaf) is unmerged at \(node) but not at \(between) below it")
                    }
                }
            }
        }
    }

    /// §7.3 and §12.4.3.1: no two leaves share a signature key, and no
    /// encryption key appears at two nodes.
    private func verifyUniqueKeys() throws {
        var encryptionKeys = Set<HPKEPublicKey>()
        var signatureKeys = Set<SignaturePublicKey>()
        for (position, node) in nodes.enumerated() {
            guard let node else { continue }
            guard encryptionKeys.insert(node.encryptionKey).inserted else {
                throw MLSError.invalidTree("node \(position) repeats an encryption key used elsewhere in the tree")
            }
            if case .leaf(let leaf) = node, !signatureKeys.insert(leaf.signatureKey).inserted {
                throw MLSError.invalidTree("node \(position) repeats another member's signature key")
            }
        }
    }
}

/// The first error of each chunk of a concurrent check, thrown in chunk order afterwards.
private final class ChunkFailures: @unchecked Sendable {
    private var errors: [(any Error)?]
    private let lock = NSLock()

    init(count: Int) { errors = Array(repeating: nil, count: count) }

    func record(_ error: any Error, chunk: Int) {
        lock.withLock { errors[chunk] = error }
    }

    func throwFirst() throws {
        if let error = lock.withLock({ errors.lazy.compactMap { $0 }.first }) { throw error }
    }
}
