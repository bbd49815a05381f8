import Testing

@testable import MLS

/// Each supported suite signs, verifies and HPKE-encrypts end to end, and the
/// unsupported ones fail with a clear error instead of crashing.
@Suite struct CipherSuiteTests {
    static let suites = CipherSuite.supported

    @Test func theFiveRequiredSuitesAndThePostQuantumOneAreSupported() {
        #expect(CipherSuite.supported.map(\.rawValue) == [1, 2, 3, 5, 7, 0x004D])
    }

    @Test(arguments: [UInt16(4), 6, 0, 0x0a0a, 0xf000])
    func unsupportedSuitesThrow(raw: UInt16) {
        #expect(throws: MLSError.unsupportedCipherSuite(raw)) { try CipherSuite(rawValue: raw).provider() }
    }

    @Test(arguments: suites)
    func signAndVerify(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let pair = provider.generateSignatureKeyPair()
        #expect(try provider.signaturePublicKey(for: pair.privateKey) == pair.publicKey)
        let content: [UInt8] = Array("hello group".utf8)
        let signature = try provider.signWithLabel(pair.privateKey, label: "Test", content: content)
        #expect(try provider.verifyWithLabel(pair.publicKey, label: "Test", content: content, signature: signature))
        // Another label, other content, a flipped bit or a stranger's key: all rejected.
        #expect(try !provider.verifyWithLabel(pair.publicKey, label: "Other", content: content, signature: signature))
        #expect(
            try !provider.verifyWithLabel(pair.publicKey, label: "Test", content: content + [0], signature: signature)
        )
        var flipped = signature
        flipped[flipped.count / 2] ^= 0x01
        #expect(try !provider.verifyWithLabel(pair.publicKey, label: "Test", content: content, signature: flipped))
        let stranger = provider.generateSignatureKeyPair()
        #expect(
            try !provider.verifyWithLabel(stranger.publicKey, label: "Test", content: content, signature: signature)
        )
        // Garbage keys and signatures do not verify and do not crash.
        #expect(!provider.verify([1, 2, 3], message: content, publicKey: SignaturePublicKey([4, 5])))
    }

    @Test(arguments: suites)
    func hpkeRoundTrip(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let recipient = try provider.generateHPKEKeyPair()
        #expect(try provider.hpkePublicKey(for: recipient.privateKey) == recipient.publicKey)
        let plaintext = provider.randomBytes(100)
        let sealed = try provider.encryptWithLabel(
            recipient.publicKey,
            label: "Test",
            context: [1, 2],
            plaintext: plaintext
        )
        #expect(
            try provider.decryptWithLabel(recipient.privateKey, label: "Test", context: [1, 2], ciphertext: sealed)
                == plaintext
        )
        // A different context, a different key or a modified ciphertext all fail to open.
        #expect(throws: MLSError.decryptionFailed) {
            try provider.decryptWithLabel(recipient.privateKey, label: "Test", context: [1, 3], ciphertext: sealed)
        }
        let other = try provider.generateHPKEKeyPair()
        #expect(throws: MLSError.decryptionFailed) {
            try provider.decryptWithLabel(other.privateKey, label: "Test", context: [1, 2], ciphertext: sealed)
        }
        var tampered = sealed
        tampered.ciphertext[0] ^= 0x80
        #expect(throws: MLSError.decryptionFailed) {
            try provider.decryptWithLabel(recipient.privateKey, label: "Test", context: [1, 2], ciphertext: tampered)
        }
        let garbage = HPKECiphertext(kemOutput: [1, 2, 3], ciphertext: [4, 5, 6])
        #expect(throws: MLSError.decryptionFailed) {
            try provider.decryptWithLabel(recipient.privateKey, label: "Test", context: [1, 2], ciphertext: garbage)
        }
    }

    @Test(arguments: suites)
    func hpkeExportAgreesOnBothSides(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let recipient = try provider.generateHPKEKeyPair()
        let label = Array("MLS 1.0 external init secret".utf8)
        let sent = try provider.hpkeExportSender(
            publicKey: recipient.publicKey,
            info: [],
            exporterContext: label,
            length: provider.hashLength
        )
        let received = try provider.hpkeExportReceiver(
            privateKey: recipient.privateKey,
            kemOutput: sent.kemOutput,
            info: [],
            exporterContext: label,
            length: provider.hashLength
        )
        #expect(sent.secret == received)
        #expect(sent.secret.count == provider.hashLength)
    }

    @Test(arguments: suites)
    func deriveKeyPairIsDeterministic(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let ikm = provider.randomBytes(32)
        let first = try provider.deriveHPKEKeyPair(ikm: ikm)
        #expect(try provider.deriveHPKEKeyPair(ikm: ikm) == first)
        var other = ikm
        other[0] ^= 1
        #expect(try provider.deriveHPKEKeyPair(ikm: other) != first)
    }

    @Test(arguments: suites)
    func aeadRejectsTamperingAndBadParameters(suite: CipherSuite) throws {
        let provider = try suite.provider()
        let key = provider.randomBytes(provider.aeadKeyLength)
        let nonce = provider.randomBytes(provider.aeadNonceLength)
        let sealed = try provider.seal(key: key, nonce: nonce, aad: [1], plaintext: [1, 2, 3])
        #expect(try provider.open(key: key, nonce: nonce, aad: [1], ciphertext: sealed) == [1, 2, 3])
        #expect(throws: MLSError.decryptionFailed) {
            try provider.open(key: key, nonce: nonce, aad: [2], ciphertext: sealed)
        }
        #expect(throws: MLSError.decryptionFailed) {
            try provider.open(key: key, nonce: nonce, aad: [1], ciphertext: [1, 2])
        }
        #expect(throws: MLSError.self) { try provider.seal(key: [1], nonce: nonce, aad: [], plaintext: []) }
    }

    @Test func macVerificationRejectsWrongTags() throws {
        let provider = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let tag = provider.mac(key: [1, 2, 3], data: [4, 5])
        #expect(provider.verifyMAC(tag, key: [1, 2, 3], data: [4, 5]))
        #expect(!provider.verifyMAC(tag, key: [1, 2, 4], data: [4, 5]))
        #expect(!provider.verifyMAC(Array(tag.dropLast()), key: [1, 2, 3], data: [4, 5]))
    }

    @Test func oversizedKDFRequestsAreErrorsNotTraps() throws {
        let provider = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        #expect(throws: MLSError.invalidLength(255 * 32 + 1)) {
            try provider.expandWithLabel([1], label: "x", context: [], length: 255 * 32 + 1)
        }
        #expect(throws: MLSError.invalidLength(70000)) {
            try provider.expandWithLabel([1], label: "x", context: [], length: 70000)
        }
    }

    @Test func secretsAreNotPrinted() throws {
        let provider = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let pair = provider.generateSignatureKeyPair()
        #expect("\(pair.privateKey)" == "SignaturePrivateKey(redacted)")
        #expect("\(try provider.generateHPKEKeyPair().privateKey)" == "HPKEPrivateKey(redacted)")
    }
}
