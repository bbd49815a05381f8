import ParleyClient

/// A request the screen hands to the network worker; it never waits for the answer.
public enum WorkerRequest: Equatable, Sendable {
    /// Runs a command that needs the client (send, add, remove, ...) for `group`.
    case run(ChatCommand, group: String?)
    /// From now on, snapshots carry this group's history.
    case view(String?)
}

/// What the worker reports back, as events into the screen's loop.
public enum WorkerEvent: Sendable {
    case snapshot(ChatSnapshot)
    case connection(ConnectionState)
    case finished(ChatCommand, Result<CommandOutcome, any Error>)
}

/// The client's state after some change: the groups, and the viewed group's history.
public struct ChatSnapshot: Sendable {
    public var groups: [GroupSummary]
    public var viewed: String?
    public var history: [HistoryEntry]
    /// Groups whose history changed since the last snapshot (for unread counts).
    public var changed: Set<String>

    public init(groups: [GroupSummary], viewed: String?, history: [HistoryEntry], changed: Set<String>) {
        self.groups = groups
        self.viewed = viewed
        self.history = history
        self.changed = changed
    }
}

/// What a finished command did.
public enum CommandOutcome: Equatable, Sendable {
    case sent
    case queued
    case created(String)
    case members([String])
    case added([String])
    case removed(String)
    case leaveRequested(String)
    case destroyed(String)
    case upgraded(String)
    case safetyNumber(user: String, number: String, changed: Bool)
    case deviceApproved(LinkApproval)
    case devices([DeviceInfo])
    case nothing

    /// The line the chat shows for it (`parley upgrade` prints `.upgraded`'s too).
    public var sentence: String {
        switch self {
        case .sent, .nothing: ""
        case .queued: "Offline: the message is queued and goes out when the server is back."
        case .created(let name): "Created \(name)."
        case .members(let names): "Members: " + names.joined(separator: ", ")
        case .added(let users): "Added \(users.joined(separator: ", "))."
        case .removed(let user): "Removed \(user)."
        case .leaveRequested(let name): "Asked to leave \(name); an admin's client completes it."
        case .destroyed(let name): "Destroyed \(name)."
        // `parley upgrade` prints this same sentence.
        case .upgraded(let name): "Upgraded \(name) to post-quantum encryption."
        case .safetyNumber(let user, let number, let changed):
            (changed ? "WARNING: \(user)'s keys CHANGED. " : "") + "Safety number with \(user): \(number)"
        case .devices(let devices): "Your devices: " + devices.map(\.summary).joined(separator: "; ")
        case .deviceApproved(let approval):
            "Approved \(approval.deviceName): added to \(approval.addedTo.count) groups, sent \(approval.messages) "
                + "messages of history"
                + (approval.notAddedTo.isEmpty
                    ? "." : "; not added to " + approval.notAddedTo.keys.sorted().joined(separator: ", ") + ".")
        }
    }
}

/// Why the chat refuses a command before it reaches the network.
public enum ChatRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case noGroupOpen
    case notInGroup(String)
    case notAdmin(group: String, admins: [String])
    case noGroupNumber(Int)

    public var description: String {
        switch self {
        case .noGroupOpen: "Open a group first: /switch NAME or Alt+number."
        case .notInGroup(let name): "You are not in a group called \(name); /groups lists yours."
        case .notAdmin(let group, let admins):
            "Only a group admin may do that; the admin of \(group) is "
                + (admins.isEmpty ? "someone else" : admins.joined(separator: ", ")) + "."
        case .noGroupNumber(let number): "There is no group number \(number); /groups lists yours."
        }
    }
}

/// The chat's logic without a terminal or a network: keys and worker events
/// in, screen state and worker requests out.
public struct ChatState: Sendable {
    public var screen: ChatScreen
    public private(set) var running = true
    /// Set by Ctrl+L: the next draw repaints every row.
    public var needsRepaint = false

    public init(username: String, group: String?) {
        screen = ChatScreen(username: username, group: group)
    }

    /// Applies one key for a terminal of `rows` × `columns`; returns the work for the network.
    public mutating func handle(_ key: KeyEvent, rows: Int, columns: Int) -> [WorkerRequest] {
        switch key {
        case .character(let character):
            screen.editor.insert(String(character))
            return []
        case .paste(let text):
            screen.editor.insert(text)
            return []
        default: break
        }
        guard let action = KeyBinding.action(for: key) else { return [] }
        switch action {
        case .edit(let edit): screen.editor.perform(edit)
        case .submit: return submit()
        case .complete: complete()
        case .deleteOrQuit:
            if screen.editor.text.isEmpty { running = false } else { screen.editor.perform(.deleteForward) }
        case .quit: running = false
        case .scrollUp: scroll(by: max(1, rows - 4), columns: columns)
        case .scrollDown: scroll(by: -max(1, rows - 4), columns: columns)
        case .openGroup(let number):
            guard number >= 1, number <= screen.groups.count else {
                screen.notice = ChatRefusal.noGroupNumber(number).description
                return []
            }
            return open(screen.groups[number - 1].name)
        case .dismiss:
            // Help scrolls from its top: leaving it puts the messages back at the bottom.
            if screen.showingHelp { screen.scroll = 0 }
            screen.showingHelp = false
            screen.notice = ""
        case .redraw: needsRepaint = true
        }
        return []
    }

    private mutating func submit() -> [WorkerRequest] {
        let line = screen.editor.submit()
        do {
            return try execute(ChatCommand.parse(line))
        } catch .empty {
            return []
        } catch {
            screen.notice = error.description
            return []
        }
    }

