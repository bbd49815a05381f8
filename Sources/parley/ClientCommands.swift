import ArgumentParser
import Foundation
import ParleyChat
import ParleyClient
import ParleyProtocol

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL, e.g. https://127.0.0.1:8443. Remembered after login.")
    var server: String?

    @Option(help: "Client home directory (one device). Default: $XDG_DATA_HOME/parley.")
    var home: String?

    @Flag(help: "Read the password from standard input instead of PARLEY_PASSWORD or a prompt.")
    var passwordStdin = false

    func client() throws -> ParleyClient {
        try ParleyClient(home: home ?? ProcessInfo.processInfo.environment["PARLEY_HOME"] ?? ParleyClient.defaultHome())
    }

    func password(for name: String?) -> String {
        if passwordStdin { return readLine(strippingNewline: true) ?? "" }
        if let password = ProcessInfo.processInfo.environment["PARLEY_PASSWORD"] { return password }
        return PasswordPrompt.read("Password\(name.map { " for \($0)" } ?? ""): ")
    }

    /// Opens the home (unlocking it and syncing unless told not to), runs
    /// `body`, closes, and turns failures into one sentence.
    func run(unlock: Bool = true, sync: Bool = true, _ body: (ParleyClient) async throws -> Void) async throws {
        let client = try self.client()
        do {
            if unlock { try await client.unlock(password: password(for: await client.username)) }
            if unlock, sync { try await client.sync() }
            try await body(client)
        } catch {
            await client.close()
            throw Operator.Failure(description: TerminalText.block("\(error)"))
        }
        await client.close()
    }
}

struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an account and log this home in as its first device."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "Username: 3–32 characters of a-z, 0-9, '.', '_', '-'.") var name: String
    @Option(help: "Invite token, for servers that register by invitation.") var invite: String?

    func run() async throws {
        guard let server = options.server else {
            throw Operator.Failure(description: "Give the server with --server https://host:port.")
        }
        var recoveryCode = ""
        try await options.run(unlock: false) { client in
            recoveryCode = try await client.register(
                server: server,
                username: name,
                password: options.password(for: name),
                invite: invite
            )
        }
        print(TerminalText.line("Registered \(name) on \(server); this home is logged in."))
        print(TerminalText.line("Recovery code (write it down; it restores your identity if you lose every device):"))
        print(TerminalText.line(recoveryCode))
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log this home in (a new home becomes a new device of the account)."
    )
    @OptionGroup var options: ClientOptions
    @Argument var name: String
    @Flag(help: "Trust the server's certificate even though it changed since it was pinned.") var acceptNewCertificate =
        false

    func run() async throws {
        let password = options.password(for: name)
        try await options.run(unlock: false) { client in
            do {
                try await client.login(
                    server: options.server,
                    username: name,
                    password: password,
                    acceptNewCertificate: acceptNewCertificate
                )
            } catch ClientError.server(let body) where body.code == .deviceNotListed {
                // A new home of an account with a signed device list: say how to approve it.
                let key = try await client.newDeviceKey(password: password)
                throw ClientError.invalid(
                    "This home is a new device of \(name), and \(name)'s signed device list does not name it yet. "
                        + "On a device of the account run\n  parley devices approve-key "
                        + Hex.encode(key)
                        + " --name DEVICE\nthen run this login again."
                )
            }
        }
        print(TerminalText.line("Logged in as \(name)."))
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End this home's session on the server.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.run(sync: false) { try await $0.logout() }
        print("Logged out.")
    }
}

struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List your groups.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.run { client in
            let groups = await client.groupSummaries()
            if groups.isEmpty { print("You are in no groups. Create one with `parley create NAME`.") }
            for group in groups {
                let state =
                    group.problem.map { "\t(cannot be followed: \($0))" } ?? (group.active ? "" : "\t(left)")
                let warnings = group.warnings.map { "\t(\($0))" }.joined()
                print(
                    TerminalText.line(GroupText.heading(group)) + "\t\(group.members.count) members\tadmin: "
                        + TerminalText.line(group.admins.joined(separator: ", ") + state + warnings)
                )
            }
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a group; you are its admin.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Flag(help: "Use the post-quantum cipher suite (X-Wing: ML-KEM-768 with X25519).")
    var postQuantum = false

    func run() async throws {
        try await options.run { try await $0.createGroup(group, postQuantum: postQuantum) }
        print(TerminalText.line("Created \(group)\(postQuantum ? " (post-quantum)" : "")."))
    }
}

struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add users to a group (admins only).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Argument(parsing: .remaining) var users: [String]

    func validate() throws {
        guard !users.isEmpty else { throw ValidationError("Name at least one user to add.") }
    }

    func run() async throws {
        var warnings: [String] = []
        try await options.run { warnings = try await $0.addReporting(users, to: group) }
        print(TerminalText.line("Added \(users.joined(separator: ", ")) to \(group)."))
        for warning in warnings { print(TerminalText.line(warning)) }
    }
}

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a user from a group (admins only).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Argument var user: String

    func run() async throws {
        try await options.run { try await $0.remove(user, from: group) }
        print(TerminalText.line("Removed \(user) from \(group)."))
    }
}

struct Leave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask to leave a group; an admin's client completes it.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.leave(group) }
        print(TerminalText.line("Asked to leave \(group)."))
    }
}

struct Destroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Destroy a group and its log (admins only).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.destroy(group) }
        print(TerminalText.line("Destroyed \(group)."))
    }
}

struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a group's members.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { client in
            for member in try await client.members(group) { print(TerminalText.line(member)) }
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a message to a group (TEXT '-' reads standard input)."
    )
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Argument var text: String

    func run() async throws {
        var body = text
        if text == "-" {
            var lines: [String] = []
            while let line = readLine() { lines.append(line) }
            body = lines.joined(separator: "\n")
        }
        try await options.run { client in
            switch try await client.send(body, to: group) {
            case .sent(let seq): print("Sent (#\(seq)).")
            case .queued: print("The server is unreachable; the message is queued and goes out on the next sync.")
            }
        }
    }
}

struct Read: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a group's messages (synced from the server first)."
    )
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Flag(help: "Keep running and print new messages as they arrive.") var follow = false
    @Flag(help: "One JSON object per line: seq, time, sender, text, kind, and note when there is one.") var json = false

    func run() async throws {
        let json = self.json
        let width = Self.terminalWidth()
        try await options.run(sync: false) { client in
            // Offline or a failing server still leaves the stored history readable.
            do {
                try await client.sync()
            } catch {
                let note = TerminalText.line("Showing stored messages only; syncing failed: \(error)") + "\n"
                FileHandle.standardError.write(Data(note.utf8))
            }
            for entry in try await client.history(group) { print(Self.format(entry, json: json, width: width)) }
            fflush(nil)
            if follow {
                try await client.follow(group) { entry in
                    print(Self.format(entry, json: json, width: width))
                    fflush(nil)
                }
            }
        }
    }

    /// One entry as printed: JSON with every terminal-active character
    /// escaped, or a line whose continuation lines (the text's own line breaks
    /// and, on a terminal, what would wrap) are indented and marked.
    static func format(_ entry: HistoryEntry, json: Bool, width: Int = .max) -> String {
        if json {
            var object: [String: Any] = [
                "seq": entry.seq, "time": entry.time, "sender": entry.sender, "text": entry.text,
                "kind": entry.kind.rawValue,
            ]
            if let note = entry.note { object["note"] = note }
            let encoded =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            return TerminalText.json(String(decoding: encoded, as: UTF8.self))
        }
        let time = Date(timeIntervalSince1970: Double(entry.time) / 1000)
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        let clock = formatter.string(from: time)
        let head = entry.kind == .system ? "[\(clock)] * " : "[\(clock)] [\(TerminalText.line(entry.sender))] "
        // A caveat (e.g. a server time far from this clock) follows the text, in brackets.
        return TerminalText.displayLines(head: head, text: GroupText.text(of: entry), width: width).joined(
            separator: "\n"
        )
    }

    /// The terminal's width when standard output is one; otherwise no limit.
    static func terminalWidth() -> Int {
        var window = winsize()
        guard isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0 else {
            return .max
        }
        return Int(window.ws_col)
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the safety number to compare with USER out of band."
    )
    @OptionGroup var options: ClientOptions
    @Argument var user: String

    func run() async throws {
        try await options.run { client in
            let (number, changed) = try await client.verify(user)
            if changed {
                print(
                    TerminalText.line(
                        "WARNING: \(user)'s keys CHANGED since you last checked. "
                            + "Do not trust new messages from \(user) until you have compared this number in person."
                    )
                )
            }
            let name = TerminalText.line(user)
            print(
                "Safety number with \(name):\n  \(number)\nCompare it with \(name) in person or over a call; it matches only if nobody is in between."
            )
        }
    }
}
