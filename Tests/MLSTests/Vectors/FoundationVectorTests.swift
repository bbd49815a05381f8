import Foundation
import Testing

@testable import MLS

/// The official RFC 9420 vectors for the foundations: codec, tree math,
/// crypto basics, key schedule, PSKs, secret tree and transcript hashes.
/// Each test prints one summary line per file: passed, failed and skipped entries.
@Suite struct FoundationVectorTests {
    // MARK: deserialization.json: variable-length headers (§2.1.2)

    struct Deserialization: Decodable {
        let vlbytesHeader: Hex
        let length: Int
    }

    static let deserialization = VectorFile<Deserialization>(name: "deserialization.json") { entry in
        var reader = TLSReader(entry.vlbytesHeader.bytes)
        try check(try reader.readVariableLength(), entry.length, "decoded length")
        try reader.finish()
        var header: [UInt8] = []
        try VariableLengthInteger.encode(entry.length, into: &header)
        try check(header, entry.vlbytesHeader.bytes, "re-encoded header")
    }

    @Test func deserializationVectors() throws {
        let report = try Self.deserialization.runAndReport()
        #expect(report.failed == 0 && report.passed == 14)
    }

    // MARK: tree-math.json (Appendix C)

    struct TreeMath: Decodable {
        let nLeaves: UInt32
        let nNodes: UInt32
        let root: UInt32
        let left: [UInt32?]
        let right: [UInt32?]
        let parent: [UInt32?]
        let sibling: [UInt32?]
    }

    static let treeMath = VectorFile<TreeMath>(name: "tree-math.json") { entry in
        guard let leaves = LeafCount(rawValue: entry.nLeaves) else {
            throw VectorError.failed("leaf count \(entry.nLeaves) is not a full tree")
        }
        try check(leaves.nodeCount, entry.nNodes, "n_nodes")
        try check(leaves.root.rawValue, entry.root, "root")
        for index in 0..<entry.nNodes {
            let node = NodeIndex(index)
            let i = Int(index)
            try check(node.left?.rawValue, entry.left[i], "left[\(i)]")
            try check(node.right?.rawValue, entry.right[i], "right[\(i)]")
            try check(leaves.parent(of: node)?.rawValue, entry.parent[i], "parent[\(i)]")
            try check(leaves.sibling(of: node)?.rawValue, entry.sibling[i], "sibling[\(i)]")
        }
    }

    @Test func treeMathVectors() throws {
        let report = try Self.treeMath.runAndReport()
        #expect(report.failed == 0 && report.passed == 10)
    }

    // MARK: crypto-basics.json (§5.1, §5.2, §8, §9.1)

    struct CryptoBasics: Decodable {
        struct RefHash: Decodable {
            let label: String
            let value: Hex
            let out: Hex
        }
        struct ExpandWithLabel: Decodable {
            let secret: Hex
            let label: String
            let context: Hex
            let length: Int
            let out: Hex
        }
        struct DeriveSecret: Decodable {
            let secret: Hex
            let label: String
            let out: Hex
        }
        struct DeriveTreeSecret: Decodable {
            let secret: Hex
            let label: String
            let generation: UInt32
            let length: Int
            let out: Hex
        }
        struct SignWithLabel: Decodable {
            let priv: Hex
            let pub: Hex
            let content: Hex
            let label: String
            let signature: Hex
        }
        struct EncryptWithLabel: Decodable {
            let priv: Hex
            let pub: Hex
            let label: String
            let context: Hex
            let plaintext: Hex
            let kemOutput: Hex
            let ciphertext: Hex
        }
        let cipherSuite: UInt16
        let refHash: RefHash
        let expandWithLabel: ExpandWithLabel
        let deriveSecret: DeriveSecret
        let deriveTreeSecret: DeriveTreeSecret
        let signWithLabel: SignWithLabel
        let encryptWithLabel: EncryptWithLabel
    }

