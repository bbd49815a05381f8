import Testing

@testable import ParleyChat
@testable import ParleyClient

/// Hostile input against the chat: bytes a terminal (or a paste) can deliver, and names and
/// texts other people and the server choose. Nothing may trap, hang, or reach the terminal
/// as a raw control. These are the attacks the chat withstands; they guard against regressions.
@Suite struct AttackerReviewChatTests {
    /// Scalars a terminal would act on: C0 (every one, line breaks too: a row is one line),
    /// DEL, C1, and the bidi controls.
    static func isRaw(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        case 0x200E, 0x200F, 0x061C, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// Hostile texts: escapes (CSI, OSC title, DCS), C1, bidi overrides, a forged
    /// message after a line break, zero-width and double-width characters.
    static let hostile: [String] = [
        "\u{1B}[2J\u{1B}]0;owned\u{07}\u{1B}P+q\u{1B}\\",
        "\u{9B}31m\u{9D}0;title\u{9C}",
        "evil\u{202E}gnp.exe\u{2066}\u{2069}\u{200F}",
        "hi\r\n[12:00] [alice] forged\u{2028}[12:01] [carol] also\u{85}x",
        "\u{200B}\u{200D}\u{FEFF}\u{2060}" + String(repeating: "漢👩‍👩‍👧‍👦🇺🇸", count: 50),
        String(repeating: "e\u{301}\u{302}\u{303}", count: 100),
        "\u{0}\u{7F}\t\u{8}tab and backspace",
    ]

    static func layoutIsClean(_ screen: ChatScreen, rows: Int, columns: Int) {
        let frame = screen.layout(rows: rows, columns: columns)
        #expect(frame.rows.count == max(rows, 5))
        for row in frame.rows {
            #expect(!row.text.unicodeScalars.contains(where: isRaw), "raw control in \(row.text.debugDescription)")
            #expect(DisplayWidth.of(row.text) == max(columns, 20))
        }
        // The frame adds its own escapes only: every ESC in the output is one of them.
        let output = frame.ansi()
        let foreign = frame.rows.map(\.text).joined()
        #expect(!foreign.contains("\u{1B}"))
        #expect(output.unicodeScalars.filter { $0 == "\u{1B}" }.count >= frame.rows.count)
    }

    /// Hostile senders, group names, texts, notices and members: every row stays inert
    /// and exactly as wide as the terminal, at every width from tiny to wide.
    @Test func hostileNamesAndTextsNeverReachTheTerminalRaw() {
        for text in Self.hostile {
            var screen = ChatScreen(username: "bob", group: text)
            screen.groups = [
                GroupSummary(
                    name: text,
                    members: [text, "bob"],
                    admins: [text],
                    epoch: 1,
                    lastSeq: 1,
                    active: true,
                    problem: text,
                    warnings: [text]
                )
            ]
            screen.history = [
                HistoryEntry(seq: 1, time: .max, sender: text, kind: .text, text: text),
                HistoryEntry(seq: 2, time: 0, sender: "", kind: .system, text: text, note: text),
            ]
            screen.notice = text
            screen.connection = .offline(text)
            screen.editor.insert(text)
            for columns in [1, 20, 33, 80, 211] { Self.layoutIsClean(screen, rows: 12, columns: columns) }
            screen.group = nil
            Self.layoutIsClean(screen, rows: 12, columns: 80)
        }
    }

    /// A long message from a member (64 KB of escapes, bidi overrides and wide characters)
    /// is wrapped, not trusted: no trap, rows clean. (1 MB is also inert, but slow: see the
    /// attacker report.)
    @Test func aLongHostileMessageIsDrawnInert() {
        var screen = ChatScreen(username: "bob", group: "g")
        let line = String(repeating: "\u{1B}[31mA\u{202E}漢", count: 64_000 / 12)
        screen.history = [HistoryEntry(seq: 1, time: 0, sender: "mallory", kind: .text, text: line)]
        Self.layoutIsClean(screen, rows: 30, columns: 120)
    }

    /// Hostile bytes, including ones no UTF-8 allows (overlong forms, surrogates, bytes
    /// past U+10FFFF, stray continuations), split at every position: the decoder never
    /// traps and what the editor and screen make of them is inert.
    @Test func hostileBytesSplitAnywhereStayInert() {
        let inputs: [[UInt8]] = [
            [0xC0, 0xAF, 0xE0, 0x80, 0xAF, 0xF0, 0x80, 0x80, 0xAF, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80],
            [0xF8, 0x88, 0x80, 0x80, 0x80, 0xFE, 0xFF, 0x80, 0xBF, 0xC2],
            [0xC2, 0x9B, 0x33, 0x31, 0x6D, 0xC2, 0x85, 0xE2, 0x80, 0xAE],
            Array("\u{1B}[1;5C\u{1B}O\u{1B}[\u{1B}\u{1B}[200~pasted\u{1B}[201~\u{1B}[3~x".utf8),
            Array("\u{1B}[99999999999999999999999;99999999999999999999C".utf8),
            [0xE2, 0x1B, 0x5B, 0x41, 0xE2, 0x82, 0x0D],
            Array(("\u{1B}[" + String(repeating: "1;", count: 40) + "Ctyped").utf8),
        ]
        for bytes in inputs {
            for split in 0...bytes.count {
                var state = ChatState(username: "bob", group: "g")
                var decoder = KeyDecoder()
                let keys =
                    decoder.feed(Array(bytes[..<split])) + decoder.feed(Array(bytes[split...])) + decoder.flush()
                for key in keys where key != .enter { _ = state.handle(key, rows: 10, columns: 40) }
                // The line may hold a bidi control (drawn escaped); never a C0 (but a break), DEL or C1.
                #expect(
                    !state.screen.editor.line.unicodeScalars.contains {
                        $0 != "\n" && ($0.value < 0x20 || (0x7F...0x9F).contains($0.value))
                    }
                )
                Self.layoutIsClean(state.screen, rows: 10, columns: 40)
            }
        }
    }

