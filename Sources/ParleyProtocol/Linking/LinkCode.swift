import MLS

/// The code a new device shows and the user types on an existing device: four characters of
/// server lookup id, sixteen check characters derived from the request, and eight characters of
/// link secret, in Crockford base32, grouped by four: `7KQ2-MX4P-93TD-R8VW-2C5N-KJ7A-Q3XE`.
///
/// The lookup id (20 bits) only finds the request; it is no secret. The check (80 bits) is the
/// first 80 bits of SHA-256 over ``LinkRequest/commitment()``: a server that swaps the signature
/// key, the HPKE key, the name or the nonce must find a second preimage of those 80 bits within
/// the request's lifetime (10 minutes), about 2^80 hashes, or the approving device refuses. The
/// server knows the genuine request, so it could grind offline; hence 80 bits, not 40.
///
/// The secret (40 bits, random on the new device) is never sent to the server: the approving
/// device, where the user types it, puts it in the sealed history bundle, and the new device
/// trusts nothing in a bundle whose secret differs (``LinkError/linkSecretMismatch``). A server
/// can seal bundles to the new device (it knows its HPKE key) but must guess the secret, and a
/// wrong guess ends the link: one online guess in 2^40 per link.
public struct LinkCode: Sendable, Hashable, CustomStringConvertible {
    /// Four base32 characters, from the server.
    public var lookupID: String
    /// Sixteen base32 characters, from the request.
    public var check: String
    /// Eight base32 characters, random on the new device; never posted to the server.
    public var secret: String

    public static let lookupLength = 4
    public static let checkLength = 16
    public static let secretLength = 8
    /// Random bytes behind the secret: 5 bytes are the 40 bits its 8 characters show.
    public static let secretRandomBytes = 5
    /// Crockford's base32: no I, L, O or U, so nothing reads as another character.
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public init(lookupID: String, request: LinkRequest, secret: String) throws {
        self.lookupID = lookupID
        check = try Self.check(for: request)
        self.secret = secret
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
        guard characters.count == Self.length else { throw .malformedCode }
        lookupID = String(characters[..<Self.lookupLength])
        check = String(characters[Self.lookupLength..<Self.lookupLength + Self.checkLength])
        secret = String(characters[(Self.lookupLength + Self.checkLength)...])
    }

    /// Characters in a code, without the dashes.
    public static let length = lookupLength + checkLength + secretLength

    public var description: String {
        let all = Array(lookupID + check + secret)
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

    /// A random secret from ``secretRandomBytes`` random bytes (the new device's).
    public static func randomSecret(_ random: [UInt8]) -> String {
        String(base32(random, characters: secretLength))
    }

    /// The first 80 bits of SHA-256(commitment), as sixteen base32 characters.
    public static func check(for request: LinkRequest) throws -> String {
        String(base32(suite.hash(try request.commitment()), characters: checkLength))
    }

    /// Whether the code's check digits belong to `request`, compared in constant time.
    public func matches(_ request: LinkRequest) throws -> Bool {
        Self.constantTimeEqual(Array(try Self.check(for: request).utf8), Array(check.utf8))
    }

    /// Whether `bytes` (as a history bundle carries them) are this code's secret, in constant time.
    public func secretMatches(_ bytes: [UInt8]) -> Bool {
        Self.constantTimeEqual(Array(secret.utf8), bytes)
    }

    /// Equal lengths and equal bytes, without an early exit on the first difference.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
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
