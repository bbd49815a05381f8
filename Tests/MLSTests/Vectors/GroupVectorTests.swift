import Foundation
@testable import MLS
import Testing

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

    static let messageProtection = VectorFile<MessageProtection>(name: "message-protection.json", cipherSuite: { $0.cipherSuite }) { entry in
        let suite = try CipherSuite(rawValue: entry.cipherSuite).provider()
        let context = GroupContext(
            cipherSuite: suite.suite, groupID: entry.groupId.bytes, epoch: entry.epoch,
            treeHash: entry.treeHash.bytes, confirmedTranscriptHash: entry.confirmedTranscriptHash.bytes)
        let signer = SignaturePrivateKey(entry.signaturePriv.bytes)
        let verifier = SignaturePublicKey(entry.signaturePub.bytes)
        let membershipKey = entry.membershipKey.bytes
        func secretTree() -> SecretTree {
            SecretTree(suite, encryptionSecret: entry.encryptionSecret.bytes, leafCount: LeafCount(rawValue: 2)!)
        }
        let cases: [(name: String, raw: Hex, body: (Hex) throws -> FramedContent.Body, pub: Hex?, priv: Hex)] = [
            ("proposal", entry.proposal, { .proposal(try Proposal(tlsEncoded: $0.bytes)) }, entry.proposalPub, entry.proposalPriv),
            ("commit", entry.commit, { .commit(try Commit(tlsEncoded: $0.bytes)) }, entry.commitPub, entry.commitPriv),
            ("application", entry.application, { .application($0.bytes) }, nil, entry.applicationPriv),
        ]
        for (name, raw, makeBody, pub, priv) in cases {
            let body = try makeBody(raw)
            if let pub {
                guard case .publicMessage(let message) = try MLSMessage(tlsEncoded: pub.bytes) else { throw VectorError.failed("\(name)_pub is not a PublicMessage") }
                try check(try message.verifyMembershipTag(suite, membershipKey: membershipKey, context: context), "\(name)_pub membership tag")
                try check(try message.authenticatedContent.verifySignature(suite, publicKey: verifier, context: context), "\(name)_pub signature")
                try check(message.content.body, body, "\(name)_pub content")
            }
            let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .member(LeafIndex(1)), body: body)
            let tag: [UInt8]? = content.contentType == .commit ? [UInt8](repeating: 7, count: suite.hashLength) : nil

            var signedPublic = try AuthenticatedContent.sign(content, wireFormat: .publicMessage, context: context, signer: signer, suite)
            signedPublic.auth.confirmationTag = tag
            if content.contentType == .application {
                try check((try? PublicMessage.protect(signedPublic, membershipKey: membershipKey, context: context, suite)) == nil, "application data refused as PublicMessage")
            } else {
                let protected = try PublicMessage.protect(signedPublic, membershipKey: membershipKey, context: context, suite)
                let decoded = try PublicMessage(tlsEncoded: protected.tlsEncoded())
                try check(try decoded.verifyMembershipTag(suite, membershipKey: membershipKey, context: context), "\(name): own PublicMessage membership tag")
                try check(try decoded.authenticatedContent.verifySignature(suite, publicKey: verifier, context: context), "\(name): own PublicMessage signature")
            }

            guard case .privateMessage(let message) = try MLSMessage(tlsEncoded: priv.bytes) else { throw VectorError.failed("\(name)_priv is not a PrivateMessage") }
            var receiver = secretTree()
            let (opened, _) = try message.unprotect(secretTree: &receiver, senderDataSecret: entry.senderDataSecret.bytes)
            try check(opened.content.body, body, "\(name)_priv content")
            try check(opened.content.sender, .member(LeafIndex(1)), "\(name)_priv sender")
            try check(try opened.verifySignature(suite, publicKey: verifier, context: context), "\(name)_priv signature")

            var signedPrivate = try AuthenticatedContent.sign(content, wireFormat: .privateMessage, context: context, signer: signer, suite)
            signedPrivate.auth.confirmationTag = tag
            var senderTree = secretTree()
            let sealed = try PrivateMessage.protect(signedPrivate, secretTree: &senderTree, senderDataSecret: entry.senderDataSecret.bytes, paddingBlock: 32)
            var ownReceiver = secretTree()
            let (roundTrip, _) = try PrivateMessage(tlsEncoded: sealed.tlsEncoded()).unprotect(secretTree: &ownReceiver, senderDataSecret: entry.senderDataSecret.bytes)
            try check(roundTrip, signedPrivate, "\(name): own PrivateMessage round trip")
            try check(try roundTrip.verifySignature(suite, publicKey: verifier, context: context), "\(name): own PrivateMessage signature")
        }
    }

    @Test func messageProtectionVectors() throws {
        let report = try Self.messageProtection.runAndReport()
        #expect(report.failed == 0 && report.passed == 5 && report.skipped == 2)
    }
}
