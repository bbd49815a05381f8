import ParleyClient
import Testing

@testable import ParleyChat

/// The message pane keeps wrapped entries between frames (attacker finding F5: 64 KiB
/// messages re-wrapped on every key). What it shows must be what a fresh wrap shows.
@Suite struct WrapCacheTests {
    func screen(_ history: [HistoryEntry]) -> ChatScreen {
        var screen = ChatScreen(username: "bob", group: "group1")
        screen.history = history
        return screen
    }

    func entry(_ text: String, seq: UInt64) -> HistoryEntry {
        HistoryEntry(seq: seq, time: 0, sender: "alice", kind: .text, text: text)
    }

    /// A resize empties the cache: the pane at the new width is the fresh wrap at that
    /// width, not the old width's lines.
    @Test func aResizeWrapsAgainAtTheNewWidth() {
        let history = (1...30).map { entry(String(repeating: "word ", count: $0 * 7), seq: UInt64($0)) }
        let cached = screen(history)
        let wide = cached.layout(rows: 20, columns: 80)
        #expect(cached.wrapCache.state.width == 80)
        #expect(cached.wrapCache.state.entries > 0)
        let narrow = cached.layout(rows: 20, columns: 33)
        #expect(cached.wrapCache.state.width == 33)
        #expect(narrow == screen(history).layout(rows: 20, columns: 33))
        #expect(narrow != wide)
        #expect(cached.messageLines(width: 33) == history.flatMap { ChatScreen.lines(of: $0, width: 33) })
        // And back: the wide frame again, as first drawn.
        #expect(cached.layout(rows: 20, columns: 80) == wide)
    }

    /// Frames at one width reuse the wrapped lines; an entry replaced under the same index
    /// (another group's history) is wrapped anew, never shown stale.
    @Test func aChangedEntryIsNeverShownStale() {
        var shown = screen([entry("first text", seq: 1), entry("second text", seq: 2)])
        _ = shown.layout(rows: 10, columns: 40)
        #expect(shown.wrapCache.state.entries == 2)
        shown.history = [entry("another group's text", seq: 1)]
        #expect(shown.wrapCache.state.entries <= 1)
        #expect(shown.messageLines(width: 40) == ChatScreen.lines(of: shown.history[0], width: 40))
    }
}
