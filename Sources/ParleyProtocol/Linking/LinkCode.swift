import MLS

/// The short code a new device shows and the user types on an existing device:
/// four characters of server lookup id, then twelve check characters derived from the
/// request, in Crockford base32, grouped by four: `7KQ2-MX4P-93TD-R8VW`.
///
/// The lookup id (20 bits) only finds the request; it is no secret. The check (60 bits) is
/// the first 60 bits of SHA-256 over ``LinkRequest/commitment()``: a server that swaps the
/// signature key, the HPKE key, the name or the nonce must find a second preimage of those
/// 60 bits within the request's lifetime (10 minutes), about 2^60 hashes, or the approving
/// device refuses. Sixty rather than forty bits because the server knows the genuine request
/// and can grind offline; its only online chance is one approval attempt per code.
public struct LinkCode: Sendable, Hashable, CustomStringConvertible {
    /// Four base32 characters, from the server.
    public var lookupID: String
    /// Twelve base32 characters, from the request.
    public var check: String

    public static let lookupLength = 4
    public static let checkLength = 12
    /// Crockford's base32: no I, L, O or U, so nothing reads as another character.
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public init(lookupID: String, request: LinkRequest) throws {
        self.lookupID = lookupID
        check = try Self.check(for: request)
    }

    /// Parses what a user typed: case, dashes and spaces do not matter, and O, I and L read as
    /// 0, 1 and 1 (Crockford). Anything else is ``LinkError/malformedCode``.
    public init(parsing text: String) throws(LinkError) {
        var characters: [Character] = []
        for character in text.uppercased() where character != "-" && character != " " {
            let mapped: Character =
                switch character {
                case "O": "0"
                case "I", "L": "1"
                default: character
                }
            guard Self.alphabet.contains(mapped) else { throw .malformedCode }
            characters.append(mapped)
        }
        guard characters.count == Self.lookupLength + Self.checkLength else { throw .malformedCode }
        lookupID = String(characters[..<Self.lookupLength])
        check = String(characters[Self.lookupLength...])
    }

    public var description: String {
        let all = Array(lookupID + check)
        return stride(from: 0, to: all.count, by: 4).map { String(all[$0..<min($0 + 4, all.count)]) }
            .joined(separator: "-")
    }

    /// Whether `text` is a well-formed lookup id (the server checks the path parameter with it).
    public static func isLookupID(_ text: String) -> Bool {
        text.count == lookupLength && text.allSatisfy { alphabet.contains($0) }
    }

    /// A random lookup id (the server's; 20 bits, unique among pending requests).
    public static func randomLookupID(_ random: [UInt8]) -> String {
        String(base32(random, characters: lookupLength))
    }

    /// The first 60 bits of SHA-256(commitment), as twelve base32 characters.
    public static func check(for request: LinkRequest) throws -> String {
        String(base32(suite.hash(try request.commitment()), characters: checkLength))
    }

    /// Whether the code's check digits belong to `request`, compared in constant time.
    public func matches(_ request: LinkRequest) throws -> Bool {
        let expected = Array(try Self.check(for: request).utf8)
        let given = Array(check.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The first `characters` × 5 bits of `bytes`, big-endian, as base32.
    static func base32(_ bytes: [UInt8], characters: Int) -> [Character] {
        (0..<characters).map { index in
            var value = 0
            for bit in index * 5..<index * 5 + 5 {
                let byte = bit / 8 < bytes.count ? bytes[bit / 8] : 0
                value = value << 1 | Int(byte >> (7 - UInt8(bit % 8)) & 1)
            }
            return alphabet[value]
        }
    }

    static let suite = API.Login.suite
}
