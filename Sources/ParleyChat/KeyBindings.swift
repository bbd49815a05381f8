/// What a key does in the chat.
public enum ChatAction: Equatable, Sendable {
    case edit(EditAction)
    case submit
    case complete
    /// Ctrl+D: delete the character under the cursor, or leave on an empty line.
    case deleteOrQuit
    case quit
    case scrollUp, scrollDown
    case openGroup(Int)
    case dismiss
    case redraw
}

/// One row of the key table: the keys, how `/help` names them, what they do.
public struct KeyBinding: Sendable {
    public let keys: [KeyEvent]
    public let label: String
    public let action: ChatAction
    public let summary: String

    /// Every key the chat knows. `action(for:)` and `/help` both read this
    /// table, so help cannot list a key that does nothing or miss one.
    public static let all: [KeyBinding] = [
        KeyBinding(keys: [.enter], label: "Enter", action: .submit, summary: "send the line or run the command"),
        KeyBinding(keys: [.tab], label: "Tab", action: .complete, summary: "complete a command, group or member name"),
        KeyBinding(
            keys: [.left, .control("b")],
            label: "Left, Ctrl+B",
            action: .edit(.left),
            summary: "character left"
        ),
        KeyBinding(
            keys: [.right, .control("f")],
            label: "Right, Ctrl+F",
            action: .edit(.right),
            summary: "character right"
        ),
        KeyBinding(
            keys: [.home, .control("a")],
            label: "Home, Ctrl+A",
            action: .edit(.home),
            summary: "start of the line"
        ),
        KeyBinding(keys: [.end, .control("e")], label: "End, Ctrl+E", action: .edit(.end), summary: "end of the line"),
        KeyBinding(
            keys: [.alt("b"), .wordLeft],
            label: "Alt+B, Ctrl+Left",
            action: .edit(.wordLeft),
            summary: "word left"
        ),
        KeyBinding(
            keys: [.alt("f"), .wordRight],
            label: "Alt+F, Ctrl+Right",
            action: .edit(.wordRight),
            summary: "word right"
        ),
        KeyBinding(keys: [.backspace], label: "Backspace", action: .edit(.deleteBackward), summary: "delete left"),
        KeyBinding(keys: [.delete], label: "Delete", action: .edit(.deleteForward), summary: "delete right"),
        KeyBinding(
            keys: [.control("d")],
            label: "Ctrl+D",
            action: .deleteOrQuit,
            summary: "delete right; on an empty line, quit"
        ),
        KeyBinding(keys: [.control("u")], label: "Ctrl+U", action: .edit(.killToStart), summary: "cut to the start"),
        KeyBinding(keys: [.control("k")], label: "Ctrl+K", action: .edit(.killToEnd), summary: "cut to the end"),
        KeyBinding(
            keys: [.control("w")],
            label: "Ctrl+W",
            action: .edit(.killWhitespaceWord),
            summary: "cut the word left (to a blank)"
        ),
        KeyBinding(
            keys: [.altBackspace],
            label: "Alt+Backspace",
            action: .edit(.killWordBackward),
            summary: "cut the word left"
        ),
        KeyBinding(keys: [.alt("d")], label: "Alt+D", action: .edit(.killWordForward), summary: "cut the word right"),
        KeyBinding(keys: [.control("y")], label: "Ctrl+Y", action: .edit(.yank), summary: "paste what was cut"),
        KeyBinding(
            keys: [.up, .control("p")],
            label: "Up, Ctrl+P",
            action: .edit(.historyPrevious),
            summary: "previous line sent"
        ),
        KeyBinding(
            keys: [.down, .control("n")],
            label: "Down, Ctrl+N",
            action: .edit(.historyNext),
            summary: "next line sent"
        ),
        KeyBinding(keys: [.pageUp], label: "PgUp", action: .scrollUp, summary: "scroll the messages (or help) up"),
        KeyBinding(keys: [.pageDown], label: "PgDn", action: .scrollDown, summary: "scroll down"),
        KeyBinding(
            keys: (1...9).map { .alt(Character(String($0))) },
            label: "Alt+1..9",
            // Listed for /help; `action(for:)` reads the digit and opens that group.
            action: .openGroup(0),
            summary: "open the n-th group of the list"
        ),
        KeyBinding(keys: [.escape], label: "Esc", action: .dismiss, summary: "close help, clear the notice"),
        KeyBinding(keys: [.control("l")], label: "Ctrl+L", action: .redraw, summary: "redraw the screen"),
        KeyBinding(keys: [.control("c")], label: "Ctrl+C", action: .quit, summary: "quit"),
    ]

    /// What `key` does; nil for keys the chat ignores. Text is typed, not bound.
    public static func action(for key: KeyEvent) -> ChatAction? {
        if case .alt(let character) = key, let digit = character.wholeNumberValue, (1...9).contains(digit) {
            return .openGroup(digit)
        }
        return all.first { $0.keys.contains(key) }?.action
    }
}
