import Testing

@testable import MLS

/// Cipher suite 0x004D, MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519: X-Wing
/// (ML-KEM-768 + X25519) wherever MLS uses HPKE. No official test vector covers
/// this suite, so these tests check its sizes, determinism and failure modes
/// directly and run whole groups on it; the suite-parameterised tests elsewhere
/// (CipherSuiteTests, TreeKEMTests, GroupTests) include it too.
@Suite struct PostQuantumSuiteTests {
    let suite = try! CipherSuite.mls256XWingChaCha20Poly1305SHA256Ed25519.provider()

    func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    @Test func theSuiteUsesXWingKeysAndEncapsulations() throws {
        #expect(suite.suite.rawValue == 0x004D)
        #expect(suite.hpkeCiphersuite.kem == .XWingMLKEM768X25519)
        #expect(suite.hashLength == 32 && suite.aeadKeyLength == 32)
        let pair = try suite.generateHPKEKeyPair()
        // draft-connolly-cfrg-xwing-kem-06 §5: a 32-byte seed, a 1216-byte
        // public key and a 1120-byte encapsulation.
        #expect(pair.privateKey.bytes.count == 32)
        #expect(pair.publicKey.bytes.count == 1216)
        let sealed = try suite.hpkeSeal(publicKey: pair.publicKey, info: [1], aad: [2], plaintext: [3, 4])
        #expect(sealed.kemOutput.count == 1120)
        #expect(try suite.hpkeOpen(privateKey: pair.privateKey, info: [1], aad: [2], ciphertext: sealed) == [3, 4])
    }

    @Test func keyDerivationIsDeterministicAndChecksTheSeedLength() throws {
        let seed = suite.randomBytes(32)
        #expect(try suite.deriveHPKEKeyPair(ikm: seed) == suite.deriveHPKEKeyPair(ikm: seed))
        #expect(try suite.deriveHPKEKeyPair(ikm: seed) != suite.deriveHPKEKeyPair(ikm: suite.randomBytes(32)))
        #expect(throws: MLSError.invalidLength(31)) { try suite.deriveHPKEKeyPair(ikm: suite.randomBytes(31)) }
        #expect(throws: MLSError.self) { try suite.hpkePublicKey(for: HPKEPrivateKey([1, 2, 3])) }
    }

    @Test func damagedEncapsulationsAndForeignKeysFailCleanly() throws {
        let pair = try suite.generateHPKEKeyPair()
        let sealed = try suite.hpkeSeal(publicKey: pair.publicKey, info: [], aad: [], plaintext: [7])
        var flipped = sealed
        flipped.kemOutput[500] ^= 0x01
        // ML-KEM decapsulation never fails outright (implicit rejection): the
        // wrong shared secret shows as an AEAD failure.
        #expect(throws: MLSError.decryptionFailed) {
            try suite.hpkeOpen(privateKey: pair.privateKey, info: [], aad: [], ciphertext: flipped)
        }
        var short = sealed
        short.kemOutput.removeLast()
        #expect(throws: MLSError.decryptionFailed) {
            try suite.hpkeOpen(privateKey: pair.privateKey, info: [], aad: [], ciphertext: short)
        }
        let classical = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider().generateHPKEKeyPair()
        #expect(throws: MLSError.self) {
            try suite.hpkeSeal(publicKey: classical.publicKey, info: [], aad: [], plaintext: [7])
        }
        let other = try suite.generateHPKEKeyPair()
        #expect(throws: MLSError.decryptionFailed) {
            try suite.hpkeOpen(privateKey: other.privateKey, info: [], aad: [], ciphertext: sealed)
        }
    }

    @Test func keyPackagesValidateDecodeAndRejectTampering() throws {
        let package = try TestClient("alice", suite).keyPackage().keyPackage
        try package.validate()
        #expect(package.initKey.bytes.count == 1216 && package.leafNode.encryptionKey.bytes.count == 1216)
        let bytes = try package.tlsEncoded()
        let decoded = try KeyPackage(tlsEncoded: bytes)
        #expect(decoded == package)
        try decoded.validate()
        var tampered = package
        tampered.initKey.bytes[100] ^= 0x01
        #expect(throws: MLSError.self) { try tampered.validate() }
    }

    @Test func aGroupLivesItsWholeLifeOnTheSuite() throws {
        var alice = try TestClient("alice", suite).createGroup()
        var nobody: [Group] = []
        let joined = try add([TestClient("bob", suite), TestClient("charlie", suite)], to: &alice, others: &nobody)
        var (bob, charlie) = (joined[0], joined[1])
        #expect(bob.suite.suite == .mls256XWingChaCha20Poly1305SHA256Ed25519)
        #expect(try bob.process(alice.encrypt(text("hello"))).applicationText == "hello")
        #expect(try charlie.process(alice.encrypt(text("hi all"))).applicationText == "hi all")

        let update = try bob.selfUpdate()
        _ = try alice.process(update.message)
        _ = try bob.process(update.message)
        _ = try charlie.process(update.message)
        #expect(
            alice.epochAuthenticator == bob.epochAuthenticator && bob.epochAuthenticator == charlie.epochAuthenticator
        )

        let removal = try alice.removeMembers([charlie.ownLeaf])
        _ = try alice.process(removal.message)
        _ = try bob.process(removal.message)
        #expect(try charlie.process(removal.message).commitSummary?.removedSelf == true)
        let secret = try alice.encrypt(text("after charlie"))
        #expect(try bob.process(secret).applicationText == "after charlie")
        #expect(throws: MLSError.self) { try charlie.process(secret) }

        var restored = try Group(serialized: bob.serialized())
        #expect(try restored.process(alice.encrypt(text("saved"))).applicationText == "saved")
    }

    @Test func externalJoinUsesAnXWingExternalPub() throws {
        var alice = try TestClient("alice", suite).createGroup()
        var nobody: [Group] = []
        var bob = try add([TestClient("bob", suite)], to: &alice, others: &nobody)[0]
        let dave = TestClient("dave", suite)
        var (daveGroup, commit) = try Group.joinExternally(
            groupInfo: try alice.groupInfo(includeExternalPub: true),
            credential: dave.credential,
            signatureKeys: dave.signatureKeys
        )
        #expect(try alice.process(commit).commitSummary?.committer == .newMemberCommit)
        _ = try bob.process(commit)
        #expect(daveGroup.epochAuthenticator == alice.epochAuthenticator)
        #expect(try daveGroup.process(bob.encrypt(text("welcome"))).applicationText == "welcome")
        #expect(try alice.process(daveGroup.encrypt(text("thanks"))).applicationText == "thanks")
    }

    @Test func classicalKeyPackagesCannotJoinAPostQuantumGroup() throws {
        var alice = try TestClient("alice", suite).createGroup()
        let classical = try CipherSuite.mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519.provider()
        let bob = try TestClient("bob", classical).keyPackage().keyPackage
        #expect(throws: MLSError.self) { try alice.addMembers([bob]) }
    }
}
