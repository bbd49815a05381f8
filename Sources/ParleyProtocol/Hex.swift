/// Hexadecimal text for bytes shown to people or used as labels (fingerprints, keys to type,
/// sealing contexts), and its strict inverse for what people type back.
public enum Hex {
    private static let lower = Array("0123456789abcdef".utf8)
    private static let upper = Array("0123456789ABCDEF".utf8)

    /// Two digits per byte, lowercase unless `uppercase`, with `separator` between bytes.
    public static func encode(
        _ bytes: some Sequence<UInt8>,
        uppercase: Bool = false,
        separator: String = ""
    ) -> String {
        let digits = uppercase ? upper : lower
        var out: [UInt8] = []
        let separatorBytes = Array(separator.utf8)
        for (index, byte) in bytes.enumerated() {
            if index > 0 { out += separatorBytes }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`: an even number of hexadecimal digits (either case), nothing else;
    /// nil otherwise, or when `count` is given and the bytes are not exactly that many.
    public static func decode(_ text: String, count: Int? = nil) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, count.map({ $0 * 2 == digits.count }) ?? true else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(of: digits[index]), let low = value(of: digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
