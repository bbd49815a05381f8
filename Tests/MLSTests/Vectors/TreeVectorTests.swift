import Foundation
import Testing

@testable import MLS

/// The official vectors for the ratchet tree and TreeKEM (RFC 9420 §4–7, §12.1).
@Suite struct TreeVectorTests {
    // MARK: tree-validation.json

    struct TreeValidation: Decodable {
        let cipherSuite: UInt16
        let tree: Hex
        let groupId: Hex
        let resolutions: [[UInt32]]
        let treeHashes: [Hex]
    }

    static let treeValidation = VectorFile<TreeValidation>(
        name: "tree-validation.json",
        cipherSuite: { $0.cipherSuite }
    ) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let tree = try RatchetTree(suite, encoded: entry.tree.bytes)
        try check(try tree.encoded(), entry.tree.bytes, "tree re-encodes")
        try check(Int(tree.leafCount.nodeCount), entry.treeHashes.count, "node count")
        for index in 0..<tree.leafCount.nodeCount {
            let node = NodeIndex(index)
            try check(tree.resolution(of: node).map(\.rawValue), entry.resolutions[Int(index)], "resolutions[\(index)]")
            try check(tree.treeHash(of: node), entry.treeHashes[Int(index)].bytes, "tree_hashes[\(index)]")
        }
        try tree.validate(groupID: entry.groupId.bytes)
    }

    @Test func treeValidationVectors() throws {
        let report = try Self.treeValidation.runAndReport()
        #expect(report.failed == 0 && report.passed == 70 && report.skipped == 28)
    }

    // MARK: tree-operations.json

    struct TreeOperation: Decodable {
        let cipherSuite: UInt16
        let treeBefore: Hex
        let proposal: Hex
        let proposalSender: UInt32
        let treeHashBefore: Hex
        let treeAfter: Hex
        let treeHashAfter: Hex
    }

    static let treeOperations = VectorFile<TreeOperation>(name: "tree-operations.json", cipherSuite: { $0.cipherSuite })
    { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        var tree = try RatchetTree(suite, encoded: entry.treeBefore.bytes)
        try check(tree.treeHash, entry.treeHashBefore.bytes, "tree_hash_before")
        switch try Proposal(tlsEncoded: entry.proposal.bytes) {
        case .add(let keyPackage): try tree.add(keyPackage.leafNode)
        case .update(let leafNode): try tree.update(LeafIndex(entry.proposalSender), with: leafNode)
        case .remove(let removed): try tree.remove(removed)
        case let other: throw VectorError.failed("unexpected proposal \(other.proposalType.rawValue)")
        }
        try check(try tree.encoded(), entry.treeAfter.bytes, "tree_after")
        try check(tree.treeHash, entry.treeHashAfter.bytes, "tree_hash_after")
    }

    @Test func treeOperationsVectors() throws {
        let report = try Self.treeOperations.runAndReport()
        #expect(report.failed == 0 && report.passed == 5)
    }

    // MARK: treekem.json

    struct TreeKEM: Decodable {
        struct PathSecret: Decodable {
            let node: UInt32
            let pathSecret: Hex
        }
        struct LeafPrivate: Decodable {
            let index: UInt32
            let encryptionPriv: Hex
            let signaturePriv: Hex
            let pathSecrets: [PathSecret]
        }
        struct Path: Decodable {
            let sender: UInt32
            let updatePath: Hex
            let pathSecrets: [Hex?]
            let commitSecret: Hex
            let treeHashAfter: Hex
        }
        let cipherSuite: UInt16
        let groupId: Hex
        let epoch: UInt64
        let confirmedTranscriptHash: Hex
        let ratchetTree: Hex
        let leavesPrivate: [LeafPrivate]
        let updatePaths: [Path]
    }

    static let treeKEM = VectorFile<TreeKEM>(name: "treekem.json", cipherSuite: { $0.cipherSuite }) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let tree = try RatchetTree(suite, encoded: entry.ratchetTree.bytes)
        func context(for tree: RatchetTree) -> GroupContext {
            GroupContext(
                cipherSuite: suite.suite,
                groupID: entry.groupId.bytes,
                epoch: entry.epoch,
                treeHash: tree.treeHash,
                confirmedTranscriptHash: entry.confirmedTranscriptHash.bytes
            )
        }

        var privates: [LeafIndex: TreeKEMPrivateKeys] = [:]
        var signers: [LeafIndex: SignaturePrivateKey] = [:]
        for leaf in entry.leavesPrivate {
            let index = LeafIndex(leaf.index)
            var keys = TreeKEMPrivateKeys(leafIndex: index, leafKey: HPKEPrivateKey(leaf.encryptionPriv.bytes))
            for secret in leaf.pathSecrets {
                try keys.setPathSecret(secret.pathSecret.bytes, at: NodeIndex(secret.node), suite)
            }
            try check(try keys.isConsistent(with: tree), "leaves_private[\(leaf.index)] matches the tree")
            privates[index] = keys
            signers[index] = SignaturePrivateKey(leaf.signaturePriv.bytes)
        }

        for (pathNumber, path) in entry.updatePaths.enumerated() {
            let name = "update_paths[\(pathNumber)]"
            let sender = LeafIndex(path.sender)
            let updatePath = try UpdatePath(tlsEncoded: path.updatePath.bytes)
            var merged = tree
            try merged.merge(updatePath, from: sender, groupID: entry.groupId.bytes)
            try check(merged.treeHash, path.treeHashAfter.bytes, "\(name).tree_hash_after")
            for (receiver, keys) in privates where receiver != sender {
                let result = try keys.applying(updatePath, from: sender, in: merged, groupContext: context(for: merged))
                try check(
                    result.pathSecret,
                    path.pathSecrets[Int(receiver.rawValue)]?.bytes,
                    "\(name).path_secrets[\(receiver.rawValue)]"
                )
                try check(result.commitSecret, path.commitSecret.bytes, "\(name).commit_secret for \(receiver)")
                try check(
                    try result.keys.isConsistent(with: merged),
                    "\(name): \(receiver)'s keys match the merged tree"
                )
            }

            // A fresh path from the same sender must be followed by everyone else.
            guard let signer = signers[sender] else { continue }
            let prepared = try tree.prepareUpdatePath(from: sender, signer: signer, groupID: entry.groupId.bytes)
            let fresh = try prepared.encrypt(groupContext: context(for: prepared.tree))
            try check(
                try prepared.privateKeys.isConsistent(with: prepared.tree),
                "\(name): the committer's new keys match its tree"
            )
            try prepared.tree.validate(groupID: entry.groupId.bytes)
            var followed = tree
            try followed.merge(fresh, from: sender, groupID: entry.groupId.bytes)
            try check(followed.treeHash, prepared.tree.treeHash, "\(name): a receiver's tree matches the committer's")
            for (receiver, keys) in privates where receiver != sender {
                let result = try keys.applying(fresh, from: sender, in: followed, groupContext: context(for: followed))
                try check(result.commitSecret, prepared.commitSecret, "\(name): new commit secret for \(receiver)")
            }
        }
    }

    @Test func treeKEMVectors() throws {
        let report = try Self.treeKEM.runAndReport()
        #expect(report.failed == 0 && report.passed == 55 && report.skipped == 22)
    }
}
