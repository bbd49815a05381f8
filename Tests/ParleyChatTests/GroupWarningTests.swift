import Testing

@testable import ParleyChat
@testable import ParleyClient

/// Issue 13's done criterion for the chat: what the client engine learned about a hostile
/// server (lasting warnings, the GroupContext's name, history notes) reaches the screen as
/// plain sentences, through the same sanitizing every row gets.
@Suite struct GroupWarningTests {
    static let fork = "Warning: the server showed you and alice different histories of group1 after #4."
    static let destroyed =
        "Note: the server says this group was destroyed (not confirmed by an admin). Nothing was deleted."

    func summary(title: String = "group1", warnings: [String] = []) -> GroupSummary {
        var summary = GroupSummary(
            name: "group1",
            members: ["alice", "bob"],
            admins: ["alice"],
            epoch: 3,
            lastSeq: 4,
            active: true,
            problem: nil
        )
        summary.title = title
        summary.warnings = warnings
        return summary
    }

    func rows(_ summary: GroupSummary, open: Bool, history: [HistoryEntry] = [], columns: Int = 400) -> [String] {
        var screen = ChatScreen(username: "bob", group: open ? "group1" : nil)
        screen.groups = [summary]
        screen.history = history
        screen.connection = .connected
        return screen.layout(rows: 12, columns: columns).rows.map(\.text)
    }

    @Test func theStatusLineShowsTheLatestWarningOfTheOpenGroup() {
        let status = rows(summary(warnings: [Self.destroyed, Self.fork]), open: true)[0]
        #expect(status.contains("⚠ \(Self.fork) (and 1 more)"))
        #expect(!status.contains(Self.destroyed))
        #expect(!rows(summary(), open: true)[0].contains("⚠"))
    }

    @Test func theGroupListShowsEveryWarning() {
        let list = rows(summary(warnings: [Self.destroyed, Self.fork]), open: false)
        #expect(list.contains { $0.contains("⚠ \(Self.destroyed)") })
        #expect(list.contains { $0.contains("⚠ \(Self.fork)") })
    }

    @Test func theGroupContextNameIsShownWhereTheServerCallsTheGroupOtherwise() {
        let renamed = summary(title: "Board")
        #expect(rows(renamed, open: true)[0].contains("group1 (named “Board” by its admins) · 2 members"))
        #expect(
            rows(renamed, open: false).contains { $0.contains("1. group1 (named “Board” by its admins) — 2 members") }
        )
        #expect(!rows(summary(), open: true)[0].contains("named"))
        #expect(GroupText.heading(summary(title: "")) == "group1")
    }

    @Test func aHistoryNoteFollowsItsLine() {
        var entry = HistoryEntry(seq: 1, time: 0, sender: "alice", kind: .text, text: "hello")
        entry.note = "the server's time for this message is 3 days from this device's clock"
        let pane = rows(summary(), open: true, history: [entry])
        #expect(pane.contains { $0.contains("[alice] hello [the server's time for this message is 3 days") })
    }

    @Test func aHostileTitleOrWarningIsInert() {
        let hostile = summary(title: "Bo\u{1B}[2Jard", warnings: ["Warning: \u{1B}]0;pwned\u{07}x"])
        for row in rows(hostile, open: true) + rows(hostile, open: false) {
            #expect(!row.contains("\u{1B}") && !row.contains("\u{07}"))
        }
    }
}
