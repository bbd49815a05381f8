import Foundation

/// The two frames sent most — `message` (once per member per accepted message) and `send` —
/// written as JSON directly, byte for byte what ``WireJSON/encode(_:)`` writes through
/// `JSONEncoder` with sorted keys (FrameJSONTests compares them). The coder's keyed
/// containers, and base64 into a separate string first, were the largest part of the
/// server's per-delivery CPU (BENCHMARKS.md, session 9).
enum FrameJSON {
    /// `{"group":…,"id":…,"message":…,"sender":…,"seq":…,"time":…,"type":"message"}`, `id` only when set.
    static func encode(_ message: ServerFrame.Message) -> Data {
        var out = Writer(capacity: message.message.count * 4 / 3 + message.group.utf8.count + 160)
        out.raw("{\"group\":")
        out.string(message.group)
        if let id = message.id {
            out.raw(",\"id\":")
            out.string(id)
        }
        out.raw(",\"message\":")
        out.base64(message.message)
        out.raw(",\"sender\":")
        out.string(message.sender)
        out.raw(",\"seq\":")
        out.number(message.seq)
        out.raw(",\"time\":")
        out.number(message.time)
        out.raw(",\"type\":\"message\"}")
        return Data(out.bytes)
    }

    /// `{"group":…,"id":…,"message":…,"type":"send","welcome":…}`, `welcome` only when set.
    static func encode(_ send: ClientFrame.Send) -> Data {
        let size = send.message.count + (send.welcome?.count ?? 0)
        var out = Writer(capacity: size * 4 / 3 + send.group.utf8.count + send.id.utf8.count + 96)
        out.raw("{\"group\":")
        out.string(send.group)
        out.raw(",\"id\":")
        out.string(send.id)
        out.raw(",\"message\":")
        out.base64(send.message)
        out.raw(",\"type\":\"send\"")
        if let welcome = send.welcome {
            out.raw(",\"welcome\":")
            out.base64(welcome)
        }
        out.raw("}")
        return Data(out.bytes)
    }

    /// JSON text as Foundation's `JSONWriter` writes it: `"`, `\` and `/` escaped with a
    /// backslash, control characters as `\b \t \n \f \r` or `\u00xx`, everything else as UTF-8.
    struct Writer {
        private(set) var bytes: [UInt8] = []

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func raw(_ text: StaticString) {
            text.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }

        mutating func string(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                    bytes.append(UInt8(ascii: "\\"))
                    bytes.append(byte)
                case 0x08: escaped("b")
                case 0x09: escaped("t")
                case 0x0A: escaped("n")
                case 0x0C: escaped("f")
                case 0x0D: escaped("r")
                case 0..<0x20:
                    raw("\\u00")
                    bytes.append(Self.hex[Int(byte >> 4)])
                    bytes.append(Self.hex[Int(byte & 0xF)])
                default:
                    bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }

        private mutating func escaped(_ letter: Unicode.Scalar) {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(UInt8(ascii: letter))
        }

        mutating func number(_ value: UInt64) {
            bytes.append(contentsOf: String(value).utf8)
        }

        /// RFC 4648 §4 base64 with padding, quoted, its `/` escaped as the string writer does.
        mutating func base64(_ data: Data) {
            bytes.append(UInt8(ascii: "\""))
            data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
                var index = 0
                while index + 3 <= input.count {
                    let word = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                    sextet(word >> 18)
                    sextet(word >> 12)
                    sextet(word >> 6)
                    sextet(word)
                    index += 3
                }
                switch input.count - index {
                case 1:
                    let word = UInt32(input[index]) << 16
                    sextet(word >> 18)
                    sextet(word >> 12)
                    raw("==")
                case 2:
                    let word = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
                    sextet(word >> 18)
                    sextet(word >> 12)
                    sextet(word >> 6)
                    raw("=")
                default:
                    break
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }

        private mutating func sextet(_ value: UInt32) {
            let symbol = Self.alphabet[Int(value & 0x3F)]
            if symbol == UInt8(ascii: "/") { bytes.append(UInt8(ascii: "\\")) }
            bytes.append(symbol)
        }

        private static let hex = Array("0123456789abcdef".utf8)
        private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    }
}
