import ParleyClient

/// The sentences the chat and the CLI both show about a group: its name from the MLS
/// GroupContext where the server calls it something else, and the warnings kept in its
/// status (issue 13). Plain text; callers pass it through `TerminalText`.
public enum GroupText {
    /// The server's name, followed by the admins' name from the GroupContext when the two
    /// differ: the server routes by its name but cannot forge the other.
    /// A post-quantum group says so (its MLS cipher suite, not the server's word).
    public static func heading(_ summary: GroupSummary) -> String {
        let suite = summary.postQuantum ? " [\(summary.security)]" : ""
        guard !summary.title.isEmpty, summary.title != summary.name else { return summary.name + suite }
        return "\(summary.name) (named \u{201C}\(summary.title)\u{201D} by its admins)" + suite
    }

    /// The latest warning, and how many more there are, for a one-line status; nil when none.
    public static func latestWarning(_ summary: GroupSummary) -> String? {
        guard let latest = summary.warnings.last else { return nil }
        let more = summary.warnings.count - 1
        return more == 0 ? latest : "\(latest) (and \(more) more)"
    }

    /// A history line's text with its note (e.g. a server time far from this clock) after it.
    public static func text(of entry: HistoryEntry) -> String {
        entry.note.map { "\(entry.text) [\($0)]" } ?? entry.text
    }
}