    /// Runs a parsed command: local ones here, network ones handed to the worker.
    mutating func execute(_ command: ChatCommand) -> [WorkerRequest] {
        screen.notice = ""
        do {
            switch command {
            case .quit: running = false
            case .help:
                screen.showingHelp = true
                screen.scroll = 0
            case .groups: return open(nil)
            case .switchTo(let name):
                guard screen.groups.contains(where: { $0.name == name }) else { throw ChatRefusal.notInGroup(name) }
                return open(name)
            case .create, .verify, .approveDevice, .devices: return start(command)
            // /upgrade: the client refuses a non-admin with the sentence `parley upgrade` prints.
            case .message, .members, .leave, .upgrade: return start(command, in: try openGroup())
            case .add, .remove, .destroy: return start(command, in: try adminGroup())
            }
        } catch {
            screen.notice = "\(error)"
        }
        return []
    }

    private func openGroup() throws(ChatRefusal) -> String {
        guard let group = screen.group else { throw .noGroupOpen }
        return group
    }

    /// The open group, if this user administers it (judged from the last snapshot).
    private func adminGroup() throws(ChatRefusal) -> String {
        let group = try openGroup()
        let admins = screen.groups.first { $0.name == group }?.admins ?? []
        guard admins.contains(screen.username) else { throw .notAdmin(group: group, admins: admins) }
        return group
    }

    private mutating func start(_ command: ChatCommand, in group: String? = nil) -> [WorkerRequest] {
        screen.working.append(Self.label(command))
        return [.run(command, group: group)]
    }

    static func label(_ command: ChatCommand) -> String {
        switch command {
        case .message: "sending"
        case .create(let name): "/create \(name)"
        case .add(let users): "/add \(users.joined(separator: " "))"
        case .remove(let user): "/remove \(user)"
        case .verify(let user): "/verify \(user)"
        case .approveDevice: "/devices approve"
        case .devices: "/devices"
        case .members: "/members"
        case .leave: "/leave"
        case .destroy: "/destroy"
        case .upgrade: "/upgrade"
        case .switchTo, .groups, .help, .quit: ""
        }
    }

    mutating func open(_ name: String?) -> [WorkerRequest] {
        screen.group = name
        screen.scroll = 0
        screen.unseenBelow = 0
        screen.showingHelp = false
        screen.history = []
        if let name { screen.unread[name] = 0 }
        return [.view(name)]
    }

    private mutating func scroll(by lines: Int, columns: Int) {
        let total =
            screen.showingHelp
            ? ChatScreen.helpLines.count
            : screen.group == nil ? screen.groupListLines().count : screen.messageLines(width: columns).count
        // Help and the group list scroll down from the top; messages scroll up from the bottom.
        let step = screen.showingHelp || screen.group == nil ? -lines : lines
        screen.scroll = min(max(0, screen.scroll + step), max(0, total - 1))
        screen.unseenBelow = min(screen.unseenBelow, screen.scroll)
    }
}

extension ChatState {
    /// Takes in a worker event for a terminal `columns` wide; returns follow-up work.
    public mutating func apply(_ event: WorkerEvent, columns: Int) -> [WorkerRequest] {
        switch event {
        case .connection(let state):
            screen.connection = state
        case .snapshot(let snapshot):
            apply(snapshot, columns: columns)
        case .finished(let command, let result):
            if let index = screen.working.firstIndex(of: Self.label(command)) { screen.working.remove(at: index) }
            switch result {
            case .success(let outcome):
                screen.notice = outcome.sentence
                if case .created(let name) = outcome { return open(name) }
                if case .destroyed(let name) = outcome, screen.group == name { return open(nil) }
            case .failure(let error):
                // The one place a client error becomes words on the screen.
                screen.notice = "\(error)"
            }
        }
        return []
    }

    private mutating func apply(_ snapshot: ChatSnapshot, columns: Int) {
        screen.groups = snapshot.groups
        for name in snapshot.changed where name != screen.group {
            screen.unread[name, default: 0] += 1
        }
        guard snapshot.viewed == screen.group, let group = screen.group else { return }
        guard screen.scroll > 0, snapshot.changed.contains(group) else {
            screen.history = snapshot.history
            return
        }
        // Keep the view where the reader left it; count what is below.
        let before = screen.messageLines(width: columns).count
        screen.history = snapshot.history
        let added = max(0, screen.messageLines(width: columns).count - before)
        screen.scroll += added
        screen.unseenBelow += added
    }

    /// Tab: completes the word before the cursor from what it can be there.
    mutating func complete() {
        let matches = screen.editor.complete(from: completionCandidates())
        screen.notice = matches.count > 1 ? "Tab again: " + matches.joined(separator: " ") : ""
    }

    func completionCandidates() -> [String] {
        let (_, word, isFirst) = screen.editor.wordBeforeCursor
        let members = screen.groups.first { $0.name == screen.group }?.members ?? []
        if isFirst, word.hasPrefix("/") { return CommandSpec.all.flatMap { [$0.name] + $0.aliases } }
        guard let spec = CommandSpec.named(screen.editor.firstWord) else {
            return members.filter { $0 != screen.username }
        }
        let known = Set(screen.groups.flatMap(\.members)).subtracting([screen.username])
        switch spec.completes {
        case .nothing: return []
        case .groups: return screen.groups.map(\.name)
        case .members: return members
        case .knownUsers: return Array(known)
        case .usersOutsideGroup: return Array(known.subtracting(members))
        }
    }
}
