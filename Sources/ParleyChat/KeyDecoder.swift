/// A key press (or a whole paste) decoded from the terminal's bytes.
public enum KeyEvent: Equatable, Sendable {
    case character(Character)
    /// Text the terminal marked as pasted (bracketed paste): inserted as is,
    /// so a pasted line break never sends.
    case paste(String)
    case enter, tab, backspace, delete, escape
    case left, right, up, down, home, end, pageUp, pageDown
    /// Ctrl+Left / Ctrl+Right, as xterm sends them.
    case wordLeft, wordRight
    /// Ctrl and a letter (lowercase), for the letters without a key of their own.
    case control(Character)
    /// Alt (ESC prefix) and a printable character.
    case alt(Character)
    case altBackspace
}

/// Turns terminal input into key events. Reads may split anything: an escape
/// sequence, a UTF-8 character, a paste and its end marker. Incomplete input
/// waits in the decoder for the next read; `flush` (called when the terminal
/// has been quiet for a moment) resolves a lone ESC as the Escape key.
public struct KeyDecoder: Sendable {
    /// The most bytes one paste keeps; the rest is dropped, so a runaway
    /// paste cannot grow memory without bound.
    public static let pasteLimit = 64 * 1024
    /// The longest escape sequence read; longer ones are dropped as garbage.
    static let sequenceLimit = 32

    private var pending: [UInt8] = []
    private var pasting: [UInt8]?
    private var pasteTail: [UInt8] = []
    private var pasteQuietMoments = 0
    /// Dropping the rest of a sequence longer than `sequenceLimit`.
    private var discarding = false

    public init() {}

    /// Whether bytes are waiting for the rest of a sequence or a paste.
    public var isWaiting: Bool { !pending.isEmpty || pasting != nil }

    /// The keys `bytes` complete.
    public mutating func feed(_ bytes: [UInt8]) -> [KeyEvent] {
        var keys: [KeyEvent] = []
        for byte in bytes {
            if pasting != nil {
                if let paste = continuePaste(byte) { keys.append(paste) }
                continue
            }
            if discarding {
                // The rest of an overlong sequence: parameters, then one final byte.
                if (0x20...0x3F).contains(byte) { continue }
                discarding = false
                if (0x40...0x7E).contains(byte) { continue }
            }
            pending.append(byte)
            keys += decodePending(final: false)
        }
        return keys
    }

    /// After a quiet moment: a lone ESC was the Escape key; an unfinished
    /// sequence or character is dropped. An unfinished paste waits for
    /// `pasteQuietLimit` quiet moments in a row (a slow link may pause a long
    /// paste), then ends with what came: a lost end marker cannot swallow
    /// every later key.
    public mutating func flush() -> [KeyEvent] {
        if let bytes = pasting {
            pasteQuietMoments += 1
            guard pasteQuietMoments >= Self.pasteQuietLimit else { return [] }
            pasting = nil
            return [.paste(String(decoding: bytes.prefix(Self.pasteLimit), as: UTF8.self))]
        }
        guard !pending.isEmpty else { return [] }
        return decodePending(final: true)
    }

    /// Quiet moments (`flush` calls) an unfinished paste survives.
    public static let pasteQuietLimit = 20

    private mutating func decodePending(final: Bool) -> [KeyEvent] {
        var keys: [KeyEvent] = []
        while !pending.isEmpty {
            switch Self.decode(pending, final: final) {
            case .incomplete:
                if pending.count > Self.sequenceLimit {
                    pending.removeAll()
                    discarding = true
                }
                return keys
            case .keys(let decoded):
                pending.removeAll()
                return keys + decoded
            case .escapeThenRest:
                keys.append(.escape)
                pending.removeFirst()
            case .pasteStart:
                pending.removeAll()
                pasting = []
                pasteTail = []
                return keys
            }
        }
        return keys
    }

    private static let pasteEnd: [UInt8] = Array("\u{1B}[201~".utf8)

    private mutating func continuePaste(_ byte: UInt8) -> KeyEvent? {
        pasteQuietMoments = 0
        pasteTail.append(byte)
        if pasteTail.count > Self.pasteEnd.count { pasteTail.removeFirst() }
        if pasting!.count < Self.pasteLimit + Self.pasteEnd.count { pasting!.append(byte) }
        guard pasteTail == Self.pasteEnd else { return nil }
        var bytes = pasting!
        pasting = nil
        // The marker is in the bytes kept unless the paste overflowed.
        if bytes.suffix(Self.pasteEnd.count).elementsEqual(Self.pasteEnd) { bytes.removeLast(Self.pasteEnd.count) }
        return .paste(String(decoding: bytes.prefix(Self.pasteLimit), as: UTF8.self))
    }

