/// A KeyPackage with the private keys its owner needs to join through it
/// (RFC 9420 §10). The KeyPackage is published; the rest never leaves the device.
public struct KeyPackageBundle: Hashable, Sendable, CustomStringConvertible {
    public var keyPackage: KeyPackage
    public var initPrivateKey: HPKEPrivateKey
    public var encryptionPrivateKey: HPKEPrivateKey
    public var signaturePrivateKey: SignaturePrivateKey

    public var description: String { "KeyPackageBundle(\(keyPackage.cipherSuite), private keys redacted)" }

    /// Creates and signs a KeyPackage.
    ///
    /// - Parameters:
    ///   - lifetime: seconds since the Unix epoch between which the package is valid.
    ///   - lastResort: marks the package as reusable when a user's stock runs out.
    public init(
        _ suite: CipherSuiteProvider,
        credential: Credential,
        signatureKeys: SignatureKeyPair,
        capabilities: Capabilities? = nil,
        lifetime: Lifetime,
        leafExtensions: [Extension] = [],
        extensions: [Extension] = [],
        lastResort: Bool = false
    ) throws {
        let initKeys = try suite.generateHPKEKeyPair()
        let encryptionKeys = try suite.generateHPKEKeyPair()
        var leaf = LeafNode(
            encryptionKey: encryptionKeys.publicKey,
            signatureKey: signatureKeys.publicKey,
            credential: credential,
            capabilities: capabilities
                ?? Capabilities(cipherSuites: [suite.suite], credentials: [credential.credentialType]),
            source: .keyPackage(lifetime),
            extensions: leafExtensions
        )
        try leaf.sign(suite, with: signatureKeys.privateKey, groupID: [], leafIndex: LeafIndex(0))
        var packageExtensions = extensions
        if lastResort { packageExtensions.append(Extension(extensionType: .lastResort, extensionData: [])) }
        var keyPackage = KeyPackage(
            cipherSuite: suite.suite,
            initKey: initKeys.publicKey,
            leafNode: leaf,
            extensions: packageExtensions
        )
        keyPackage.signature = try suite.signWithLabel(
            signatureKeys.privateKey,
            label: "KeyPackageTBS",
            content: keyPackage.toBeSigned()
        )
        self.keyPackage = keyPackage
        initPrivateKey = initKeys.privateKey
        encryptionPrivateKey = encryptionKeys.privateKey
        signaturePrivateKey = signatureKeys.privateKey
    }

    public init(
        keyPackage: KeyPackage,
        initPrivateKey: HPKEPrivateKey,
        encryptionPrivateKey: HPKEPrivateKey,
        signaturePrivateKey: SignaturePrivateKey
    ) {
        self.keyPackage = keyPackage
        self.initPrivateKey = initPrivateKey
        self.encryptionPrivateKey = encryptionPrivateKey
        self.signaturePrivateKey = signaturePrivateKey
    }
}

extension KeyPackage {
    /// Checks a KeyPackage on its own (RFC 9420 §10.1 without a group): both
    /// signatures, the leaf's source, its capabilities covering its own suite
    /// and extensions, and distinct init and encryption keys. A server's
    /// KeyPackage directory uses this before storing one.
    public func validate() throws {
        try PublicGroup.validateKeyPackageAlone(self, cipherSuite.provider())
    }

    /// Whether the package carries the last-resort marker.
    public var isLastResort: Bool { extensions.contains { $0.extensionType == .lastResort } }
}
