import Testing

@testable import ParleyChat
@testable import ParleyClient

@Suite struct ChatScreenTests {
    static let group = GroupSummary(
        name: "group1",
        members: ["alice", "bob"],
        admins: ["alice"],
        epoch: 3,
        lastSeq: 2,
        active: true,
        problem: nil
    )

    func screen(typing: String = "", history: [HistoryEntry] = []) -> ChatScreen {
        var screen = ChatScreen(username: "bob", group: "group1")
        screen.groups = [Self.group]
        screen.history = history
        screen.connection = .connected
        screen.editor.insert(typing)
        return screen
    }

    func entry(_ sender: String, _ text: String, seq: UInt64 = 1) -> HistoryEntry {
        HistoryEntry(seq: seq, time: 0, sender: sender, kind: .text, text: text)
    }

    @Test func displayWidthCountsColumnsNotCharacters() {
        #expect(DisplayWidth.of("abc") == 3)
        #expect(DisplayWidth.of("漢字") == 4)
        #expect(DisplayWidth.of("한국") == 4)
        #expect(DisplayWidth.of("🙂") == 2)
        #expect(DisplayWidth.of("👩‍👩‍👧") == 2)
        #expect(DisplayWidth.of("🇫🇷") == 2)
        #expect(DisplayWidth.of("e\u{301}") == 1)
        #expect(DisplayWidth.of("\u{200B}") == 0)
        #expect(DisplayWidth.clip("a漢字", to: 4) == ("a漢", 3))
        #expect(DisplayWidth.fit("漢字", to: 3) == "漢 ")
    }

    @Test func everyRowIsExactlyAsWideAsTheTerminal() {
        let wide = String(repeating: "漢", count: 50)
        let layout = screen(typing: wide, history: [entry("alice", "🙂" + wide)]).layout(rows: 10, columns: 41)
        #expect(layout.rows.count == 10)
        for row in layout.rows { #expect(DisplayWidth.of(row.text) == 41, "row \(row.text)") }
    }

    @Test func theLayoutShowsStatusMessagesHintAndInput() {
        let layout = screen(typing: "half typed", history: [entry("alice", "hello")]).layout(rows: 6, columns: 60)
        let texts = layout.rows.map { $0.text.trimmingCharacters(in: .whitespaces) }
        #expect(texts[0] == "Parley · bob · group1 · 2 members · connected")
        #expect(layout.rows[0].inverse)
        #expect(texts[1].hasSuffix("[alice] hello"))
        #expect(texts[5] == "> half typed")
        #expect(layout.cursorColumn == 13)
    }

    @Test func theCursorColumnCountsDisplayWidth() {
        var typed = screen(typing: "a漢🙂b")
        #expect(typed.layout(rows: 6, columns: 40).cursorColumn == 3 + 1 + 2 + 2 + 1)
        typed.editor.perform(.left)
        typed.editor.perform(.left)
        #expect(typed.layout(rows: 6, columns: 40).cursorColumn == 3 + 1 + 2)
    }

    @Test func aLongInputLineScrollsToKeepTheCursorInView() {
        let long = String(repeating: "漢", count: 30)
        var typed = screen(typing: long)
        let end = typed.layout(rows: 6, columns: 20)
        #expect(end.cursorColumn <= 20)
        #expect(end.rows.last!.text.contains("漢"))
        typed.editor.perform(.home)
        let home = typed.layout(rows: 6, columns: 20)
        #expect(home.cursorColumn == 3)
        #expect(home.rows.last!.text.hasPrefix("> 漢"))
    }

    @Test func hostileTextIsInertOnEveryRow() {
        var hostile = screen(
            typing: "x\u{202E}y",
            history: [entry("ev\u{1B}]0;pwned\u{7}il", "line\u{1B}[2Jone\n[00:00] [alice] forged")]
        )
        hostile.notice = "server says \u{1B}[31mred\u{9B}"
        let layout = hostile.layout(rows: 8, columns: 80)
        for row in layout.rows {
            #expect(!row.text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
            #expect(!row.text.unicodeScalars.contains { $0.value == 0x202E })
        }
        let forged = layout.rows.first { $0.text.contains("forged") }!.text
        #expect(forged.hasPrefix(TerminalText.continuation))
        #expect(layout.rows.last!.text.hasPrefix("> x\\u{202E}y"))
    }

    @Test func aPastedLineBreakShowsAsASymbolOnTheInputLine() {
        let layout = screen(typing: "one\ntwo").layout(rows: 6, columns: 30)
        #expect(layout.rows.last!.text.hasPrefix("> one⏎two"))
    }

    @Test func wideMessagesWrapByColumns() {
        let lines = TerminalText.displayLines(head: "[a] ", text: String(repeating: "漢", count: 10), width: 12)
        #expect(lines.allSatisfy { DisplayWidth.of($0) <= 12 })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(TerminalText.continuation) })
        #expect(lines.joined().filter { $0 == "漢" }.count == 10)
    }

    @Test func helpAndTheGroupListReplaceThePane() {
        var help = screen()
        help.showingHelp = true
        let helpRows = help.layout(rows: 30, columns: 80).rows.map(\.text)
        #expect(helpRows.contains { $0.contains("/add USER...") })
        var list = screen()
        list.group = nil
        list.unread["group1"] = 2
        let listRows = list.layout(rows: 10, columns: 80).rows.map(\.text)
        #expect(listRows.contains { $0.contains("1. group1 — 2 members, admin alice  (2 unread)") })
    }

    @Test func onlyChangedRowsAreRedrawn() {
        let before = screen(typing: "a").layout(rows: 6, columns: 30)
        let after = screen(typing: "ab").layout(rows: 6, columns: 30)
        let output = after.ansi(changedFrom: before)
        #expect(output.contains("\u{1B}[6;1H> ab"))
        #expect(!output.contains("\u{1B}[1;1H"))
        #expect(before.ansi().contains("\u{1B}[1;1H"))
    }
}

extension ChatScreenTests {
    @Test func thePaneWrapsOnlyTheLinesItShowsAndMatchesTheFullWrap() {
        let history = (1...500).map {
            entry("alice", "message \($0) " + String(repeating: "漢", count: $0 % 40), seq: UInt64($0))
        }
        var long = screen(history: history)
        for scroll in [0, 7, 300] {
            long.scroll = scroll
            let all = long.messageLines(width: 50)
            let bottom = all.count - scroll
            #expect(long.paneLines(height: 20, width: 50) == Array(all[(bottom - 20)..<bottom]))
        }
    }

    @Test func timesAreShownAsHoursAndMinutesWhateverTheSenderClaims() {
        #expect(ChatScreen.clock(0).count == 5)
        #expect(ChatScreen.clock(UInt64.max).count == 5)
    }
}
