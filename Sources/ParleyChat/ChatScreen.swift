import Foundation
import ParleyClient

/// The connection as the status line tells it.
public enum ConnectionState: Equatable, Sendable {
    case connecting
    case connected
    /// Lost; the worker retries with backoff. The sentence says why.
    case offline(String)
}

/// Everything the chat shows. Drawing is a pure function of this state and
/// the terminal size (`layout`), so a resize is just a redraw and the
/// renderer is tested without a terminal.
public struct ChatScreen: Sendable {
    public var username: String
    public var group: String?
    public var groups: [GroupSummary] = []
    public var history: [HistoryEntry] = [] {
        didSet { if history.count < oldValue.count { wrapCache.keep(first: history.count) } }
    }
    /// The history's entries as wrapped for the last width (``WrapCache``).
    let wrapCache = WrapCache()
    public var unread: [String: Int] = [:]
    public var editor = LineEditor()
    /// How many lines above the bottom the message pane (or the help) is scrolled.
    public var scroll = 0
    /// Lines that arrived while scrolled up.
    public var unseenBelow = 0
    public var notice = ""
    public var connection = ConnectionState.connecting
    public var showingHelp = false
    /// Commands sent to the network and not answered yet, as the status line names them.
    public var working: [String] = []

    public init(username: String, group: String?) {
        self.username = username
        self.group = group
    }

    static let prompt = "> "

    /// The message pane's lines, wrapped to `width` columns.
    public func messageLines(width: Int) -> [String] {
        history.indices.flatMap { wrappedLines(at: $0, width: width) }
    }

    /// The last `count` message lines (or all there are): drawing a frame
    /// takes only what it shows, however long the history, wrapped once per width.
    func lastMessageLines(_ count: Int, width: Int) -> [String] {
        var tail: [[String]] = []
        var total = 0
        for index in history.indices.reversed() where total < count {
            let lines = wrappedLines(at: index, width: width)
            tail.append(lines)
            total += lines.count
        }
        return Array(tail.reversed().joined().suffix(count))
    }

    /// History entry `index` wrapped to `width`, from the cache when it is there.
    func wrappedLines(at index: Int, width: Int) -> [String] {
        wrapCache.lines(of: history[index], at: index, width: width) { Self.lines(of: $0, width: $1) }
    }

    static func lines(of entry: HistoryEntry, width: Int) -> [String] {
        let time = clock(entry.time)
        let head = entry.kind == .system ? "\(time) * " : "\(time) [\(TerminalText.line(entry.sender))] "
        return TerminalText.displayLines(head: head, text: GroupText.text(of: entry), width: width)
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
                "  \(index + 1). \(GroupText.heading(summary)) — \(summary.members.count) members, admin \(admins)"
                    + "\(badge)\(state)"
            )
            // Every lasting warning, oldest first; the status line shows only the latest.
            lines += summary.warnings.map { "       ⚠ \($0)" }
        }
        lines += ["", "Invitations are accepted automatically: a group you were added to appears here."]
        return lines
    }

    /// `/help`: every command and every key, from the tables that define them.
    public static let helpLines: [String] = {
        func row(_ left: String, _ right: String) -> String {
            "  " + left.padding(toLength: max(left.count, 20), withPad: " ", startingAt: 0) + " " + right
        }
        return [
            "Type a message and press Enter to send it; start it with // to send a leading /. PgDn: more.", "Commands:",
        ]
            + CommandSpec.all.map {
                row($0.usage, $0.summary + ($0.aliases.isEmpty ? "" : " (also \($0.aliases.joined(separator: ", ")))"))
            }
            + ["", "Keys:"] + KeyBinding.all.map { row($0.label, $0.summary) }
            + ["", "PgUp/PgDn scroll this help; Esc closes it."]
    }()

    var statusLine: String {
        let current = groups.first { $0.name == group }
        let heading = current.map(GroupText.heading) ?? group
        let place = heading.map { "\($0) · \(current?.members.count ?? 0) members" } ?? "groups"
        let link =
            switch connection {
            case .connecting: "connecting…"
            case .connected: "connected"
            case .offline: "offline — reconnecting"
            }
        let busy = working.isEmpty ? "" : " · working: " + working.joined(separator: ", ")
        // The open group's latest warning stays in view; /groups lists them all.
        let warning = current.flatMap(GroupText.latestWarning).map { " · ⚠ \($0)" } ?? ""
        return " Parley · \(username) · \(place) · \(link)\(busy)\(warning)"
    }

    var hintLine: String {
        if unseenBelow > 0 { return "-- \(unseenBelow) new message line(s) below: PgDn --" }
        if !notice.isEmpty { return notice }
        if case .offline(let reason) = connection { return "Offline: \(reason)" }
        return "Enter sends · Tab completes · /help lists commands and keys · PgUp/PgDn scroll"
    }

    /// `HH:mm` in local time. No formatter object per line: a frame formats every time it shows.
    static func clock(_ milliseconds: UInt64) -> String {
        // UInt64.max / 1000 fits a 64-bit time_t: no sender-chosen time can trap here.
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return "--:--" }
        return String(format: "%02d:%02d", parts.tm_hour, parts.tm_min)
    }
}

