/// A credential type (RFC 9420 §5.3, registry §17.5). Open for GREASE values
/// in capability lists.
public struct CredentialType: OpenRegistryValue {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let basic = CredentialType(rawValue: 1)
    public static let x509 = CredentialType(rawValue: 2)
}

/// `Credential` (RFC 9420 §5.3): who a member claims to be. Whether the claim
/// is acceptable is the application's decision, not this library's.
public enum Credential: Hashable, Sendable, TLSCodable {
    /// An application-defined identity, e.g. a user name.
    case basic(identity: [UInt8])
    /// An X.509 chain, leaf first, each certificate DER-encoded and kept opaque.
    case x509(certificates: [[UInt8]])

    public var credentialType: CredentialType {
        switch self {
        case .basic: .basic
        case .x509: .x509
        }
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(credentialType)
        switch self {
        case .basic(let identity):
            try writer.writeOpaque(identity)
        case .x509(let certificates):
            try writer.writeVector { inner in
                for certificate in certificates { try inner.writeOpaque(certificate) }
            }
        }
    }

    public init(from reader: inout TLSReader) throws {
        let type = try reader.read(CredentialType.self)
        switch type {
        case .basic:
            self = .basic(identity: try reader.readOpaque())
        case .x509:
            self = .x509(certificates: try reader.readVector(of: { try $0.readOpaque() }))
        default:
            // Without a length prefix the body of an unknown type cannot be skipped.
            throw DecodingError.unknownEnumValue(type: "CredentialType", value: UInt64(type.rawValue))
        }
    }
}
