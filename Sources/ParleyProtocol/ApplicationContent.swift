import MLS

/// What members send each other inside MLS application messages (the plaintext of a
/// PrivateMessage, RFC 9420 §6.3.1), versioned and decoded strictly:
///
/// ```
/// struct {
///     uint8 version;             // 1
///     uint8 content_type;        // 1 = text, 2 = destroy_group
///     select (content_type) {
///         case text:          opaque text<V>;   // UTF-8, 1..maxTextBytes bytes
///         case destroy_group: struct {};
///     };
/// } ParleyApplicationContent;
/// ```
///
/// The server sees none of it. A `destroy_group` is an admin's MLS-signed request to delete
/// the group on every member's device; whether its sender is an admin at that epoch is the
/// receiver's check (``ParleyGroupPolicy/isAdmin(_:in:)``), never the server's word.
public enum ApplicationContent: Hashable, Sendable {
    /// A chat message.
    case text(String)
    /// An admin's notice that the group is destroyed: members delete it.
    case destroyGroup

    /// The version this code writes and the only one it reads.
    public static let version: UInt8 = 1
    /// The longest text: 64 KiB of UTF-8, far below the server's 1 MiB frame.
    public static let maxTextBytes = 64 * 1024
    /// The longest encoded content: a text at the limit plus its headers.
    public static let maxEncodedBytes = maxTextBytes + 16

    enum ContentType: UInt8 {
        case text = 1
        case destroyGroup = 2
    }

    /// The bytes to encrypt. Throws ``ApplicationContentError`` for a text that is empty or too long.
    public func encoded() throws(ApplicationContentError) -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.version)
        switch self {
        case .text(let text):
            let bytes = Array(text.utf8)
            guard !bytes.isEmpty else { throw .emptyText }
            guard bytes.count <= Self.maxTextBytes else { throw .tooLarge(limit: Self.maxTextBytes) }
            writer.write(ContentType.text.rawValue)
            do { try writer.writeOpaque(bytes) } catch { throw .tooLarge(limit: Self.maxTextBytes) }
        case .destroyGroup:
            writer.write(ContentType.destroyGroup.rawValue)
        }
        return writer.bytes
    }

    /// Decodes a decrypted plaintext. Anything but exactly one well-formed content of a
    /// known version and type is refused: nothing is guessed, nothing trailing is ignored.
    public init(decoding bytes: [UInt8]) throws(ApplicationContentError) {
        guard bytes.count <= Self.maxEncodedBytes else { throw .tooLarge(limit: Self.maxTextBytes) }
        var reader = TLSReader(bytes)
        let version: UInt8
        let rawType: UInt8
        do {
            version = try reader.readUInt8()
            guard version == Self.version else { throw ApplicationContentError.unsupportedVersion(version) }
            rawType = try reader.readUInt8()
        } catch let error as ApplicationContentError {
            throw error
        } catch {
            throw .malformed
        }
        guard let type = ContentType(rawValue: rawType) else { throw .unknownType(rawType) }
        switch type {
        case .text: self = .text(try Self.text(from: &reader))
        case .destroyGroup: self = .destroyGroup
        }
        guard reader.isAtEnd else { throw .malformed }
    }

    private static func text(from reader: inout TLSReader) throws(ApplicationContentError) -> String {
        let bytes: [UInt8]
        do { bytes = try reader.readOpaque() } catch { throw .malformed }
        guard !bytes.isEmpty else { throw .emptyText }
        guard bytes.count <= maxTextBytes else { throw .tooLarge(limit: maxTextBytes) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidText }
        return text
    }
}

/// Why application content could not be encoded or decoded.
public enum ApplicationContentError: Error, Hashable, Sendable {
    /// Truncated, trailing bytes, or a malformed length.
    case malformed
    /// A version this client does not read (a newer client sent it).
    case unsupportedVersion(UInt8)
    /// A content type this client does not know (a newer client sent it).
    case unknownType(UInt8)
    /// The text is not valid UTF-8.
    case invalidText
    /// A text message must say something.
    case emptyText
    /// The text is longer than `limit` bytes.
    case tooLarge(limit: Int)
}
