import Foundation
import ParleyClient

/// Everything the chat shows, and how it is drawn. Rendering is a pure
/// function of this state and the terminal size, so a resize is just a redraw.
struct ChatScreen {
    var username: String
    var group: String?
    var groups: [GroupSummary] = []
    var history: [HistoryEntry] = []
    var unread: [String: Int] = [:]
    var input: [Character] = []
    /// How many lines above the bottom the message pane is scrolled.
    var scroll = 0
    /// Lines that arrived while scrolled up.
    var unseenBelow = 0
    var notice = ""
    var connected = true

    static let help = [
        "Type a message and press Enter to send it.",
        "/switch GROUP   open a group (or Alt+1..9)      /groups   the group list",
        "/create GROUP   create a group                  /members  list members",
        "/add USER...    add members (admins)            /remove USER  remove a member (admins)",
        "/leave          leave this group                /destroy  destroy this group (admins)",
        "/verify USER    show the safety number          /quit     exit",
        "PgUp/PgDn scroll the messages; the line you are typing is never touched.",
    ]

    /// The message pane's lines, wrapped to `width`.
    func messageLines(width: Int) -> [String] {
        history.flatMap { entry -> [String] in
            let time = Self.clock(entry.time)
            let head = entry.kind == .system ? "\(time) * " : "\(time) [\(TerminalText.line(entry.sender))] "
            return TerminalText.displayLines(head: head, text: entry.text, width: width)
        }
    }

    func groupListLines() -> [String] {
        var lines = ["Your groups (Alt+number or /switch NAME to open):", ""]
        if groups.isEmpty { lines.append("  none yet: /create NAME, or wait to be added") }
        for (index, summary) in groups.enumerated() {
            let unreadCount = unread[summary.name] ?? 0
            let badge = unreadCount > 0 ? "  (\(unreadCount) unread)" : ""
            let state = summary.problem.map { "  (cannot be followed: \($0))" } ?? (summary.active ? "" : "  (removed)")
            let admins = summary.admins.joined(separator: ", ")
            lines.append(
                TerminalText.line(
                    "  \(index + 1). \(summary.name) — \(summary.members.count) members, admin \(admins)\(badge)\(state)"
                )
            )
        }
        lines += ["", "Invitations are accepted automatically: a group you were added to appears here."]
        return lines
    }

    /// The full screen for `rows` × `columns`, as terminal output.
    func render(rows: Int, columns: Int) -> String {
        let rows = max(rows, 5)
        let width = max(columns, 20)
        var out = "\u{1B}[?25l\u{1B}[H"
        func line(_ row: Int, _ text: String, inverse: Bool = false) {
            // Names, notices and server sentences are not ours: sanitized here, once for every row.
            let clipped = String(TerminalText.line(text).prefix(width))
            let padded = clipped + String(repeating: " ", count: max(0, width - clipped.count))
            out += "\u{1B}[\(row);1H" + (inverse ? "\u{1B}[7m\(padded)\u{1B}[0m" : padded)
        }
        let current = groups.first { $0.name == group }
        let status = group.map { "\($0) · \(current?.members.count ?? 0) members" } ?? "groups"
        line(
            1,
            " Parley · \(username) · \(status) · \(connected ? "connected" : "offline — reconnecting")",
            inverse: true
        )

        let paneHeight = rows - 3
        let pane: [String]
        if group == nil {
            pane = Array(groupListLines().prefix(paneHeight))
        } else {
            let all = messageLines(width: width)
            let bottom = max(0, all.count - scroll)
            pane = Array(all[max(0, bottom - paneHeight)..<bottom])
        }
        for row in 0..<paneHeight { line(row + 2, row < pane.count ? pane[row] : "") }

        let hint =
            unseenBelow > 0
            ? "-- \(unseenBelow) new message line(s) below: PgDn --"
            : notice.isEmpty ? "Enter sends · /help · PgUp/PgDn scroll · Alt+1..9 switch groups" : notice
        line(rows - 1, hint, inverse: unseenBelow > 0)
        let prompt = "> "
        let visible = Array(input.suffix(width - prompt.count - 1))
        line(rows, prompt + String(visible))
        out += "\u{1B}[\(rows);\(prompt.count + visible.count + 1)H\u{1B}[?25h"
        return out
    }

    static func clock(_ milliseconds: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
