/// Reads the TLS presentation language strictly (RFC 9420 §2.1).
///
/// A reader is a window onto a shared buffer, so reading a nested vector does
/// not copy it. Every length is checked against the bytes that remain before
/// anything is sliced or allocated, so an untrusted length can never size an
/// allocation.
public struct TLSReader: Sendable {
    private let base: [UInt8]
    private var position: Int
    private let end: Int
    private let depth: Int

    /// Nested vectors deeper than this are rejected rather than recursed into.
    static let maximumDepth = 64

    public init(_ bytes: [UInt8]) {
        base = bytes
        position = 0
        end = bytes.count
        depth = 0
    }

    private init(base: [UInt8], position: Int, end: Int, depth: Int) {
        self.base = base
        self.position = position
        self.end = end
        self.depth = depth
    }

    public var remaining: Int { end - position }
    public var isAtEnd: Bool { position == end }

    /// Throws unless every byte has been consumed.
    public func finish() throws {
        guard isAtEnd else { throw DecodingError.trailingBytes(count: remaining) }
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw DecodingError.truncated(needed: count, remaining: remaining)
        }
        defer { position += count }
        return base[position..<position + count]
    }

    public mutating func readUInt8() throws -> UInt8 {
        try take(1).first!
    }

    public mutating func read<I: FixedWidthInteger & UnsignedInteger>(_: I.Type = I.self) throws -> I {
        var value: I = 0
        for byte in try take(I.bitWidth / 8) {
            value = value << 8 | I(byte)
        }
        return value
    }

    /// Fixed-size raw bytes, e.g. `opaque reuse_guard[4]`.
    public mutating func readRaw(count: Int) throws -> [UInt8] {
        Array(try take(count))
    }

    /// A §2.1.2 variable-size length header.
    public mutating func readVariableLength() throws -> Int {
        let first = try readUInt8()
        let prefix = first >> 6
        guard prefix != 3 else { throw DecodingError.reservedLengthPrefix }
        let size = 1 << prefix
        var value = Int(first & 0x3f)
        for byte in try take(size - 1) {
            value = value << 8 | Int(byte)
        }
        if prefix >= 1, value < 1 << (8 * (size / 2) - 2) {
            throw DecodingError.nonMinimalLength
        }
        return value
    }

    /// `opaque data<V>`.
    public mutating func readOpaque() throws -> [UInt8] {
        Array(try take(try readVariableLength()))
    }

    /// Reads a `<V>` vector header and hands `body` a reader confined to the
    /// vector's bytes; `body` must consume all of them.
    public mutating func readVectorContents<T>(_ body: (inout TLSReader) throws -> T) throws -> T {
        guard depth < Self.maximumDepth else { throw DecodingError.tooDeep }
        let length = try readVariableLength()
        guard length <= remaining else {
            throw DecodingError.truncated(needed: length, remaining: remaining)
        }
        var inner = TLSReader(base: base, position: position, end: position + length, depth: depth + 1)
        let value = try body(&inner)
        try inner.finish()
        position += length
        return value
    }

    /// `T items<V>`, decoding elements until the vector's bytes are used up.
    /// The element count is never taken from the input, so nothing is
    /// preallocated from an untrusted number.
    public mutating func readVector<T>(of element: (inout TLSReader) throws -> T) throws -> [T] {
        try readVectorContents { inner in
            var items: [T] = []
            while !inner.isAtEnd { items.append(try element(&inner)) }
            return items
        }
    }

    public mutating func readVector<T: TLSDecodable>(of _: T.Type = T.self) throws -> [T] {
        try readVector(of: { try T(from: &$0) })
    }

    /// `optional<T>` (§2.1.1): a presence octet of exactly 0 or 1.
    public mutating func readOptional<T>(_ body: (inout TLSReader) throws -> T) throws -> T? {
        switch try readUInt8() {
        case 0: return nil
        case 1: return try body(&self)
        case let other: throw DecodingError.invalidOptionalPresence(other)
        }
    }

    public mutating func readOptional<T: TLSDecodable>(_: T.Type = T.self) throws -> T? {
        try readOptional { try T(from: &$0) }
    }

    public mutating func read<T: TLSDecodable>(_: T.Type = T.self) throws -> T {
        try T(from: &self)
    }
}