    static let cryptoBasics = VectorFile<CryptoBasics>(name: "crypto-basics.json", cipherSuite: { $0.cipherSuite }) {
        entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()

        let r = entry.refHash
        try check(try suite.refHash(label: r.label, value: r.value.bytes), r.out.bytes, "ref_hash.out")

        let e = entry.expandWithLabel
        try check(
            try suite.expandWithLabel(e.secret.bytes, label: e.label, context: e.context.bytes, length: e.length),
            e.out.bytes,
            "expand_with_label.out"
        )

        let d = entry.deriveSecret
        try check(try suite.deriveSecret(d.secret.bytes, label: d.label), d.out.bytes, "derive_secret.out")

        let t = entry.deriveTreeSecret
        try check(
            try suite.deriveTreeSecret(t.secret.bytes, label: t.label, generation: t.generation, length: t.length),
            t.out.bytes,
            "derive_tree_secret.out"
        )

        let s = entry.signWithLabel
        let signer = SignaturePrivateKey(s.priv.bytes)
        let verifier = SignaturePublicKey(s.pub.bytes)
        try check(try suite.signaturePublicKey(for: signer), verifier, "sign_with_label.pub from priv")
        try check(
            try suite.verifyWithLabel(verifier, label: s.label, content: s.content.bytes, signature: s.signature.bytes),
            "sign_with_label.signature verifies"
        )
        let fresh = try suite.signWithLabel(signer, label: s.label, content: s.content.bytes)
        try check(
            try suite.verifyWithLabel(verifier, label: s.label, content: s.content.bytes, signature: fresh),
            "a fresh signature verifies"
        )

        let c = entry.encryptWithLabel
        let recipient = HPKEPrivateKey(c.priv.bytes)
        try check(
            try suite.hpkePublicKey(for: recipient),
            HPKEPublicKey(c.pub.bytes),
            "encrypt_with_label.pub from priv"
        )
        let given = HPKECiphertext(kemOutput: c.kemOutput.bytes, ciphertext: c.ciphertext.bytes)
        try check(
            try suite.decryptWithLabel(recipient, label: c.label, context: c.context.bytes, ciphertext: given),
            c.plaintext.bytes,
            "encrypt_with_label: decrypt given"
        )
        let sealed = try suite.encryptWithLabel(
            HPKEPublicKey(c.pub.bytes),
            label: c.label,
            context: c.context.bytes,
            plaintext: c.plaintext.bytes
        )
        try check(
            try suite.decryptWithLabel(recipient, label: c.label, context: c.context.bytes, ciphertext: sealed),
            c.plaintext.bytes,
            "encrypt_with_label: round trip"
        )
    }

    @Test func cryptoBasicsVectors() throws {
        let report = try Self.cryptoBasics.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }

    // MARK: key-schedule.json (§8)

    struct KeyScheduleVector: Decodable {
        /// `label` is used as the literal string it is, as the other implementations do.
        struct Exporter: Decodable {
            let label: String
            let context: Hex
            let length: Int
            let secret: Hex
        }
        struct Epoch: Decodable {
            let treeHash: Hex
            let commitSecret: Hex
            let pskSecret: Hex
            let confirmedTranscriptHash: Hex
            let groupContext: Hex
            let joinerSecret: Hex
            let welcomeSecret: Hex
            let initSecret: Hex
            let senderDataSecret: Hex
            let encryptionSecret: Hex
            let exporterSecret: Hex
            let epochAuthenticator: Hex
            let externalSecret: Hex
            let confirmationKey: Hex
            let membershipKey: Hex
            let resumptionPsk: Hex
            let externalPub: Hex
            let exporter: Exporter
        }
        let cipherSuite: UInt16
        let groupId: Hex
        let initialInitSecret: Hex
        let epochs: [Epoch]
    }

