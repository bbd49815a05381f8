/// The variable-size vector length header of RFC 9420 §2.1.2: a QUIC-style
/// varint restricted to 1, 2 or 4 bytes and to minimal encodings.
enum VariableLengthInteger {
    /// The largest length a header can express, 2^30 - 1.
    static let maximum = (1 << 30) - 1

    static func encodedSize(of value: Int) -> Int {
        switch value {
        case ..<64: return 1
        case ..<16384: return 2
        default: return 4
        }
    }

    static func encode(_ value: Int, into bytes: inout [UInt8]) throws {
        guard value >= 0, value <= maximum else { throw EncodingError.vectorTooLong(value) }
        switch encodedSize(of: value) {
        case 1:
            bytes.append(UInt8(value))
        case 2:
            bytes.append(0x40 | UInt8(value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
        default:
            bytes.append(0x80 | UInt8(value >> 24))
            bytes.append(UInt8(truncatingIfNeeded: value >> 16))
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
        }
    }
}
