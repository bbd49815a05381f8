import ArgumentParser
import Foundation
import ParleyClient

/// `parley chat [GROUP]`: the full-screen client.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Full-screen chat: message pane, status line, an input line that arriving messages never disturb."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "Open this group; without it the chat starts on the list of groups.") var group: String?

    func run() async throws {
        let client = try options.client()
        guard let username = await client.username else {
            throw Operator.Failure(description: "\(ClientError.notLoggedIn)")
        }
        do {
            try await client.unlock(password: options.password(for: username))
        } catch {
            throw Operator.Failure(description: TerminalText.block("\(error)"))
        }
        let terminal = Terminal()
        terminal.enter()
        defer {
            terminal.leave()
        }
        var app = ChatApp(client: client, terminal: terminal, screen: ChatScreen(username: username, group: group))
        await app.run()
        await client.close()
    }
}

struct ChatApp {
    let client: ParleyClient
    let terminal: Terminal
    var screen: ChatScreen
    private var running = true
    private var lastSize = (rows: 0, columns: 0)

    init(client: ParleyClient, terminal: Terminal, screen: ChatScreen) {
        self.client = client
        self.terminal = terminal
        self.screen = screen
    }

    mutating func run() async {
        await connect()
        await refresh(all: true)
        draw()
        var backoff: Duration = .seconds(1)
        var nextAttempt = ContinuousClock.now
        while running {
            // Keys first, so typing is never held up by the network.
            let keys = Key.decode(terminal.read(milliseconds: 30))
            for key in keys { await handle(key) }
            if !keys.isEmpty { draw() }

            if screen.connected {
                do {
                    let changed = try await client.pump(timeout: .milliseconds(20))
                    if !changed.isEmpty {
                        await refresh(changed: changed)
                        draw()
                    }
                } catch {
                    screen.connected = false
                    nextAttempt = .now + backoff
                    draw()
                }
            } else if ContinuousClock.now >= nextAttempt {
                await connect()
                backoff = screen.connected ? .seconds(1) : min(backoff * 2, .seconds(30))
                nextAttempt = .now + backoff
                if screen.connected { await refresh(all: true) }
                draw()
            }
            let size = terminal.size
            if size != lastSize { draw() }
        }
    }

    private mutating func connect() async {
        do {
            try await client.sync()
            screen.connected = true
        } catch {
            screen.connected = false
            screen.notice = "Offline: \(error)"
        }
    }

    private mutating func refresh(all: Bool = false, changed: Set<String> = []) async {
        screen.groups = await client.groupSummaries()
        for name in changed where name != screen.group {
            screen.unread[name, default: 0] += 1
        }
        guard let group = screen.group else { return }
        let old = screen.history.count
        screen.history = (try? await client.history(group)) ?? []
        if screen.scroll > 0, !all, changed.contains(group) {
            // Keep the view where the reader left it; count what is below.
            let added = ChatScreen(username: "", history: Array(screen.history.dropFirst(old))).messageLines(
                width: terminal.size.columns
            ).count
            screen.scroll += added
            screen.unseenBelow += added
        }
    }

    private mutating func draw() {
        let size = terminal.size
        lastSize = size
        terminal.write(screen.render(rows: size.rows, columns: size.columns))
    }

    private mutating func handle(_ key: Key) async {
        switch key {
        case .character(let character): screen.input.append(character)
        case .backspace: if !screen.input.isEmpty { screen.input.removeLast() }
        case .interrupt: running = false
        case .escape: screen.notice = ""
        case .pageUp, .up:
            let page = key == .up ? 1 : max(1, terminal.size.rows - 4)
            screen.scroll = min(
                screen.scroll + page,
                max(0, screen.messageLines(width: terminal.size.columns).count - 1)
            )
        case .pageDown, .down:
            let page = key == .down ? 1 : max(1, terminal.size.rows - 4)
            screen.scroll = max(0, screen.scroll - page)
            if screen.scroll == 0 { screen.unseenBelow = 0 }
            screen.unseenBelow = min(screen.unseenBelow, screen.scroll)
        case .altDigit(let number):
            if number <= screen.groups.count { await open(screen.groups[number - 1].name) }
        case .enter:
            let line = String(screen.input).trimmingCharacters(in: .whitespaces)
            screen.input.removeAll()
            if !line.isEmpty { await execute(line) }
        }
    }