    static let keySchedule = VectorFile<KeyScheduleVector>(name: "key-schedule.json", cipherSuite: { $0.cipherSuite }) {
        entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        var initSecret = entry.initialInitSecret.bytes
        for (index, epoch) in entry.epochs.enumerated() {
            let name = "epochs[\(index)]"
            let context = GroupContext(
                cipherSuite: suite.suite,
                groupID: entry.groupId.bytes,
                epoch: UInt64(index),
                treeHash: epoch.treeHash.bytes,
                confirmedTranscriptHash: epoch.confirmedTranscriptHash.bytes
            )
            try check(try context.tlsEncoded(), epoch.groupContext.bytes, "\(name).group_context")
            try check(try GroupContext(tlsEncoded: epoch.groupContext.bytes), context, "\(name).group_context decodes")

            let joiner = try KeySchedule.joinerSecret(
                suite,
                initSecret: initSecret,
                commitSecret: epoch.commitSecret.bytes,
                groupContext: context
            )
            try check(joiner, epoch.joinerSecret.bytes, "\(name).joiner_secret")
            try check(
                try KeySchedule.welcomeSecret(suite, joinerSecret: joiner, pskSecret: epoch.pskSecret.bytes),
                epoch.welcomeSecret.bytes,
                "\(name).welcome_secret"
            )

            let secrets = try KeySchedule.epochSecrets(
                suite,
                joinerSecret: joiner,
                pskSecret: epoch.pskSecret.bytes,
                groupContext: context
            )
            try check(secrets.initSecret, epoch.initSecret.bytes, "\(name).init_secret")
            try check(secrets.senderDataSecret, epoch.senderDataSecret.bytes, "\(name).sender_data_secret")
            try check(secrets.encryptionSecret, epoch.encryptionSecret.bytes, "\(name).encryption_secret")
            try check(secrets.exporterSecret, epoch.exporterSecret.bytes, "\(name).exporter_secret")
            try check(secrets.epochAuthenticator, epoch.epochAuthenticator.bytes, "\(name).epoch_authenticator")
            try check(secrets.externalSecret, epoch.externalSecret.bytes, "\(name).external_secret")
            try check(secrets.confirmationKey, epoch.confirmationKey.bytes, "\(name).confirmation_key")
            try check(secrets.membershipKey, epoch.membershipKey.bytes, "\(name).membership_key")
            try check(secrets.resumptionPSK, epoch.resumptionPsk.bytes, "\(name).resumption_psk")
            try check(
                try secrets.externalKeyPair(suite).publicKey.bytes,
                epoch.externalPub.bytes,
                "\(name).external_pub"
            )
            let exporter = epoch.exporter
            try check(
                try secrets.exporter(
                    suite,
                    label: exporter.label,
                    context: exporter.context.bytes,
                    length: exporter.length
                ),
                exporter.secret.bytes,
                "\(name).exporter.secret"
            )
            initSecret = secrets.initSecret
        }
    }

    @Test func keyScheduleVectors() throws {
        let report = try Self.keySchedule.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }

    // MARK: psk_secret.json (§8.4)

    struct PSKSecretVector: Decodable {
        struct PSK: Decodable {
            let pskId: Hex
            let psk: Hex
            let pskNonce: Hex
        }
        let cipherSuite: UInt16
        let psks: [PSK]
        let pskSecret: Hex
    }

    static let pskSecret = VectorFile<PSKSecretVector>(name: "psk_secret.json", cipherSuite: { $0.cipherSuite }) {
        entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let psks = entry.psks.map {
            (id: PreSharedKeyID(kind: .external(pskID: $0.pskId.bytes), pskNonce: $0.pskNonce.bytes), psk: $0.psk.bytes)
        }
        try check(try KeySchedule.pskSecret(suite, psks: psks), entry.pskSecret.bytes, "psk_secret")
    }

    @Test func pskSecretVectors() throws {
        let report = try Self.pskSecret.runAndReport()
        #expect(report.failed == 0 && report.passed == 55 && report.skipped == 22)
    }

    // MARK: secret-tree.json (§6.3.2, §9)

