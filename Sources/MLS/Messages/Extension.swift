/// An extension type from the "MLS Extension Types" registry (RFC 9420 §17.3).
/// Open-ended, so GREASE and unknown types round-trip unchanged.
public struct ExtensionType: OpenRegistryValue {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let applicationID = ExtensionType(rawValue: 0x0001)
    public static let ratchetTree = ExtensionType(rawValue: 0x0002)
    public static let requiredCapabilities = ExtensionType(rawValue: 0x0003)
    public static let externalPub = ExtensionType(rawValue: 0x0004)
    public static let externalSenders = ExtensionType(rawValue: 0x0005)
}

/// `Extension` (RFC 9420 §13): a type and opaque data interpreted by whoever knows the type.
public struct Extension: Hashable, Sendable, TLSCodable {
    public var extensionType: ExtensionType
    public var extensionData: [UInt8]

    public init(extensionType: ExtensionType, extensionData: [UInt8]) {
        self.extensionType = extensionType
        self.extensionData = extensionData
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(extensionType)
        try writer.writeOpaque(extensionData)
    }

    public init(from reader: inout TLSReader) throws {
        extensionType = try reader.read()
        extensionData = try reader.readOpaque()
    }
}
