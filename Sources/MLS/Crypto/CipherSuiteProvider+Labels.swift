/// The labelled constructions MLS builds on its primitives (RFC 9420 §5.1.2,
/// §5.1.3, §5.2, §8, §9).
extension CipherSuiteProvider {
    static let labelPrefix = Array("MLS 1.0 ".utf8)

    /// ExpandWithLabel (RFC 9420 §8): KDF.Expand over a `KDFLabel`.
    public func expandWithLabel(_ secret: [UInt8], label: [UInt8], context: [UInt8], length: Int) throws -> [UInt8] {
        guard let length16 = UInt16(exactly: length) else { throw MLSError.invalidLength(length) }
        var kdfLabel = TLSWriter()
        kdfLabel.write(length16)
        try kdfLabel.writeOpaque(Self.labelPrefix + label)
        try kdfLabel.writeOpaque(context)
        return try expand(prk: secret, info: kdfLabel.bytes, length: length)
    }

    public func expandWithLabel(_ secret: [UInt8], label: String, context: [UInt8], length: Int) throws -> [UInt8] {
        try expandWithLabel(secret, label: Array(label.utf8), context: context, length: length)
    }

    /// DeriveSecret (RFC 9420 §8).
    public func deriveSecret(_ secret: [UInt8], label: [UInt8]) throws -> [UInt8] {
        try expandWithLabel(secret, label: label, context: [], length: hashLength)
    }

    public func deriveSecret(_ secret: [UInt8], label: String) throws -> [UInt8] {
        try deriveSecret(secret, label: Array(label.utf8))
    }

    /// DeriveTreeSecret (RFC 9420 §9.1): the generation is the context, as a big-endian uint32.
    public func deriveTreeSecret(_ secret: [UInt8], label: String, generation: UInt32, length: Int) throws -> [UInt8] {
        var context = TLSWriter(reservingCapacity: 4)
        context.write(generation)
        return try expandWithLabel(secret, label: label, context: context.bytes, length: length)
    }

    /// RefHash (RFC 9420 §5.2): the hash of a `RefHashInput`; `label` is used as given.
    public func refHash(label: [UInt8], value: [UInt8]) throws -> [UInt8] {
        var input = TLSWriter(reservingCapacity: label.count + value.count + 8)
        try input.writeOpaque(label)
        try input.writeOpaque(value)
        return hash(input.bytes)
    }

    public func refHash(label: String, value: [UInt8]) throws -> [UInt8] {
        try refHash(label: Array(label.utf8), value: value)
    }

    /// MakeKeyPackageRef (RFC 9420 §5.2) over an encoded KeyPackage.
    public func makeKeyPackageRef(_ encodedKeyPackage: [UInt8]) throws -> [UInt8] {
        try refHash(label: "MLS 1.0 KeyPackage Reference", value: encodedKeyPackage)
    }

    /// MakeProposalRef (RFC 9420 §5.2) over the encoded AuthenticatedContent carrying the proposal.
    public func makeProposalRef(_ encodedAuthenticatedContent: [UInt8]) throws -> [UInt8] {
        try refHash(label: "MLS 1.0 Proposal Reference", value: encodedAuthenticatedContent)
    }

    /// `SignContent` / `EncryptContext` (RFC 9420 §5.1.2, §5.1.3): the prefixed label, then the content.
    private func labeledContent(label: String, content: [UInt8]) throws -> [UInt8] {
        var writer = TLSWriter(reservingCapacity: content.count + label.utf8.count + 16)
        try writer.writeOpaque(Self.labelPrefix + Array(label.utf8))
        try writer.writeOpaque(content)
        return writer.bytes
    }

    /// SignWithLabel (RFC 9420 §5.1.2).
    public func signWithLabel(_ privateKey: SignaturePrivateKey, label: String, content: [UInt8]) throws -> [UInt8] {
        try sign(labeledContent(label: label, content: content), with: privateKey)
    }

    /// VerifyWithLabel (RFC 9420 §5.1.2).
    public func verifyWithLabel(
        _ publicKey: SignaturePublicKey,
        label: String,
        content: [UInt8],
        signature: [UInt8]
    ) throws -> Bool {
        verify(signature, message: try labeledContent(label: label, content: content), publicKey: publicKey)
    }

    /// EncryptWithLabel (RFC 9420 §5.1.3): HPKE SealBase with `EncryptContext` as info and empty AAD.
    public func encryptWithLabel(
        _ publicKey: HPKEPublicKey,
        label: String,
        context: [UInt8],
        plaintext: [UInt8]
    ) throws -> HPKECiphertext {
        try hpkeSeal(
            publicKey: publicKey,
            info: labeledContent(label: label, content: context),
            aad: [],
            plaintext: plaintext
        )
    }

    /// DecryptWithLabel (RFC 9420 §5.1.3).
    public func decryptWithLabel(
        _ privateKey: HPKEPrivateKey,
        label: String,
        context: [UInt8],
        ciphertext: HPKECiphertext
    ) throws -> [UInt8] {
        try hpkeOpen(
            privateKey: privateKey,
            info: labeledContent(label: label, content: context),
            aad: [],
            ciphertext: ciphertext
        )
    }
}
