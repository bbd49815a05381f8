/// `ExternalSender` (RFC 9420 §12.1.8.1): a party outside the group allowed to
/// send proposals, listed in the `external_senders` GroupContext extension.
public struct ExternalSender: Hashable, Sendable, TLSCodable {
    public var signatureKey: SignaturePublicKey
    public var credential: Credential

    public init(signatureKey: SignaturePublicKey, credential: Credential) {
        self.signatureKey = signatureKey
        self.credential = credential
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(signatureKey)
        try writer.write(credential)
    }

    public init(from reader: inout TLSReader) throws {
        signatureKey = try reader.read()
        credential = try reader.read()
    }
}

extension Array where Element == Extension {
    /// The data of the first extension of `type`.
    public func first(_ type: ExtensionType) -> [UInt8]? {
        first { $0.extensionType == type }?.extensionData
    }

    /// Decodes the first extension of `type` as `T`, strictly.
    public func decode<T: TLSDecodable>(_ type: ExtensionType, as _: T.Type = T.self) throws -> T? {
        try first(type).map { try T(tlsEncoded: $0) }
    }
}
