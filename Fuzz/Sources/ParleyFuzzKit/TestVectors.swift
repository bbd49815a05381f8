import Foundation
import MLS

/// Seeds cut from the official MLS test vectors (mlswg/mls-implementations,
/// format in their README), read at run time from `$MLS_TEST_VECTORS`; the
/// vectors are never copied into the repository.
struct TestVectors {
    var mlsMessages: [[UInt8]] = []
    var keyPackages: [[UInt8]] = []
    var welcomes: [[UInt8]] = []
    var groupSecrets: [[UInt8]] = []
    var groupInfos: [[UInt8]] = []
    /// Each prefixed with the selector byte of the tree's cipher suite.
    var ratchetTrees: [[UInt8]] = []
    var leafNodes: [[UInt8]] = []
    var proposals: [[UInt8]] = []
    var commits: [[UInt8]] = []

    /// Entries taken from each file: the files repeat one shape with random
    /// content, and a few dozen of each are plenty to start from.
    static let entriesPerFile = 40

    static func load() throws -> TestVectors {
        var vectors = TestVectors()
        guard let directory = ProcessInfo.processInfo.environment["MLS_TEST_VECTORS"] else {
            print("warning: MLS_TEST_VECTORS is not set; seeding without the official vectors")
            return vectors
        }
        let file = { (name: String) throws -> [[String: Any]] in
            let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
            let entries = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
            return Array(entries.prefix(entriesPerFile))
        }
        try vectors.addMessages(file("messages.json"))
        for name in ["welcome.json", "passive-client-welcome.json", "passive-client-handling-commit.json"] {
            try vectors.addPassiveClient(file(name))
        }
        for entry in try file("message-protection.json") {
            vectors.addMLSMessages(
                ["proposal_pub", "proposal_priv", "commit_pub", "commit_priv", "application_priv"]
                    .compactMap { hex(entry[$0]) }
            )
        }
        for (name, fields) in [
            ("tree-validation.json", ["tree"]), ("treekem.json", ["ratchet_tree"]),
            ("tree-operations.json", ["tree_before", "tree_after"]),
        ] {
            for entry in try file(name) {
                let selector = suiteSelector(entry["cipher_suite"])
                vectors.ratchetTrees += fields.compactMap { hex(entry[$0]) }.map { [selector] + $0 }
                if let proposal = hex(entry["proposal"]) { vectors.proposals.append(proposal) }
            }
        }
        return vectors
    }

    /// messages.json: one of every message structure per entry (§6, §10, §12).
    private mutating func addMessages(_ entries: [[String: Any]]) {
        let messageFields = [
            "mls_welcome", "mls_group_info", "mls_key_package", "public_message_application",
            "public_message_proposal", "public_message_commit", "private_message",
        ]
        let proposalFields = [
            "add_proposal", "update_proposal", "remove_proposal", "pre_shared_key_proposal", "re_init_proposal",
            "external_init_proposal", "group_context_extensions_proposal",
        ]
        for entry in entries {
            addMLSMessages(messageFields.compactMap { hex(entry[$0]) })
            if let tree = hex(entry["ratchet_tree"]) { ratchetTrees.append([0] + tree) }
            if let secrets = hex(entry["group_secrets"]) { groupSecrets.append(secrets) }
            if let commit = hex(entry["commit"]) { commits.append(commit) }
            for field in proposalFields {
                guard let bytes = hex(entry[field]) else { continue }
                proposals.append(bytes)
                if case .update(let leaf)? = try? Proposal(tlsEncoded: bytes), let encoded = try? leaf.tlsEncoded() {
                    leafNodes.append(encoded)
                }
            }
        }
    }

    /// welcome.json and the passive-client files: a KeyPackage, a Welcome to
    /// it and, for the latter, the epochs' proposals and commits.
    private mutating func addPassiveClient(_ entries: [[String: Any]]) {
        for entry in entries {
            addMLSMessages(["key_package", "welcome"].compactMap { hex(entry[$0]) })
            if let tree = hex(entry["ratchet_tree"]) {
                ratchetTrees.append([Self.suiteSelector(entry["cipher_suite"])] + tree)
            }
            for epoch in (entry["epochs"] as? [[String: Any]] ?? []).prefix(4) {
                addMLSMessages(((epoch["proposals"] as? [Any] ?? []) + [epoch["commit"] as Any]).compactMap(hex))
            }
        }
    }

    /// Adds each MLSMessage, and its body to the list for its structure.
    private mutating func addMLSMessages(_ messages: [[UInt8]]) {
        for bytes in messages {
            mlsMessages.append(bytes)
            switch try? MLSMessage(tlsEncoded: bytes) {
            case .keyPackage(let keyPackage)?:
                if let body = try? keyPackage.tlsEncoded() { keyPackages.append(body) }
                if let leaf = try? keyPackage.leafNode.tlsEncoded() { leafNodes.append(leaf) }
            case .welcome(let welcome)?:
                if let body = try? welcome.tlsEncoded() { welcomes.append(body) }
            case .groupInfo(let groupInfo)?:
                if let body = try? groupInfo.tlsEncoded() { groupInfos.append(body) }
            default: break
            }
        }
    }

    /// The ratchet-tree target's selector byte for a vector's cipher suite.
    private static func suiteSelector(_ value: Any?) -> UInt8 {
        guard let raw = (value as? Int).flatMap({ UInt16(exactly: $0) }),
            let index = CipherSuite.supported.firstIndex(of: CipherSuite(rawValue: raw))
        else { return 0 }
        return UInt8(index)
    }
}

/// Bytes from a vector's hex string; nil for anything else (JSON null).
func hex(_ value: Any?) -> [UInt8]? {
    guard let string = value as? String, string.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(string.count / 2)
    var index = string.startIndex
    while index < string.endIndex {
        let next = string.index(index, offsetBy: 2)
        guard let byte = UInt8(string[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}
