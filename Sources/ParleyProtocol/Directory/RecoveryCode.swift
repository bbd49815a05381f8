import Crypto

/// The printed form of an ``AccountIdentity`` seed: RFC 4648 base32 (no padding) of the 32-byte
/// seed followed by the first 4 bytes of its SHA-256 as a check, in groups of four characters
/// separated by dashes: 58 characters, 15 groups. The check catches a mistyped character before
/// a wrong identity is restored; case and separators are ignored when reading.
public enum RecoveryCode {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    private static let checkBytes = 4

    public static func encode(_ seed: [UInt8]) -> String {
        let payload = seed + Array(SHA256.hash(data: seed)).prefix(checkBytes)
        let characters = base32(payload)
        var groups: [String] = []
        var index = 0
        while index < characters.count {
            let end = min(index + 4, characters.count)
            groups.append(String(decoding: characters[index..<end], as: UTF8.self))
            index = end
        }
        return groups.joined(separator: "-")
    }

    /// The seed in `code`, or ``DeviceListError/invalidRecoveryCode``.
    public static func decode(_ code: String) throws(DeviceListError) -> [UInt8] {
        var bits: UInt32 = 0
        var count = 0
        var bytes: [UInt8] = []
        for character in code.uppercased().utf8 where character != UInt8(ascii: "-") && character != UInt8(ascii: " ") {
            guard let value = alphabet.firstIndex(of: character) else { throw .invalidRecoveryCode }
            bits = bits << 5 | UInt32(value)
            count += 5
            if count >= 8 {
                count -= 8
                bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
            }
            guard bytes.count <= AccountIdentity.seedBytes + checkBytes else { throw .invalidRecoveryCode }
        }
        guard bytes.count == AccountIdentity.seedBytes + checkBytes else { throw .invalidRecoveryCode }
        let seed = Array(bytes.prefix(AccountIdentity.seedBytes))
        let check = Array(SHA256.hash(data: seed)).prefix(checkBytes)
        guard Array(bytes.suffix(checkBytes)) == Array(check) else { throw .invalidRecoveryCode }
        return seed
    }

    private static func base32(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var bits: UInt32 = 0
        var count = 0
        for byte in bytes {
            bits = bits << 8 | UInt32(byte)
            count += 8
            while count >= 5 {
                count -= 5
                output.append(alphabet[Int(bits >> UInt32(count) & 31)])
            }
        }
        if count > 0 { output.append(alphabet[Int(bits << UInt32(5 - count) & 31)]) }
        return output
    }
}