    /// A CSI whose modifier parameter is negative or huge (`ESC [ 1 ; -9223372036854775808 C`
    /// once overflowed `modifier - 1` and trapped) is no modifier: at most a plain key.
    @Test func aCSIWithASignedOrHugeParameterDoesNotTrap() {
        for sequence in [
            "\u{1B}[1;-9223372036854775808C", "\u{1B}[1;-1D", "\u{1B}[1;+5C", "\u{1B}[-3~",
            "\u{1B}[1;99999999999999999999999C",
        ] {
            var decoder = KeyDecoder()
            let keys = decoder.feed(Array(sequence.utf8)) + decoder.flush()
            #expect(keys.count <= 1, "\(sequence.debugDescription) gave \(keys)")
            #expect(decoder.feed(Array("x".utf8)) == [.character("x")])
        }
        var decoder = KeyDecoder()
        #expect(decoder.feed(Array("\u{1B}[1;5C".utf8)) == [.wordRight])
    }

    /// A paste whose end marker never comes ends after the quiet limit, keeps at most
    /// `pasteLimit` bytes, and the keys after it work again (Enter sends).
    @Test func aPasteThatNeverEndsIsBoundedAndEnds() {
        var decoder = KeyDecoder()
        var keys = decoder.feed(Array("\u{1B}[200~".utf8))
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
        for _ in 0..<256 { keys += decoder.feed(chunk) }  // 1 MB, no end marker
        #expect(keys.isEmpty)
        for _ in 0..<KeyDecoder.pasteQuietLimit { keys += decoder.flush() }
        guard case .paste(let text) = keys.first else {
            Issue.record("the paste did not end: \(keys.count) keys")
            return
        }
        #expect(text.utf8.count <= KeyDecoder.pasteLimit)
        #expect(!decoder.isWaiting)
        #expect(decoder.feed(Array("x\r".utf8)) == [.character("x"), .enter])
    }

    /// A 1 MB bracketed paste keeps at most `pasteLimit` bytes, and its pasted line
    /// breaks never send: they stay in the line as breaks.
    @Test func aOneMegabytePasteIsCutAndNeverSends() {
        var state = ChatState(username: "bob", group: "g")
        var decoder = KeyDecoder()
        let body = Array("hi\r/destroy\r".utf8) + [UInt8](repeating: UInt8(ascii: "b"), count: 1_000_000)
        var requests: [WorkerRequest] = []
        for key in decoder.feed(Array("\u{1B}[200~".utf8) + body + Array("\u{1B}[201~".utf8)) {
            requests += state.handle(key, rows: 24, columns: 80)
        }
        #expect(requests.isEmpty)
        #expect(state.screen.editor.text.count <= KeyDecoder.pasteLimit)
        Self.layoutIsClean(state.screen, rows: 24, columns: 80)
    }
}