/// One frame of the screen: a line per terminal row, each exactly as wide as
/// the terminal, and where the cursor stands on the input line.
public struct ScreenLayout: Equatable, Sendable {
    public struct Row: Equatable, Sendable {
        public var text: String
        public var inverse: Bool
    }

    public var rows: [Row]
    /// 1-based column of the cursor on the last row (the input line).
    public var cursorColumn: Int

    /// The frame as terminal output: the rows that differ from `previous`
    /// (all without one) drawn in place, the cursor placed and shown last.
    public func ansi(changedFrom previous: ScreenLayout? = nil) -> String {
        var out = "\u{1B}[?25l"
        for (index, row) in rows.enumerated() {
            if let previous, index < previous.rows.count, previous.rows[index] == row { continue }
            out += "\u{1B}[\(index + 1);1H" + (row.inverse ? "\u{1B}[7m\(row.text)\u{1B}[0m" : row.text)
        }
        return out + "\u{1B}[\(rows.count);\(cursorColumn)H\u{1B}[?25h"
    }
}

extension ChatScreen {
    /// The screen for `rows` × `columns`. Every row's text, whoever wrote it,
    /// passes through `TerminalText.line` here, once, and is cut by display width.
    public func layout(rows: Int, columns: Int) -> ScreenLayout {
        let rows = max(rows, 5)
        let width = max(columns, 20)
        func row(_ text: String, inverse: Bool = false) -> ScreenLayout.Row {
            .init(text: DisplayWidth.fit(TerminalText.line(text), to: width), inverse: inverse)
        }
        let paneHeight = rows - 3
        let pane = paneLines(height: paneHeight, width: width)
        var result = [row(statusLine, inverse: true)]
        result += (0..<paneHeight).map { row($0 < pane.count ? pane[$0] : "") }
        result.append(row(hintLine, inverse: unseenBelow > 0))
        let (input, cursor) = Self.inputLine(editor, width: width)
        result.append(.init(text: input, inverse: false))
        return ScreenLayout(rows: result, cursorColumn: cursor)
    }

    /// The lines the pane shows: help, the group list, or the messages scrolled to `scroll`.
    func paneLines(height: Int, width: Int) -> [String] {
        if showingHelp || group == nil {
            // Help and the list read from the top; PgDn moves down them.
            let all = showingHelp ? Self.helpLines : groupListLines()
            let start = min(scroll, max(0, all.count - height))
            return Array(all.dropFirst(start).prefix(height))
        }
        let tail = lastMessageLines(scroll + height, width: width)
        let bottom = max(0, tail.count - scroll)
        return Array(tail[max(0, bottom - height)..<bottom])
    }

    /// The input line, `width` columns wide, and the cursor's 1-based column.
    /// Each character is drawn sanitized (a pasted line break as ⏎) and
    /// measured by its display width; a line too long for the terminal
    /// scrolls so that the cursor stays in view.
    static func inputLine(_ editor: LineEditor, width: Int) -> (text: String, cursorColumn: Int) {
        let glyphs = editor.text.map { $0 == "\n" ? "⏎" : TerminalText.line(String($0)) }
        let widths = glyphs.map { DisplayWidth.of($0) }
        let promptWidth = DisplayWidth.of(prompt)
        // One column stays free for the cursor after the last character.
        let room = max(1, width - promptWidth - 1)
        var start = 0
        var beforeCursor = widths[..<editor.cursor].reduce(0, +)
        while beforeCursor > room, start < editor.cursor {
            beforeCursor -= widths[start]
            start += 1
        }
        var shown = ""
        var used = 0
        for index in glyphs.indices.dropFirst(start) {
            guard used + widths[index] <= width - promptWidth else { break }
            shown += glyphs[index]
            used += widths[index]
        }
        return (DisplayWidth.fit(prompt + shown, to: width), promptWidth + beforeCursor + 1)
    }
}
