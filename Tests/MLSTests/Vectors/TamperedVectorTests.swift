import Testing

/// Changes one expected value in an official vector entry and checks that the
/// verifier reports the entry as failed. Without this, a verifier that skipped
/// a comparison would still print "0 failed".
@Suite struct TamperedVectorTests {
    /// Runs `file` on entry `index` with the value at `path` changed and expects one failure.
    func expectCaught<Entry>(_ file: VectorFile<Entry>, entry index: Int = 0, _ path: [any Sendable]) throws {
        let report = try file.runTampered(entry: index, at: path)
        #expect(report.failed == 1, "\(file.name) entry \(index): changing \(path) went unnoticed")
    }

    @Test func deserialization() throws {
        try expectCaught(FoundationVectorTests.deserialization, entry: 7, ["length"])
        try expectCaught(FoundationVectorTests.deserialization, entry: 13, ["vlbytes_header"])
    }

    @Test func treeMath() throws {
        for field in ["n_nodes", "root"] {
            try expectCaught(FoundationVectorTests.treeMath, entry: 3, [field])
        }
        for field in ["left", "right", "parent", "sibling"] {
            try expectCaught(FoundationVectorTests.treeMath, entry: 3, [field, 5])
        }
    }

    @Test func cryptoBasics() throws {
        let fields: [[any Sendable]] = [
            ["ref_hash", "out"], ["expand_with_label", "out"], ["derive_secret", "out"], ["derive_tree_secret", "out"],
            ["sign_with_label", "signature"], ["sign_with_label", "pub"], ["encrypt_with_label", "ciphertext"],
            ["encrypt_with_label", "plaintext"],
        ]
        // Entry 1 is suite 2 (P-256): ECDSA and the NIST KEM path are exercised too.
        for entry in [0, 1] {
            for path in fields { try expectCaught(FoundationVectorTests.cryptoBasics, entry: entry, path) }
        }
    }

    @Test func keySchedule() throws {
        let fields = [
            "group_context", "joiner_secret", "welcome_secret", "init_secret", "sender_data_secret",
            "encryption_secret",
            "exporter_secret", "epoch_authenticator", "external_secret", "confirmation_key", "membership_key",
            "resumption_psk", "external_pub",
        ]
        for field in fields { try expectCaught(FoundationVectorTests.keySchedule, ["epochs", 2, field]) }
        try expectCaught(FoundationVectorTests.keySchedule, ["epochs", 1, "exporter", "secret"])
    }

    @Test func pskSecret() throws {
        try expectCaught(FoundationVectorTests.pskSecret, entry: 0, ["psk_secret"])
        try expectCaught(FoundationVectorTests.pskSecret, entry: 5, ["psk_secret"])
    }

    @Test func secretTree() throws {
        try expectCaught(FoundationVectorTests.secretTree, entry: 1, ["sender_data", "key"])
        try expectCaught(FoundationVectorTests.secretTree, entry: 1, ["sender_data", "nonce"])
        for field in ["handshake_key", "handshake_nonce", "application_key", "application_nonce"] {
            try expectCaught(FoundationVectorTests.secretTree, entry: 1, ["leaves", 7, 1, field])
        }
    }

    @Test func transcriptHashes() throws {
        for field in ["confirmed_transcript_hash_after", "interim_transcript_hash_after", "confirmation_key"] {
            try expectCaught(FoundationVectorTests.transcriptHashes, [field])
        }
    }
}

extension TamperedVectorTests {
    @Test func treeValidation() throws {
        // Entry 5 is a suite-1 tree with blanks; change a hash, a resolution and the signed tree itself.
        try expectCaught(TreeVectorTests.treeValidation, entry: 5, ["tree_hashes", 3])
        try expectCaught(TreeVectorTests.treeValidation, entry: 5, ["resolutions", 1, 0])
        try expectCaught(TreeVectorTests.treeValidation, entry: 5, ["group_id"])
    }

    @Test func treeOperations() throws {
        for entry in 0..<5 {
            try expectCaught(TreeVectorTests.treeOperations, entry: entry, ["tree_after"])
            try expectCaught(TreeVectorTests.treeOperations, entry: entry, ["tree_hash_after"])
            try expectCaught(TreeVectorTests.treeOperations, entry: entry, ["tree_hash_before"])
        }
    }

    @Test func treeKEM() throws {
        try expectCaught(TreeVectorTests.treeKEM, entry: 3, ["update_paths", 0, "commit_secret"])
        try expectCaught(TreeVectorTests.treeKEM, entry: 3, ["update_paths", 1, "tree_hash_after"])
        try expectCaught(TreeVectorTests.treeKEM, entry: 3, ["update_paths", 0, "path_secrets", 1])
        try expectCaught(TreeVectorTests.treeKEM, entry: 3, ["leaves_private", 0, "encryption_priv"])
    }

    @Test func messages() throws {
        // A message field has no separate expected value; changing its last
        // byte must break decoding or re-encoding where the byte is structural.
        // The optional `path` flag at the end of a Commit is such a byte.
        try expectCaught(MessagesVectorTests.messages, entry: 0, ["commit"])
    }
}

extension TamperedVectorTests {
    @Test func messageProtection() throws {
        for field in [
            "proposal_pub", "commit_pub", "proposal_priv", "commit_priv", "application_priv", "membership_key",
            "signature_pub",
        ] {
            try expectCaught(GroupVectorTests.messageProtection, entry: 1, [field])
        }
    }

    @Test func welcome() throws {
        for field in ["welcome", "init_priv", "signer_pub"] {
            try expectCaught(GroupVectorTests.welcome, entry: 0, [field])
        }
    }

    @Test func passiveClients() throws {
        try expectCaught(GroupVectorTests.passiveWelcome, entry: 4, ["initial_epoch_authenticator"])
        try expectCaught(GroupVectorTests.passiveWelcome, entry: 4, ["ratchet_tree"])
        try expectCaught(GroupVectorTests.passiveWelcome, entry: 0, ["welcome"])
        try expectCaught(GroupVectorTests.passiveHandlingCommit, entry: 0, ["epochs", 1, "epoch_authenticator"])
        try expectCaught(GroupVectorTests.passiveHandlingCommit, entry: 0, ["epochs", 0, "commit"])
        try expectCaught(GroupVectorTests.passiveRandom, entry: 0, ["epochs", 150, "epoch_authenticator"])
    }
}
