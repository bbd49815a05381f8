import ArgumentParser
import Foundation
import ParleyClient

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
            throw Operator.Failure(description: "\(error)")
        }
        await client.close()
    }
}

struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an account and log this home in as its first device.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Username: 3–32 characters of a-z, 0-9, '.', '_', '-'.") var name: String
    @Option(help: "Invite token, for servers that register by invitation.") var invite: String?

    func run() async throws {
        guard let server = options.server else { throw Operator.Failure(description: "Give the server with --server https://host:port.") }
        try await options.run(unlock: false) { client in
            try await client.register(server: server, username: name, password: options.password(for: name), invite: invite)
        }
        print("Registered \(name) on \(server); this home is logged in.")
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log this home in (a new home becomes a new device of the account).")
    @OptionGroup var options: ClientOptions
    @Argument var name: String
    @Flag(help: "Trust the server's certificate even though it changed since it was pinned.") var acceptNewCertificate = false

    func run() async throws {
        try await options.run(unlock: false) { client in
            try await client.login(server: options.server, username: name, password: options.password(for: name), acceptNewCertificate: acceptNewCertificate)
        }
        print("Logged in as \(name).")
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
                print("\(group.name)\t\(group.members.count) members\tadmin: \(group.admins.joined(separator: ", "))\(group.active ? "" : "\t(left)")")
            }
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a group; you are its admin.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.createGroup(group) }
        print("Created \(group).")
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
        try await options.run { try await $0.add(users, to: group) }
        print("Added \(users.joined(separator: ", ")) to \(group).")
    }
}

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a user from a group (admins only).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Argument var user: String

    func run() async throws {
        try await options.run { try await $0.remove(user, from: group) }
        print("Removed \(user) from \(group).")
    }
}

struct Leave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask to leave a group; an admin's client completes it.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.leave(group) }
        print("Asked to leave \(group).")
    }
}

struct Destroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Destroy a group and its log (admins only).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.destroy(group) }
        print("Destroyed \(group).")
    }
}

struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a group's members.")
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { client in
            for member in try await client.members(group) { print(member) }
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a message to a group (TEXT '-' reads standard input).")
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
    static let configuration = CommandConfiguration(abstract: "Print a group's messages (synced from the server first).")
    @OptionGroup var options: ClientOptions
    @Argument var group: String
    @Flag(help: "Keep running and print new messages as they arrive.") var follow = false
    @Flag(help: "One JSON object per line: seq, time, sender, text.") var json = false

    func run() async throws {
        let json = self.json
        try await options.run { client in
            for entry in try await client.history(group) { print(Self.format(entry, json: json)) }
            fflush(nil)
            if follow {
                try await client.follow(group) { entry in
                    print(Self.format(entry, json: json))
                    fflush(nil)
                }
            }
        }
    }

    static func format(_ entry: HistoryEntry, json: Bool) -> String {
        if json {
            let object: [String: Any] = ["seq": entry.seq, "time": entry.time, "sender": entry.sender, "text": entry.text, "kind": entry.kind.rawValue]
            return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        let time = Date(timeIntervalSince1970: Double(entry.time) / 1000)
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        let clock = formatter.string(from: time)
        return entry.kind == .system ? "[\(clock)] * \(entry.text)" : "[\(clock)] [\(entry.sender)] \(entry.text)"
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the safety number to compare with USER out of band.")
    @OptionGroup var options: ClientOptions
    @Argument var user: String

    func run() async throws {
        try await options.run { client in
            let (number, changed) = try await client.verify(user)
            if changed {
                print("WARNING: \(user)'s keys CHANGED since you last checked. Do not trust new messages from \(user) until you have compared this number in person.")
            }
            print("Safety number with \(user):\n  \(number)\nCompare it with \(user) in person or over a call; it matches only if nobody is in between.")
        }
    }
}
