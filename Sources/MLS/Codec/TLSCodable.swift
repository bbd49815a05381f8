/// A value with a TLS presentation-language encoding (RFC 9420 §2.1).
public protocol TLSEncodable {
    func encode(to writer: inout TLSWriter) throws
}

/// A value that can be decoded strictly from its TLS encoding.
public protocol TLSDecodable {
    init(from reader: inout TLSReader) throws
}

public typealias TLSCodable = TLSEncodable & TLSDecodable

extension TLSEncodable {
    /// The value's complete encoding.
    public func tlsEncoded() throws -> [UInt8] {
        var writer = TLSWriter()
        try encode(to: &writer)
        return writer.bytes
    }
}

extension TLSDecodable {
    /// Decodes a value that must span exactly `bytes`; trailing bytes are an error.
    public init(tlsEncoded bytes: [UInt8]) throws {
        var reader = TLSReader(bytes)
        self = try Self(from: &reader)
        try reader.finish()
    }
}

extension UInt8: TLSCodable {
    public func encode(to writer: inout TLSWriter) { writer.write(self) }
    public init(from reader: inout TLSReader) throws { self = try reader.readUInt8() }
}

extension UInt16: TLSCodable {
    public func encode(to writer: inout TLSWriter) { writer.write(self) }
    public init(from reader: inout TLSReader) throws { self = try reader.read() }
}

extension UInt32: TLSCodable {
    public func encode(to writer: inout TLSWriter) { writer.write(self) }
    public init(from reader: inout TLSReader) throws { self = try reader.read() }
}

extension UInt64: TLSCodable {
    public func encode(to writer: inout TLSWriter) { writer.write(self) }
    public init(from reader: inout TLSReader) throws { self = try reader.read() }
}

/// A closed enumeration: decoding any value it does not define is an error.
///
/// Registries that are open to extension and GREASE (extension, proposal and
/// credential types, cipher suites) are modelled as structs instead, so that
/// unknown values survive a round trip.
public protocol TLSEnum: TLSCodable, RawRepresentable where RawValue: FixedWidthInteger & UnsignedInteger & TLSCodable {
}

extension TLSEnum {
    public func encode(to writer: inout TLSWriter) throws { try rawValue.encode(to: &writer) }

    public init(from reader: inout TLSReader) throws {
        let raw = try RawValue(from: &reader)
        guard let value = Self(rawValue: raw) else {
            throw DecodingError.unknownEnumValue(type: String(describing: Self.self), value: UInt64(raw))
        }
        self = value
    }
}

/// A value from an IANA registry that stays open to new and GREASE values
/// (RFC 9420 §13.5, §17): a `uint16` that decodes whatever it holds and
/// re-encodes it unchanged.
public protocol OpenRegistryValue: TLSCodable, RawRepresentable, Hashable, Sendable where RawValue == UInt16 {
    init(rawValue: UInt16)
}

extension OpenRegistryValue {
    public func encode(to writer: inout TLSWriter) { writer.write(rawValue) }
    public init(from reader: inout TLSReader) throws { self.init(rawValue: try reader.read()) }
}

/// A value that is a single `opaque<V>` on the wire, such as a public key.
public protocol OpaqueBytesValue: TLSCodable, Hashable, Sendable {
    var bytes: [UInt8] { get }
    init(_ bytes: [UInt8])
}

extension OpaqueBytesValue {
    public func encode(to writer: inout TLSWriter) throws { try writer.writeOpaque(bytes) }
    public init(from reader: inout TLSReader) throws { self.init(try reader.readOpaque()) }
}
