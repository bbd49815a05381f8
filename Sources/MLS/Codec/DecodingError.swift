/// Why a byte string is not a valid encoding (RFC 9420 §2.1).
///
/// Every decoder in this module is strict: it rejects truncated input,
/// trailing bytes, non-minimal or reserved length headers and unknown values of
/// closed enumerations with one of these errors instead of guessing.
public enum DecodingError: Error, Hashable, Sendable {
    /// The input ended `needed` bytes short of a field.
    case truncated(needed: Int, remaining: Int)
    /// A complete value was followed by bytes nobody asked for.
    case trailingBytes(count: Int)
    /// A variable-length header used more bytes than the value needs (§2.1.2).
    case nonMinimalLength
    /// A variable-length header began with the reserved prefix `0b11` (§2.1.2).
    case reservedLengthPrefix
    /// An `optional<T>` presence octet other than 0 or 1 (§2.1.1).
    case invalidOptionalPresence(UInt8)
    /// A closed enumeration held a value it does not define.
    case unknownEnumValue(type: String, value: UInt64)
    /// A field had the wrong fixed size or violated a structural rule.
    case invalidValue(String)
    /// Nesting went deeper than the decoder allows.
    case tooDeep
}

/// Why a value cannot be encoded (RFC 9420 §2.1.2).
public enum EncodingError: Error, Hashable, Sendable {
    /// A vector's length is above 2^30 - 1, the largest the header can carry.
    case vectorTooLong(Int)
    /// The value is missing a field its own structure requires (e.g. a Commit without a confirmation tag).
    case missingField(String)
}