    struct SecretTreeVector: Decodable {
        struct SenderData: Decodable {
            let senderDataSecret: Hex
            let ciphertext: Hex
            let key: Hex
            let nonce: Hex
        }
        struct Generation: Decodable {
            let generation: UInt32
            let handshakeKey: Hex
            let handshakeNonce: Hex
            let applicationKey: Hex
            let applicationNonce: Hex
        }
        let cipherSuite: UInt16
        let senderData: SenderData
        let encryptionSecret: Hex
        let leaves: [[Generation]]
    }

    static let secretTree = VectorFile<SecretTreeVector>(name: "secret-tree.json", cipherSuite: { $0.cipherSuite }) {
        entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let s = entry.senderData
        let senderKey = try SenderDataKey(
            suite,
            senderDataSecret: s.senderDataSecret.bytes,
            ciphertext: s.ciphertext.bytes
        )
        try check(senderKey.key, s.key.bytes, "sender_data.key")
        try check(senderKey.nonce, s.nonce.bytes, "sender_data.nonce")

        var tree = SecretTree(
            suite,
            encryptionSecret: entry.encryptionSecret.bytes,
            leafCount: try LeafCount(covering: UInt32(entry.leaves.count))
        )
        for (leafIndex, generations) in entry.leaves.enumerated() {
            let leaf = LeafIndex(UInt32(leafIndex))
            for expected in generations {
                let name = "leaves[\(leafIndex)] generation \(expected.generation)"
                let handshake = try tree.key(for: leaf, .handshake, generation: expected.generation)
                try check(handshake.key, expected.handshakeKey.bytes, "\(name) handshake_key")
                try check(handshake.nonce, expected.handshakeNonce.bytes, "\(name) handshake_nonce")
                let application = try tree.key(for: leaf, .application, generation: expected.generation)
                try check(application.key, expected.applicationKey.bytes, "\(name) application_key")
                try check(application.nonce, expected.applicationNonce.bytes, "\(name) application_nonce")
            }
        }
    }

    @Test func secretTreeVectors() throws {
        let report = try Self.secretTree.runAndReport()
        #expect(report.failed == 0 && report.passed == 15 && report.skipped == 6)
    }
}

extension FoundationVectorTests {
    // MARK: transcript-hashes.json (§8.2)

    struct TranscriptHashVector: Decodable {
        let cipherSuite: UInt16
        let confirmationKey: Hex
        let authenticatedContent: Hex
        let interimTranscriptHashBefore: Hex
        let confirmedTranscriptHashAfter: Hex
        let interimTranscriptHashAfter: Hex
    }

    static let transcriptHashes = VectorFile<TranscriptHashVector>(
        name: "transcript-hashes.json",
        cipherSuite: { $0.cipherSuite }
    ) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let content = try AuthenticatedContent(tlsEncoded: entry.authenticatedContent.bytes)
        try check(try content.tlsEncoded(), entry.authenticatedContent.bytes, "authenticated_content re-encodes")
        guard case .commit = content.content.body, let tag = content.auth.confirmationTag else {
            throw VectorError.failed("authenticated_content is not a commit")
        }
        try check(
            TranscriptHash.verifyConfirmationTag(
                suite,
                tag,
                confirmationKey: entry.confirmationKey.bytes,
                confirmed: entry.confirmedTranscriptHashAfter.bytes
            ),
            "confirmation_tag is the MAC of confirmed_transcript_hash_after"
        )
        let confirmed = try TranscriptHash.confirmed(
            suite,
            interimBefore: entry.interimTranscriptHashBefore.bytes,
            commit: content
        )
        try check(confirmed, entry.confirmedTranscriptHashAfter.bytes, "confirmed_transcript_hash_after")
        try check(
            try TranscriptHash.interim(suite, confirmed: confirmed, confirmationTag: tag),
            entry.interimTranscriptHashAfter.bytes,
            "interim_transcript_hash_after"
        )
    }

    @Test func transcriptHashVectors() throws {
        let report = try Self.transcriptHashes.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }
}
