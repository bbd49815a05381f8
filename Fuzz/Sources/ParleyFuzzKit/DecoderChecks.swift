import MLS
import ParleyProtocol

/// The MLS decoders that take bytes from the network: each input is decoded
/// strictly, round-tripped, then handed to the validation the server or a
/// client runs next on such a value.
enum DecoderChecks {
    /// `MLSMessage` (§6). A KeyPackage or GroupInfo inside goes on to the
    /// checks the server runs on uploads and group creation.
    static func mlsMessage(_ bytes: [UInt8]) {
        guard let message = Invariant.roundTrip(MLSMessage.self, bytes) else { return }
        switch message {
        case .keyPackage(let keyPackage): validate(keyPackage)
        case .groupInfo(let groupInfo): publicView(groupInfo)
        case .publicMessage, .privateMessage, .welcome: break
        }
    }

    static func keyPackage(_ bytes: [UInt8]) {
        guard let keyPackage = Invariant.roundTrip(KeyPackage.self, bytes) else { return }
        validate(keyPackage)
    }

    /// First byte: 0 a `Welcome`, otherwise `GroupSecrets` (the plaintext a
    /// Welcome carries, decoded after HPKE by a joiner).
    static func welcome(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        if selector % 2 == 0 {
            Invariant.roundTrip(Welcome.self, body)
        } else {
            Invariant.roundTrip(GroupSecrets.self, body)
        }
    }

    static func groupInfo(_ bytes: [UInt8]) {
        guard let groupInfo = Invariant.roundTrip(GroupInfo.self, bytes) else { return }
        publicView(groupInfo)
    }

    /// First byte picks a supported cipher suite; the rest is a
    /// `ratchet_tree` extension body.
    static func ratchetTree(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let suites = CipherSuite.supported
        let body = Array(bytes.dropFirst())
        guard
            let suite = Invariant.attempt("the cipher suite", { try suites[Int(selector) % suites.count].provider() }),
            let tree = Invariant.attempt("decoding a ratchet tree", { try RatchetTree(suite, encoded: body) })
        else { return }
        // The decoder refuses trailing blanks, so the encoding is canonical.
        let encoded = Invariant.attempt("re-encoding a ratchet tree") { try tree.encoded() }
        Invariant.require(encoded == body, "a ratchet tree re-encodes differently")
        Invariant.require(tree.treeHash.count == suite.hashLength, "the tree hash has the wrong length")
        _ = Invariant.attempt("validating a ratchet tree") { try tree.validate(groupID: []) }
        for (index, leaf) in tree.members {
            Invariant.require(tree.leafNode(at: index) == leaf, "members and leafNode(at:) disagree")
        }
    }

    static func leafNode(_ bytes: [UInt8]) {
        guard let leaf = Invariant.roundTrip(LeafNode.self, bytes),
            let suite = Invariant.attempt("the cipher suite", { try CipherSuite(rawValue: 1).provider() })
        else { return }
        _ = Invariant.attempt("verifying a leaf signature") {
            try leaf.verifySignature(suite, groupID: [], leafIndex: LeafIndex(0))
        }
    }

    /// First byte: 0 a `Proposal`, 1 a `Commit`, 2 a `ProposalOrRef`.
    static func proposal(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        switch selector % 3 {
        case 0: Invariant.roundTrip(Proposal.self, body)
        case 1: Invariant.roundTrip(Commit.self, body)
        default: Invariant.roundTrip(ProposalOrRef.self, body)
        }
    }

    /// What the server's KeyPackage directory checks before storing one.
    static func validate(_ keyPackage: KeyPackage) {
        _ = Invariant.attempt("validating a KeyPackage") { try keyPackage.validate() }
    }

    /// What the server does with a creation GroupInfo: build the public view
    /// under Parley's policy. A view that builds must survive being stored
    /// and restored with the same tree hash.
    static func publicView(_ groupInfo: GroupInfo) {
        let policy = ParleyGroupPolicy.groupPolicy()
        guard
            let view = Invariant.attempt(
                "building a public view",
                { try PublicGroup(groupInfo: groupInfo, policy: policy) }
            )
        else { return }
        guard let stored = Invariant.attempt("storing a public view", { try view.serialized() }) else {
            fatalError("invariant broken: a public view that was built cannot be stored")
        }
        guard
            let restored = Invariant.attempt(
                "restoring a public view",
                { try PublicGroup(serialized: stored, policy: policy) }
            )
        else { fatalError("invariant broken: a stored public view cannot be restored") }
        Invariant.require(restored.tree.treeHash == view.tree.treeHash, "a restored view has another tree hash")
        Invariant.require(restored.context == view.context, "a restored view has another context")
    }
}
