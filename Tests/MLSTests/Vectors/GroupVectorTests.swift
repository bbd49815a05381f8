import Foundation
import Testing

@testable import MLS

/// The official vectors for framing, Welcome and whole-group processing (RFC 9420 §6, §10–§14).
@Suite struct GroupVectorTests {
    // MARK: message-protection.json (§6)

    struct MessageProtection: Decodable {
        let cipherSuite: UInt16
        let groupId: Hex, epoch: UInt64, treeHash: Hex, confirmedTranscriptHash: Hex
        let signaturePriv: Hex, signaturePub: Hex
        let encryptionSecret: Hex, senderDataSecret: Hex, membershipKey: Hex
        let proposal: Hex, proposalPub: Hex, proposalPriv: Hex
        let commit: Hex, commitPub: Hex, commitPriv: Hex
        let application: Hex, applicationPriv: Hex
    }

    static let messageProtection = VectorFile<MessageProtection>(
        name: "message-protection.json",
        cipherSuite: { $0.cipherSuite }
    ) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let context = GroupContext(
            cipherSuite: suite.suite,
            groupID: entry.groupId.bytes,
            epoch: entry.epoch,
            treeHash: entry.treeHash.bytes,
            confirmedTranscriptHash: entry.confirmedTranscriptHash.bytes
        )
        let signer = SignaturePrivateKey(entry.signaturePriv.bytes)
        let verifier = SignaturePublicKey(entry.signaturePub.bytes)
        let membershipKey = entry.membershipKey.bytes
        func secretTree() -> SecretTree {
            SecretTree(suite, encryptionSecret: entry.encryptionSecret.bytes, leafCount: LeafCount(rawValue: 2)!)
        }
        let cases: [(name: String, raw: Hex, body: (Hex) throws -> FramedContent.Body, pub: Hex?, priv: Hex)] = [
            (
                "proposal", entry.proposal, { .proposal(try Proposal(tlsEncoded: $0.bytes)) }, entry.proposalPub,
                entry.proposalPriv
            ),
            ("commit", entry.commit, { .commit(try Commit(tlsEncoded: $0.bytes)) }, entry.commitPub, entry.commitPriv),
            ("application", entry.application, { .application($0.bytes) }, nil, entry.applicationPriv),
        ]
        for (name, raw, makeBody, pub, priv) in cases {
            let body = try makeBody(raw)
            if let pub {
                guard case .publicMessage(let message) = try MLSMessage(tlsEncoded: pub.bytes) else {
                    throw VectorError.failed("\(name)_pub is not a PublicMessage")
                }
                try check(
                    try message.verifyMembershipTag(suite, membershipKey: membershipKey, context: context),
                    "\(name)_pub membership tag"
                )
                try check(
                    try message.authenticatedContent.verifySignature(suite, publicKey: verifier, context: context),
                    "\(name)_pub signature"
                )
                try check(message.content.body, body, "\(name)_pub content")
            }
            let content = FramedContent(
                groupID: context.groupID,
                epoch: context.epoch,
                sender: .member(LeafIndex(1)),
                body: body
            )
            let tag: [UInt8]? = content.contentType == .commit ? [UInt8](repeating: 7, count: suite.hashLength) : nil

            var signedPublic = try AuthenticatedContent.sign(
                content,
                wireFormat: .publicMessage,
                context: context,
                signer: signer,
                suite
            )
            signedPublic.auth.confirmationTag = tag
            if content.contentType == .application {
                try check(
                    (try? PublicMessage.protect(signedPublic, membershipKey: membershipKey, context: context, suite))
                        == nil,
                    "application data refused as PublicMessage"
                )
            } else {
                let protected = try PublicMessage.protect(
                    signedPublic,
                    membershipKey: membershipKey,
                    context: context,
                    suite
                )
                let decoded = try PublicMessage(tlsEncoded: protected.tlsEncoded())
                try check(
                    try decoded.verifyMembershipTag(suite, membershipKey: membershipKey, context: context),
                    "\(name): own PublicMessage membership tag"
                )
                try check(
                    try decoded.authenticatedContent.verifySignature(suite, publicKey: verifier, context: context),
                    "\(name): own PublicMessage signature"
                )
            }

            guard case .privateMessage(let message) = try MLSMessage(tlsEncoded: priv.bytes) else {
                throw VectorError.failed("\(name)_priv is not a PrivateMessage")
            }
            var receiver = secretTree()
            let (opened, _) = try message.unprotect(
                secretTree: &receiver,
                senderDataSecret: entry.senderDataSecret.bytes
            )
            try check(opened.content.body, body, "\(name)_priv content")
            try check(opened.content.sender, .member(LeafIndex(1)), "\(name)_priv sender")
            try check(
                try opened.verifySignature(suite, publicKey: verifier, context: context),
                "\(name)_priv signature"
            )

            var signedPrivate = try AuthenticatedContent.sign(
                content,
                wireFormat: .privateMessage,
                context: context,
                signer: signer,
                suite
            )
            signedPrivate.auth.confirmationTag = tag
            var senderTree = secretTree()
            let sealed = try PrivateMessage.protect(
                signedPrivate,
                secretTree: &senderTree,
                senderDataSecret: entry.senderDataSecret.bytes,
                paddingBlock: 32
            )
            var ownReceiver = secretTree()
            let (roundTrip, _) = try PrivateMessage(tlsEncoded: sealed.tlsEncoded()).unprotect(
                secretTree: &ownReceiver,
                senderDataSecret: entry.senderDataSecret.bytes
            )
            try check(roundTrip, signedPrivate, "\(name): own PrivateMessage round trip")
            try check(
                try roundTrip.verifySignature(suite, publicKey: verifier, context: context),
                "\(name): own PrivateMessage signature"
            )
        }
    }

    @Test func messageProtectionVectors() throws {
        let report = try Self.messageProtection.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }

    // MARK: welcome.json (§12.4.3.1)

    struct WelcomeVector: Decodable {
        let cipherSuite: UInt16
        let initPriv: Hex, signerPub: Hex, keyPackage: Hex, welcome: Hex
    }

    static let welcome = VectorFile<WelcomeVector>(name: "welcome.json", cipherSuite: { $0.cipherSuite }) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: entry.keyPackage.bytes),
            case .welcome(let welcome) = try MLSMessage(tlsEncoded: entry.welcome.bytes)
        else {
            throw VectorError.failed("key_package or welcome has the wrong wire format")
        }
        try keyPackage.validate()
        let reference = try keyPackage.reference(suite)
        guard let secrets = welcome.secrets.first(where: { $0.newMember == reference }) else {
            throw VectorError.failed("no entry for the KeyPackage")
        }
        let groupSecrets = try GroupSecrets(
            tlsEncoded: suite.decryptWithLabel(
                HPKEPrivateKey(entry.initPriv.bytes),
                label: "Welcome",
                context: welcome.encryptedGroupInfo,
                ciphertext: secrets.encryptedGroupSecrets
            )
        )
        let welcomeSecret = try KeySchedule.welcomeSecret(suite, joinerSecret: groupSecrets.joinerSecret)
        let (key, nonce) = try KeySchedule.welcomeKeyAndNonce(suite, welcomeSecret: welcomeSecret)
        let groupInfo = try GroupInfo(
            tlsEncoded: suite.open(key: key, nonce: nonce, aad: [], ciphertext: welcome.encryptedGroupInfo)
        )
        try check(
            try suite.verifyWithLabel(
                SignaturePublicKey(entry.signerPub.bytes),
                label: "GroupInfoTBS",
                content: groupInfo.toBeSigned(),
                signature: groupInfo.signature
            ),
            "the GroupInfo signature verifies with signer_pub"
        )
        let epochSecrets = try KeySchedule.epochSecrets(
            suite,
            joinerSecret: groupSecrets.joinerSecret,
            groupContext: groupInfo.groupContext
        )
        try check(
            TranscriptHash.verifyConfirmationTag(
                suite,
                groupInfo.confirmationTag,
                confirmationKey: epochSecrets.confirmationKey,
                confirmed: groupInfo.groupContext.confirmedTranscriptHash
            ),
            "the confirmation tag matches"
        )
    }

    @Test func welcomeVectors() throws {
        let report = try Self.welcome.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }

    // MARK: passive-client-*.json (§12.4)

    struct PassiveClient: Decodable {
        struct PSK: Decodable {
            let pskId: Hex
            let psk: Hex
        }
        struct Epoch: Decodable {
            let proposals: [Hex]
            let commit: Hex
            let epochAuthenticator: Hex
        }
        let cipherSuite: UInt16
        let externalPsks: [PSK]
        let keyPackage: Hex, signaturePriv: Hex, encryptionPriv: Hex, initPriv: Hex
        let welcome: Hex
        let ratchetTree: Hex?
        let initialEpochAuthenticator: Hex
        let epochs: [Epoch]
    }

    static func passiveClient(_ name: String) -> VectorFile<PassiveClient> {
        VectorFile<PassiveClient>(name: name, cipherSuite: { $0.cipherSuite }) { entry in
            let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
            guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: entry.keyPackage.bytes),
                case .welcome(let welcome) = try MLSMessage(tlsEncoded: entry.welcome.bytes)
            else {
                throw VectorError.failed("key_package or welcome has the wrong wire format")
            }
            let bundle = KeyPackageBundle(
                keyPackage: keyPackage,
                initPrivateKey: HPKEPrivateKey(entry.initPriv.bytes),
                encryptionPrivateKey: HPKEPrivateKey(entry.encryptionPriv.bytes),
                signaturePrivateKey: SignaturePrivateKey(entry.signaturePriv.bytes)
            )
            try check(
                try suite.hpkePublicKey(for: bundle.initPrivateKey),
                keyPackage.initKey,
                "init_priv matches the KeyPackage"
            )
            try check(
                try suite.hpkePublicKey(for: bundle.encryptionPrivateKey),
                keyPackage.leafNode.encryptionKey,
                "encryption_priv matches the KeyPackage"
            )
            try check(
                try suite.signaturePublicKey(for: bundle.signaturePrivateKey),
                keyPackage.leafNode.signatureKey,
                "signature_priv matches the KeyPackage"
            )

            var policy = GroupPolicy(retainedResumptionPSKs: 1000)
            for psk in entry.externalPsks { policy.externalPSKs[psk.pskId.bytes] = psk.psk.bytes }
            let tree = try entry.ratchetTree.map { try RatchetTree(suite, encoded: $0.bytes) }
            var group = try Group.join(welcome: welcome, keyPackage: bundle, ratchetTree: tree, policy: policy)
            try check(group.epochAuthenticator, entry.initialEpochAuthenticator.bytes, "initial_epoch_authenticator")
            for (index, epoch) in entry.epochs.enumerated() {
                for proposal in epoch.proposals {
                    _ = try group.process(MLSMessage(tlsEncoded: proposal.bytes))
                }
                guard case .commit = try group.process(MLSMessage(tlsEncoded: epoch.commit.bytes)) else {
                    throw VectorError.failed("epochs[\(index)].commit did not process as a commit")
                }
                try check(
                    group.epochAuthenticator,
                    epoch.epochAuthenticator.bytes,
                    "epochs[\(index)].epoch_authenticator"
                )
            }
        }
    }

    static let passiveWelcome = passiveClient("passive-client-welcome.json")
    static let passiveHandlingCommit = passiveClient("passive-client-handling-commit.json")
    static let passiveRandom = passiveClient("passive-client-random.json")

    @Test func passiveClientWelcomeVectors() throws {
        let report = try Self.passiveWelcome.runAndReport()
        #expect(report.failed == 0 && report.passed == 40 && report.skipped == 16)
    }

    @Test func passiveClientHandlingCommitVectors() throws {
        let report = try Self.passiveHandlingCommit.runAndReport()
        #expect(report.failed == 0 && report.passed == 65 && report.skipped == 26)
    }

    @Test func passiveClientRandomVectors() throws {
        let report = try Self.passiveRandom.runAndReport()
        #expect(report.failed == 0 && report.passed == 1)
    }
}
