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

        /// RFC 4648 §4 base64 with padding (Foundation's encoder, as JSONEncoder uses), quoted,
        /// its `/` escaped as the string writer does; copied in runs between slashes.
        mutating func base64(_ data: Data) {
            bytes.append(UInt8(ascii: "\""))
            let encoded = data.base64EncodedData()
            var rest = encoded[...]
            while let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
                bytes.append(contentsOf: rest[..<slash])
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
                rest = rest[(slash + 1)...]
            }
            bytes.append(contentsOf: rest)
            bytes.append(UInt8(ascii: "\""))
        }

        private static let hex = Array("0123456789abcdef".utf8)
    }
}

extension FrameJSON {
    /// A `message` frame in exactly the form ``encode(_:)-(ServerFrame.Message)`` writes, or nil for
    /// anything else — other key orders, whitespace, escapes other than `\"` `\\` `\/` — which
    /// ``WireJSON/decode(_:from:)`` then hands to JSONDecoder. So this reader may refuse what is
    /// valid, never accept what JSONDecoder would refuse or read differently (fuzz-server-frame
    /// compares the two).
    static func decodeMessage(_ data: Data) -> ServerFrame.Message? {
        data.withUnsafeBytes { bytes -> ServerFrame.Message? in
            var input = Reader(bytes)
            guard input.literal("{\"group\":"), let group = input.string() else { return nil }
            var id: String?
            if input.literal(",\"id\":") {
                guard let value = input.string() else { return nil }
                id = value
            }
            guard input.literal(",\"message\":"), let message = input.base64(),
                input.literal(",\"sender\":"), let sender = input.string(),
                input.literal(",\"seq\":"), let seq = input.number(),
                input.literal(",\"time\":"), let time = input.number(),
                input.literal(",\"type\":\"message\"}"), input.atEnd
            else { return nil }
            return ServerFrame.Message(group: group, seq: seq, time: time, sender: sender, message: message, id: id)
        }
    }

    /// A `send` frame in exactly the form ``encode(_:)-(ClientFrame.Send)`` writes, or nil (as
    /// ``decodeMessage(_:)``; fuzz-client-frame compares it with JSONDecoder).
    static func decodeSend(_ data: Data) -> ClientFrame.Send? {
        data.withUnsafeBytes { bytes -> ClientFrame.Send? in
            var input = Reader(bytes)
            guard input.literal("{\"group\":"), let group = input.string(),
                input.literal(",\"id\":"), let id = input.string(),
                input.literal(",\"message\":"), let message = input.base64(),
                input.literal(",\"type\":\"send\"")
            else { return nil }
            var welcome: Data?
            if input.literal(",\"welcome\":") {
                guard let value = input.base64() else { return nil }
                welcome = value
            }
            guard input.literal("}"), input.atEnd else { return nil }
            return ClientFrame.Send(id: id, group: group, message: message, welcome: welcome)
        }
    }

    /// A cursor over the frame's bytes; every read either consumes what it names or fails.
    struct Reader {
        private let bytes: UnsafeRawBufferPointer
        private var index = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count,
                memcmp(bytes.baseAddress! + index, text.utf8Start, count) == 0
            else { return false }
            index += count
            return true
        }

        /// A quoted string with no escapes but `\"`, `\\` and `\/`, no control characters and
        /// valid UTF-8 (JSONDecoder refuses the last two; the other escapes it reads are left to it).
        mutating func string() -> String? {
            guard let raw = quoted() else { return nil }
            // Decoding repairs invalid UTF-8 with U+FFFD, so the bytes differ exactly when it was invalid.
            let text = String(decoding: raw, as: UTF8.self)
            return text.utf8.elementsEqual(raw) ? text : nil
        }

        /// Base64 decoded by the same Foundation call JSONDecoder's `.base64` strategy makes, so
        /// both accept and refuse the same strings; `/` may be written `\/`.
        mutating func base64() -> Data? {
            guard let text = quoted() else { return nil }
            return Data(base64Encoded: Data(text))
        }

        /// A decimal without sign, fraction, exponent or leading zero, that fits a UInt64.
        mutating func number() -> UInt64? {
            var value: UInt64 = 0
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (times, overflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, carry) = times.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow, !carry else { return nil }
                value = sum
                index += 1
            }
            let digits = index - start
            guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            return value
        }

        /// The bytes between quotes with the three escapes resolved; nil on any other escape,
        /// a control character or no closing quote.
        private mutating func quoted() -> [UInt8]? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            var out = [UInt8]()
            var run = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= 0x20, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                    index += 1
                    continue
                }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[run..<index]))
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return out
                case UInt8(ascii: "\\"):
                    guard index < bytes.count,
                        [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/")].contains(bytes[index])
                    else { return nil }
                    out.append(bytes[index])
                    index += 1
                    run = index
                default:
                    return nil
                }
            }
            return nil
        }
    }
}
