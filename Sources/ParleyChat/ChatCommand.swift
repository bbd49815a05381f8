/// What one line typed into the chat asks for. Lines are parsed into these
/// values before anything runs, so parsing is tested without a terminal or a
/// server (as iamb tests its commands).
public enum ChatCommand: Equatable, Sendable {
    /// Text for the open group. A line starting with `//` sends one `/`.
    case message(String)
    case switchTo(group: String)
    case groups
    case create(group: String)
    case members
    case add(users: [String])
    case remove(user: String)
    case leave
    case destroy
    /// `/upgrade`: moves the open group to post-quantum encryption (`parley upgrade`).
    case upgrade
    case verify(user: String)
    /// `/devices`: this account's devices.
    case devices
    /// `/devices approve CODE`: approve a new device of this account by the code it shows.
    case approveDevice(code: String)
    case help
    case quit
}

/// Why a typed line is not a command; `description` is the sentence shown.
public enum ChatParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case unknownCommand(String)
    case missingArgument(CommandSpec)
    case extraArguments(CommandSpec)

    public var description: String {
        switch self {
        case .empty: "Type a message, or a command such as /help."
        case .unknownCommand(let name): "There is no command \(name); /help lists them, Tab completes them."
        case .missingArgument(let spec): "\(spec.name) needs \(spec.argument.placeholder): type \(spec.usage)."
        case .extraArguments(let spec): "\(spec.name) takes \(spec.argument.expectation): type \(spec.usage)."
        }
    }
}

/// One command's name, arguments and help line: the parser, `/help` and Tab
/// completion all read this table, so they cannot disagree.
public struct CommandSpec: Equatable, Sendable {
    public enum Argument: Equatable, Sendable {
        case none
        /// Exactly one word, of the kind named (`GROUP`, `USER`).
        case one(String)
        /// One or more words, separated by spaces or commas.
        case many(String)
        /// Nothing, or a fixed word then one word of the kind named (`/devices [approve CODE]`).
        case optionalSubcommand(String, String)

        var placeholder: String {
            switch self {
            case .none: "nothing"
            case .one(let kind): kind
            case .many(let kind): "\(kind)..."
            case .optionalSubcommand(let word, let kind): "\(word) \(kind)"
            }
        }

        var expectation: String {
            switch self {
            case .none: "no arguments"
            case .one(let kind): "one \(kind)"
            case .many(let kind): "one or more \(kind)s"
            case .optionalSubcommand(let word, let kind): "nothing, or \(word) and one \(kind)"
            }
        }
    }

    /// What Tab completes in this command's argument.
    public enum Completes: Equatable, Sendable {
        case nothing, groups, members, knownUsers, usersOutsideGroup
    }

    /// Which command this is; the parser switches on it, never on the name.
    public enum Verb: Equatable, Sendable {
        case switchTo, groups, create, members, add, remove, leave, destroy, upgrade, verify, devices, help, quit
    }

    public let verb: Verb
    public let name: String
    public let aliases: [String]
    public let argument: Argument
    public let completes: Completes
    public let summary: String

    public var usage: String {
        switch argument {
        case .none: name
        case .optionalSubcommand: "\(name) [\(argument.placeholder)]"
        default: "\(name) \(argument.placeholder)"
        }
    }

    /// Every command the chat knows, in the order `/help` lists them.
    public static let all: [CommandSpec] = [
        CommandSpec(
            verb: .switchTo,
            name: "/switch",
            aliases: [],
            argument: .one("GROUP"),
            completes: .groups,
            summary: "open a group"
        ),
        CommandSpec(
            verb: .groups,
            name: "/groups",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "the list of your groups"
        ),
        CommandSpec(
            verb: .create,
            name: "/create",
            aliases: [],
            argument: .one("GROUP"),
            completes: .nothing,
            summary: "create a group"
        ),
        CommandSpec(
            verb: .members,
            name: "/members",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "list the open group's members"
        ),
        CommandSpec(
            verb: .add,
            name: "/add",
            aliases: [],
            argument: .many("USER"),
            completes: .usersOutsideGroup,
            summary: "add members (admins)"
        ),
        CommandSpec(
            verb: .remove,
            name: "/remove",
            aliases: [],
            argument: .one("USER"),
            completes: .members,
            summary: "remove a member (admins)"
        ),
        CommandSpec(
            verb: .leave,
            name: "/leave",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "ask to leave the group"
        ),
        CommandSpec(
            verb: .destroy,
            name: "/destroy",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "destroy the open group (admins)"
        ),
        CommandSpec(
            verb: .upgrade,
            name: "/upgrade",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "move the open group to post-quantum encryption (admins)"
        ),
        CommandSpec(
            verb: .verify,
            name: "/verify",
            aliases: [],
            argument: .one("USER"),
            completes: .knownUsers,
            summary: "show the safety number to compare with USER"
        ),
        CommandSpec(
            verb: .devices,
            name: "/devices",
            aliases: [],
            argument: .optionalSubcommand("approve", "CODE"),
            completes: .nothing,
            summary: "list your devices, or approve a new one by the code it shows"
        ),
        CommandSpec(
            verb: .help,
            name: "/help",
            aliases: [],
            argument: .none,
            completes: .nothing,
            summary: "this help"
        ),
        CommandSpec(
            verb: .quit,
            name: "/quit",
            aliases: ["/exit"],
            argument: .none,
            completes: .nothing,
            summary: "leave the chat"
        ),
    ]

    static func named(_ name: String) -> CommandSpec? {
        all.first { $0.name == name || $0.aliases.contains(name) }
    }
}

extension ChatCommand {
    /// Parses one typed line. Leading and trailing blanks are not part of a
    /// message; a message keeps its inner line breaks (a paste may hold them).
    public static func parse(_ typed: String) throws(ChatParseError) -> ChatCommand {
        let line = typed.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !line.isEmpty else { throw .empty }
        guard line.hasPrefix("/") else { return .message(line) }
        if line.hasPrefix("//") { return .message(String(line.dropFirst())) }
        let words = line.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard let spec = CommandSpec.named(words[0]) else { throw .unknownCommand(words[0]) }
        let arguments =
            if case .many = spec.argument {
                words.dropFirst().flatMap { $0.split(separator: ",").map(String.init) }
            } else {
                Array(words.dropFirst())
            }
        return try command(spec, arguments)
    }

    private static func command(_ spec: CommandSpec, _ arguments: [String]) throws(ChatParseError) -> ChatCommand {
        switch spec.argument {
        case .none where !arguments.isEmpty, .one where arguments.count > 1: throw .extraArguments(spec)
        case .one where arguments.isEmpty, .many where arguments.isEmpty: throw .missingArgument(spec)
        case .optionalSubcommand(let word, _)
        where !arguments.isEmpty && (arguments.first != word || arguments.count < 2):
            throw .missingArgument(spec)
        case .optionalSubcommand where arguments.count > 2: throw .extraArguments(spec)
        default: break
        }
        let first = arguments.first ?? ""
        return switch spec.verb {
        case .switchTo: .switchTo(group: first)
        case .groups: .groups
        case .create: .create(group: first)
        case .members: .members
        case .add: .add(users: arguments)
        case .remove: .remove(user: first)
        case .leave: .leave
        case .destroy: .destroy
        case .upgrade: .upgrade
        case .verify: .verify(user: first)
        case .devices: arguments.isEmpty ? .devices : .approveDevice(code: arguments.last ?? "")
        case .help: .help
        case .quit: .quit
        }
    }
}
