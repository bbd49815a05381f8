@testable import MLS

/// A client with real keys, for building trees and groups in tests.
struct TestMember {
    let signature: SignatureKeyPair
    let encryption: HPKEKeyPair
    let leafNode: LeafNode

    init(_ suite: CipherSuiteProvider, _ name: String) throws {
        signature = suite.generateSignatureKeyPair()
        encryption = try suite.generateHPKEKeyPair()
        var leaf = LeafNode(
            encryptionKey: encryption.publicKey,
            signatureKey: signature.publicKey,
            credential: .basic(identity: Array(name.utf8)),
            capabilities: Capabilities(cipherSuites: [suite.suite]),
            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max))
        )
        try leaf.sign(suite, with: signature.privateKey, groupID: [], leafIndex: LeafIndex(0))
        leafNode = leaf
    }

    /// A leaf with distinct placeholder keys and no valid signature: enough
    /// for tests that only exercise tree shape and hashing.
    static func placeholderLeaf(_ number: Int) -> LeafNode {
        let bytes = withUnsafeBytes(of: UInt64(number).bigEndian, Array.init)
        return LeafNode(
            encryptionKey: HPKEPublicKey([1] + bytes),
            signatureKey: SignaturePublicKey([2] + bytes),
            credential: .basic(identity: bytes),
            capabilities: Capabilities(cipherSuites: [.mls128DHKEMX25519AES128GCMSHA256Ed25519]),
            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)),
            signature: [0]
        )
    }

    func privateKeys(at leaf: LeafIndex) -> TreeKEMPrivateKeys {
        TreeKEMPrivateKeys(leafIndex: leaf, leafKey: encryption.privateKey)
    }
}
