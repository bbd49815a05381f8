/// Serialises values in the TLS presentation language as MLS uses it
/// (RFC 9420 §2.1): big-endian integers and vectors with variable-size headers.
public struct TLSWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write<I: FixedWidthInteger & UnsignedInteger>(_ value: I) {
        var shift = I.bitWidth - 8
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }

    /// Raw bytes with no length header (fixed-size fields such as `reuse_guard[4]`).
    public mutating func writeRaw<C: Collection>(_ raw: C) where C.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    /// `opaque data<V>`.
    public mutating func writeOpaque<C: Collection>(_ raw: C) throws where C.Element == UInt8 {
        try VariableLengthInteger.encode(raw.count, into: &bytes)
        bytes.append(contentsOf: raw)
    }

    /// A `<V>` vector whose body is written by `body`; the header is inserted
    /// once the body's length is known.
    public mutating func writeVector(_ body: (inout TLSWriter) throws -> Void) throws {
        var inner = TLSWriter()
        try body(&inner)
        try writeOpaque(inner.bytes)
    }

    /// `T items<V>`.
    public mutating func writeVector<T: TLSEncodable>(_ items: [T]) throws {
        try writeVector { writer in
            for item in items { try item.encode(to: &writer) }
        }
    }

    /// `optional<T>` (§2.1.1).
    public mutating func writeOptional<T: TLSEncodable>(_ value: T?) throws {
        if let value {
            write(UInt8(1))
            try value.encode(to: &self)
        } else {
            write(UInt8(0))
        }
    }

    public mutating func write<T: TLSEncodable>(_ value: T) throws {
        try value.encode(to: &self)
    }
}
