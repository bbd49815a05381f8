import Foundation
import Testing

@testable import MLS

/// The fuzz targets' checks (Fuzz/, `scripts/fuzz`), kept in the normal suite
/// for the inputs they start from and the hostile ones they were built to
/// reach. Each input goes through the public API and must end in a typed
/// error that leaves the group as it was, never a trap.
@Suite struct FuzzRegressionTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// alice, bob and charlie at epoch 1, as the group-process target's live group.
    func threeMembers() throws -> (alice: Group, bob: Group, charlie: Group) {
        var alice = try TestClient("alice", suite).createGroup()
        var nobody: [Group] = []
        let joined = try add([TestClient("bob", suite), TestClient("charlie", suite)], to: &alice, others: &nobody)
        return (alice, joined[0], joined[1])
    }

    /// mls-message target: every prefix of every official message is refused
    /// with a DecodingError, and every whole one re-encodes byte for byte.
    @Test func everyTruncatedVectorMessageIsADecodingError() throws {
        let data = try Data(contentsOf: VectorDirectory.url().appendingPathComponent("messages.json"))
        let entries = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: String]])
        let fields = ["mls_welcome", "mls_group_info", "mls_key_package", "public_message_commit", "private_message"]
        for entry in entries.prefix(3) {
            for field in fields {
                let bytes = try #require(entry[field].flatMap(Hex.decode), "\(field) is not hex")
                #expect(try MLSMessage(tlsEncoded: bytes).tlsEncoded() == bytes, "\(field) does not round-trip")
                for length in 0..<bytes.count {
                    #expect(throws: DecodingError.self, "\(field) cut at \(length)") {
                        try MLSMessage(tlsEncoded: Array(bytes.prefix(length)))
                    }
                }
            }
        }
    }

    /// group-process kind 5: a member encrypts a message itself and claims
    /// another leaf, a leaf beyond the tree or a generation far ahead in its
    /// SenderData. Receivers refuse each with a typed error and stay put.
    @Test func aMembersForgedSenderDataIsRefusedWithoutChangingTheGroup() throws {
        let members = try threeMembers()
        var alice = members.alice
        let bob = members.bob
        let claims: [(leaf: UInt32, generation: UInt32)] = [
            (0, 0), (2, 3), (3, 0), (UInt32(1) << 31 | 1, 0), (.max, .max), (1, 1001), (1, .max),
        ]
        for claim in claims {
            let forged = try forgePrivateMessage(Array("hi".utf8), from: bob, claiming: claim)
            let before = alice.epochAuthenticator
            #expect(throws: MLSError.self, "claim \(claim)") { try alice.process(forged) }
            #expect(alice.epochAuthenticator == before)
        }
        // The honest claim still works afterwards: nothing above consumed a key.
        let honest = try forgePrivateMessage(Array("hi".utf8), from: bob, claiming: (1, 0))
        #expect(try alice.process(honest).applicationText == "hi")
    }

    /// group-process kind 3: a Commit a member signs and tags with the real
    /// membership key but whose confirmation tag it cannot compute. The
    /// server's view cannot check that tag; members must refuse the Commit.
    @Test func aMembersCommitWithAForgedConfirmationTagIsRefused() throws {
        var (alice, bob, charlie) = try threeMembers()
        let content = FramedContent(
            groupID: bob.groupID,
            epoch: bob.epoch,
            sender: .member(bob.ownLeaf),
            body: .commit(Commit(proposals: [.proposal(.remove(removed: charlie.ownLeaf))]))
        )
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .publicMessage,
            context: bob.context,
            signer: bob.signer,
            suite
        )
        signed.auth.confirmationTag = [UInt8](repeating: 0, count: suite.hashLength)
        let forged = MLSMessage.publicMessage(
            try PublicMessage.protect(
                signed,
                membershipKey: bob.epochSecrets.membershipKey,
                context: bob.context,
                suite
            )
        )
        #expect(throws: MLSError.self) { try alice.process(forged) }
        #expect(throws: MLSError.self) { try charlie.process(forged) }
        #expect(alice.epoch == 1 && charlie.epoch == 1 && charlie.isActive)
    }

    /// What Fuzz/Sources/ParleyFuzzKit/Forge.swift does: `data` signed by
    /// `sender` and encrypted under its own ratchet, with SenderData claiming
    /// `claim` (the key is the claimed generation's when the ratchet reaches it,
    /// else the next one's).
    func forgePrivateMessage(
        _ data: [UInt8],
        from sender: Group,
        claiming claim: (leaf: UInt32, generation: UInt32)
    ) throws -> MLSMessage {
        let content = FramedContent(
            groupID: sender.groupID,
            epoch: sender.epoch,
            sender: .member(sender.ownLeaf),
            body: .application(data)
        )
        let signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .privateMessage,
            context: sender.context,
            signer: sender.signer,
            suite
        )
        var plaintext = TLSWriter()
        try FramedContent.encodeBody(content.body, to: &plaintext)
        try signed.auth.encode(to: &plaintext, contentType: .application)
        // A copy: the sender's own ratchet is not consumed, so each forgery starts afresh.
        var ratchet = sender.secretTree
        let key =
            try (try? ratchet.key(for: sender.ownLeaf, .application, generation: claim.generation))
            ?? ratchet.nextKey(for: sender.ownLeaf, .application)
        let reuseGuard: [UInt8] = [0, 0, 0, 0]
        let aad = try PrivateMessage.contentAAD(
            groupID: content.groupID,
            epoch: content.epoch,
            contentType: .application,
            authenticatedData: []
        )
        let ciphertext = try suite.seal(
            key: key.key,
            nonce: PrivateMessage.guarded(key.nonce, reuseGuard),
            aad: aad,
            plaintext: plaintext.bytes
        )
        let senderKey = try SenderDataKey(
            suite,
            senderDataSecret: sender.epochSecrets.senderDataSecret,
            ciphertext: ciphertext
        )
        let senderData = SenderData(
            leafIndex: LeafIndex(claim.leaf),
            generation: claim.generation,
            reuseGuard: reuseGuard
        )
        let encryptedSenderData = try suite.seal(
            key: senderKey.key,
            nonce: senderKey.nonce,
            aad: PrivateMessage.senderDataAAD(
                groupID: content.groupID,
                epoch: content.epoch,
                contentType: .application
            ),
            plaintext: senderData.tlsEncoded()
        )
        return .privateMessage(
            PrivateMessage(
                groupID: content.groupID,
                epoch: content.epoch,
                contentType: .application,
                authenticatedData: [],
                encryptedSenderData: encryptedSenderData,
                ciphertext: ciphertext
            )
        )
    }
}