    private mutating func open(_ name: String?) async {
        screen.group = name
        screen.scroll = 0
        screen.unseenBelow = 0
        if let name { screen.unread[name] = 0 }
        await refresh(all: true)
    }

    private mutating func execute(_ line: String) async {
        guard line.hasPrefix("/") else {
            guard let group = screen.group else {
                screen.notice = "Open a group first: /switch NAME or Alt+number."
                return
            }
            await attempt {
                switch try await $0.send(line, to: group) {
                case .sent: return ""
                case .queued: return "Offline: the message is queued and goes out when the server is back."
                }
            }
            await refresh(all: true)
            return
        }
        let words = line.split(separator: " ").map(String.init)
        let command = words[0]
        let arguments = Array(words.dropFirst())
        let group = screen.group
        func needGroup() -> String? {
            if group == nil { screen.notice = "Open a group first: /switch NAME." }
            return group
        }
        func needAdmin(_ name: String) async -> Bool {
            guard await client.isAdmin(of: name) else {
                screen.notice =
                    "Only a group admin may do that; the admin of \(name) is \(screen.groups.first { $0.name == name }?.admins.joined(separator: ", ") ?? "someone else")."
                return false
            }
            return true
        }
        switch command {
        case "/quit", "/exit": running = false
        case "/help": screen.notice = "Commands: " + ChatScreen.help.joined(separator: " | ")
        case "/groups": await open(nil)
        case "/switch":
            guard let name = arguments.first else {
                screen.notice = "Usage: /switch GROUP"
                return
            }
            guard screen.groups.contains(where: { $0.name == name }) else {
                screen.notice = "You are not in a group called \(name)."
                return
            }
            await open(name)
        case "/create":
            guard let name = arguments.first else {
                screen.notice = "Usage: /create GROUP"
                return
            }
            await attempt {
                try await $0.createGroup(name)
                return "Created \(name)."
            }
            await open(name)
        case "/members":
            guard let name = needGroup() else { return }
            await attempt { "Members: " + (try await $0.members(name)).joined(separator: ", ") }
        case "/add":
            guard let name = needGroup(), await needAdmin(name) else { return }
            guard !arguments.isEmpty else {
                screen.notice = "Usage: /add USER..."
                return
            }
            await attempt {
                try await $0.add(arguments, to: name)
                return "Added \(arguments.joined(separator: ", "))."
            }
        case "/remove":
            guard let name = needGroup(), await needAdmin(name) else { return }
            guard let user = arguments.first else {
                screen.notice = "Usage: /remove USER"
                return
            }
            await attempt {
                try await $0.remove(user, from: name)
                return "Removed \(user)."
            }
        case "/destroy":
            guard let name = needGroup(), await needAdmin(name) else { return }
            await attempt {
                try await $0.destroy(name)
                return "Destroyed \(name)."
            }
            await open(nil)
        case "/leave":
            guard let name = needGroup() else { return }
            await attempt {
                try await $0.leave(name)
                return "Asked to leave \(name); an admin's client completes it."
            }
        case "/verify":
            guard let user = arguments.first else {
                screen.notice = "Usage: /verify USER"
                return
            }
            await attempt {
                let (number, changed) = try await $0.verify(user)
                return (changed ? "WARNING: \(user)'s keys CHANGED. " : "") + "Safety number with \(user): \(number)"
            }
        default:
            screen.notice = "Unknown command \(command); /help lists them."
        }
        await refresh(all: true)
    }

    /// Runs a client operation and shows its result or its error as the notice.
    private mutating func attempt(_ operation: (ParleyClient) async throws -> String) async {
        do {
            screen.notice = try await operation(client)
        } catch {
            screen.notice = "\(error)"
        }
    }
}
