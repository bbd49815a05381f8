/// The one way user- or server-controlled text reaches a terminal.
///
/// Message texts, names, group names and server error sentences come from
/// other people and from the server. Printed raw, ESC and OSC sequences could
/// retitle or reprogram the terminal, C1 controls act as escapes in some
/// terminals, bidi overrides reorder what the eye reads, and a line break
/// followed by `[00:41:00] [frank] hi` forges a message. So every such text
/// goes through here:
/// - C0 controls (but the line breaks), DEL and C1 controls are shown as
///   `\u{1B}`-style escapes, so the text is visible but inert;
/// - bidi controls (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069)
///   are escaped the same way;
/// - line breaks (LF, CR, CRLF, NEL, U+2028, U+2029) either end a line that
///   the caller shows as a continuation (`lines`) or are escaped (`line`).
public enum TerminalText {
    /// What starts each continuation line of a multi-line text: indented and
    /// marked, so it cannot be taken for a new message or a system line.
    public static let continuation = "    \u{2506} "

    /// `text` on one line: every control, bidi control and line break escaped.
    public static func line(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { append(scalar, escapingBreaks: true, to: &out) }
        return String(out)
    }

    /// `text` split at its line breaks, each part sanitized like `line`.
    public static func lines(_ text: String) -> [String] {
        var result: [String] = []
        var current = String.UnicodeScalarView()
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            if scalar == "\n", previous == "\r" { continue }  // CRLF is one break
            if isBreak(scalar) {
                result.append(String(current))
                current = String.UnicodeScalarView()
                continue
            }
            append(scalar, escapingBreaks: true, to: &current)
        }
        result.append(String(current))
        return result
    }

    /// `text` for a terminal: its first line as is, the others each on their
    /// own line after `continuation`.
    public static func block(_ text: String) -> String {
        lines(text).joined(separator: "\n" + continuation)
    }

    /// JSON text made safe to print: the scalars JSON leaves raw but a
    /// terminal would act on (DEL, C1, bidi controls, U+2028/U+2029) become
    /// `\uXXXX` escapes, which decode to the same string.
    public static func json(_ encoded: String) -> String {
        var out = ""
        for scalar in encoded.unicodeScalars {
            if scalar.value >= 0x7F, isDangerous(scalar) || isBreak(scalar) {
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func append(_ scalar: Unicode.Scalar, escapingBreaks: Bool, to out: inout String.UnicodeScalarView) {
        if scalar == "\t" {
            out.append(contentsOf: "    ".unicodeScalars)
        } else if isDangerous(scalar) || (escapingBreaks && isBreak(scalar)) {
            out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
        } else {
            out.append(scalar)
        }
    }

    static func isBreak(_ scalar: Unicode.Scalar) -> Bool {
        [0x0A, 0x0D, 0x85, 0x2028, 0x2029].contains(scalar.value)
    }

    /// Controls and bidi overrides (line breaks are judged by `isBreak`).
    static func isDangerous(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x0D, 0x85: false
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x200E, 0x200F, 0x061C, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}

extension TerminalText {
    /// A history line for a terminal `width` columns wide: `head` (already
    /// sanitized, e.g. `[12:00] [bob] `) and the text's first line, then every
    /// further line of the text, and every part cut off at the width, after
    /// `continuation`. Nothing but the first display line starts at column 0,
    /// so no text can line up as a message of its own, however it is padded.
    /// Widths are display columns (`DisplayWidth`): 漢字 and emoji take two.
    public static func displayLines(head: String, text: String, width: Int) -> [String] {
        var result: [String] = []
        for (index, part) in lines(text).enumerated() {
            var rest = Substring(index == 0 ? head + part : part)
            repeat {
                let prefix = result.isEmpty ? "" : continuation
                let room = max(1, width - DisplayWidth.of(prefix))
                // At least one character per line, even a wide one in one column, so this always ends.
                let taken = max(1, DisplayWidth.clip(rest, to: room).text.count)
                result.append(prefix + rest.prefix(taken))
                rest = rest.dropFirst(taken)
            } while !rest.isEmpty
        }
        return result
    }
}
