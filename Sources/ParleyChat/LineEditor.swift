/// What a key does to the line being typed (readline's names in comments).
public enum EditAction: Equatable, Sendable {
    case left, right, home, end  // backward-char, forward-char, beginning-/end-of-line
    case wordLeft, wordRight  // backward-word, forward-word
    case deleteBackward, deleteForward  // backward-delete-char, delete-char
    case killToStart, killToEnd  // unix-line-discard, kill-line
    case killWhitespaceWord  // unix-word-rubout: back to the previous blank
    case killWordBackward, killWordForward  // backward-kill-word, kill-word
    case yank
    case historyPrevious, historyNext
}

/// The input line: its characters, the cursor, the kill buffer, the history
/// of sent lines and a Tab completion in progress. A value: every edit is a
/// pure change, tested without a terminal.
public struct LineEditor: Equatable, Sendable {
    public private(set) var text: [Character] = []
    /// Where the next character goes: 0...text.count.
    public private(set) var cursor = 0
    private var killed: [Character] = []
    private var history: [String] = []
    /// Which history entry is shown; nil while editing a new line.
    private var historyIndex: Int?
    /// The new line put aside while browsing the history.
    private var draft: [Character] = []
    private var completion: Completion?

    /// How many sent lines Up can bring back.
    public static let historyLimit = 500

    public init() {}

    public var line: String { String(text) }

    /// Inserts typed text; control characters are dropped, a tab becomes a space.
    public mutating func insert(_ typed: String) {
        completion = nil
        for character in typed {
            if character == "\n" || character == "\r\n" || character == "\r" {
                insertCharacter("\n")
            } else if character == "\t" {
                insertCharacter(" ")
            } else if !character.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                insertCharacter(character)
            }
        }
    }

    private mutating func insertCharacter(_ character: Character) {
        // A combining mark typed after its base joins it, as it does on screen.
        if cursor > 0, (String(text[cursor - 1]) + String(character)).count == 1 {
            text[cursor - 1] = Character(String(text[cursor - 1]) + String(character))
            return
        }
        text.insert(character, at: cursor)
        cursor += 1
    }

    public mutating func perform(_ action: EditAction) {
        completion = nil
        switch action {
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(text.count, cursor + 1)
        case .home: cursor = 0
        case .end: cursor = text.count
        case .wordLeft: cursor = wordStart(before: cursor)
        case .wordRight: cursor = wordEnd(after: cursor)
        case .deleteBackward: if cursor > 0 { delete(cursor - 1..<cursor, kill: false) }
        case .deleteForward: if cursor < text.count { delete(cursor..<cursor + 1, kill: false) }
        case .killToStart: delete(0..<cursor, kill: true)
        case .killToEnd: delete(cursor..<text.count, kill: true)
        case .killWhitespaceWord: delete(whitespaceWordStart(before: cursor)..<cursor, kill: true)
        case .killWordBackward: delete(wordStart(before: cursor)..<cursor, kill: true)
        case .killWordForward: delete(cursor..<wordEnd(after: cursor), kill: true)
        case .yank: insert(String(killed))
        case .historyPrevious: browseHistory(by: -1)
        case .historyNext: browseHistory(by: 1)
        }
    }

    /// The line as sent: remembered for Up, and the editor emptied.
    public mutating func submit() -> String {
        let sent = line
        if !sent.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, history.last != sent {
            history.append(sent)
            if history.count > Self.historyLimit { history.removeFirst() }
        }
        text = []
        cursor = 0
        historyIndex = nil
        draft = []
        completion = nil
        return sent
    }

    private mutating func delete(_ range: Range<Int>, kill: Bool) {
        guard !range.isEmpty else { return }
        if kill { killed = Array(text[range]) }
        text.removeSubrange(range)
        cursor = range.lowerBound
    }

    private static func isWordCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber || character == "_"
    }

    /// Start of the word before `index`, skipping what is not a word first (readline's backward-word).
    private func wordStart(before index: Int) -> Int {
        var index = index
        while index > 0, !Self.isWordCharacter(text[index - 1]) { index -= 1 }
        while index > 0, Self.isWordCharacter(text[index - 1]) { index -= 1 }
        return index
    }

    private func wordEnd(after index: Int) -> Int {
        var index = index
        while index < text.count, !Self.isWordCharacter(text[index]) { index += 1 }
        while index < text.count, Self.isWordCharacter(text[index]) { index += 1 }
        return index
    }

    private func whitespaceWordStart(before index: Int) -> Int {
        var index = index
        while index > 0, text[index - 1].isWhitespace { index -= 1 }
        while index > 0, !text[index - 1].isWhitespace { index -= 1 }
        return index
    }

    private mutating func browseHistory(by step: Int) {
        guard !history.isEmpty else { return }
        let current = historyIndex ?? history.count
        let next = min(max(0, current + step), history.count)
        guard next != current else { return }
        if historyIndex == nil { draft = text }
        historyIndex = next == history.count ? nil : next
        text = historyIndex.map { Array(history[$0]) } ?? draft
        cursor = text.count
    }
}

// MARK: - Tab completion

extension LineEditor {
    /// A completion in progress: Tab again replaces the last choice with the next.
    struct Completion: Equatable, Sendable {
        var start: Int
        var matches: [String]
        var index: Int
        var insertedCount: Int
    }

    /// The word before the cursor, which Tab completes, and where it starts.
    public var wordBeforeCursor: (start: Int, word: String, isFirst: Bool) {
        var start = cursor
        while start > 0, !text[start - 1].isWhitespace { start -= 1 }
        let isFirst = !text[..<start].contains { !$0.isWhitespace }
        return (start, String(text[start..<cursor]), isFirst)
    }

    /// The first word of the line, which decides what the others complete to.
    public var firstWord: String {
        String(text.drop { $0.isWhitespace }.prefix { !$0.isWhitespace })
    }

    /// Completes the word before the cursor from `candidates`: the first
    /// match, then each further Tab the next one, as weechat does. One match
    /// is followed by a space. Returns the matches (empty when none).
    @discardableResult
    public mutating func complete(from candidates: [String]) -> [String] {
        if var current = completion, current.matches.count > 1 {
            text.removeSubrange(current.start..<current.start + current.insertedCount)
            cursor = current.start
            current.index = (current.index + 1) % current.matches.count
            insertCompletion(current.matches[current.index], &current)
            completion = current
            return current.matches
        }
        let (start, word, _) = wordBeforeCursor
        let matches = Array(Set(candidates.filter { $0.hasPrefix(word) && $0 != word })).sorted()
        guard let first = matches.first else {
            completion = nil
            return []
        }
        text.removeSubrange(start..<cursor)
        cursor = start
        var current = Completion(start: start, matches: matches, index: 0, insertedCount: 0)
        insertCompletion(first, &current)
        completion = current
        return matches
    }

    private mutating func insertCompletion(_ match: String, _ current: inout Completion) {
        let inserted = Array(match + (current.matches.count == 1 ? " " : ""))
        text.insert(contentsOf: inserted, at: cursor)
        cursor += inserted.count
        current.insertedCount = inserted.count
    }
}