    enum Decoded: Equatable {
        case incomplete
        case keys([KeyEvent])
        /// ESC was the Escape key; what follows it starts a key of its own.
        case escapeThenRest
        case pasteStart
    }

    /// One key from the start of `bytes`, which hold exactly one key or less.
    static func decode(_ bytes: [UInt8], final: Bool) -> Decoded {
        let first = bytes[0]
        switch first {
        case 0x1B: return escape(bytes, final: final)
        case 0x0D, 0x0A: return .keys([.enter])
        case 0x09: return .keys([.tab])
        case 0x7F, 0x08: return .keys([.backspace])
        case 0x01...0x1A: return .keys([.control(Character(Unicode.Scalar(first + 0x60)))])
        case 0x00, 0x1C...0x1F: return .keys([])
        default: return utf8(bytes, final: final)
        }
    }

    /// A UTF-8 character, which may still be arriving. Invalid bytes become U+FFFD.
    static func utf8(_ bytes: [UInt8], final: Bool) -> Decoded {
        let expected =
            switch bytes[0] {
            case 0xC2...0xDF: 2
            case 0xE0...0xEF: 3
            case 0xF0...0xF4: 4
            default: 1
            }
        let continuation = bytes.dropFirst().allSatisfy { (0x80...0xBF).contains($0) }
        if bytes.count < expected, continuation, !final { return .incomplete }
        let text = String(decoding: bytes, as: UTF8.self)
        // C1 controls (U+0080–U+009F) are no keys.
        return .keys(
            text.filter { !$0.unicodeScalars.contains { (0x80...0x9F).contains($0.value) } }.map(KeyEvent.character)
        )
    }

    /// ESC alone, Alt+key, or a CSI (`ESC [`) or SS3 (`ESC O`) sequence.
    static func escape(_ bytes: [UInt8], final: Bool) -> Decoded {
        guard bytes.count > 1 else { return final ? .keys([.escape]) : .incomplete }
        let second = bytes[1]
        switch second {
        case UInt8(ascii: "["): return csi(bytes, final: final)
        case UInt8(ascii: "O"):
            guard bytes.count > 2 else { return final ? .keys([.alt("O")]) : .incomplete }
            return .keys(finalKey(bytes[2], parameters: []).map { [$0] } ?? [])
        case 0x7F, 0x08: return .keys([.altBackspace])
        case 0x20...0x7E: return .keys([.alt(Character(Unicode.Scalar(second)))])
        default: return .escapeThenRest
        }
    }

    /// `ESC [ parameters final`: parameters 0x30–0x3F, intermediates
    /// 0x20–0x2F, one final byte 0x40–0x7E (ECMA-48 §5.4).
    static func csi(_ bytes: [UInt8], final: Bool) -> Decoded {
        let body = bytes.dropFirst(2)
        guard let last = body.last, (0x40...0x7E).contains(last) else {
            if body.allSatisfy({ (0x20...0x3F).contains($0) }), !final { return .incomplete }
            return .keys(final && body.isEmpty ? [.alt("[")] : [])
        }
        // Parameters are digits only (ECMA-48 §5.4.2): a sign or an overlong number is no
        // parameter, so the modifier arithmetic below never sees Int.min.
        let parameters = body.dropLast().split(separator: UInt8(ascii: ";")).map { digits in
            digits.allSatisfy { (0x30...0x39).contains($0) } ? Int(String(decoding: digits, as: UTF8.self)) : nil
        }
        if last == UInt8(ascii: "~"), parameters.first == 200 { return .pasteStart }
        return .keys(finalKey(last, parameters: parameters).map { [$0] } ?? [])
    }

    /// The key a sequence's final byte and parameters name; nil for keys the chat does not use.
    static func finalKey(_ final: UInt8, parameters: [Int?]) -> KeyEvent? {
        // xterm's modifier parameter: 1 + (Shift 1, Alt 2, Ctrl 4).
        let modifier = parameters.count > 1 ? (parameters[1] ?? 1) - 1 : 0
        let word = modifier & 0b110 != 0
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return word ? .wordRight : .right
        case UInt8(ascii: "D"): return word ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch parameters.first ?? nil {
            case 1, 7: return .home
            case 4, 8: return .end
            case 3: return .delete
            case 5: return .pageUp
            case 6: return .pageDown
            default: return nil
            }
        default: return nil
        }
    }
}
