import ArgumentParser
import Foundation
import Logging
import ParleyClient
import ParleyServer

@main
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "End-to-end encrypted group chat on MLS (RFC 9420).",
        subcommands: [
            Serve.self, Admin.self, Demo.self,
            Register.self, Login.self, Logout.self, Groups.self, Create.self, Add.self, Remove.self, Leave.self,
            Destroy.self, Members.self, Send.self, Read.self, Verify.self, Chat.self, Devices.self, Link.self,
            Upgrade.self,
        ]
    )
}

/// Options every server-side command shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "Data directory (database, TLS certificate). Default: $PARLEY_DATA or ./parley-data.")
    var data: String?

    @Option(help: "JSON config file; PARLEY_* environment variables and flags override it.")
    var config: String?

    @Option(
        help: """
            postgres://user@host:port/database: keep state in PostgreSQL (several servers may share it). \
            Default: $PARLEY_DATABASE, else SQLite in the data directory.
            """
    )
    var database: String?

    func configuration() throws -> ServerConfiguration {
        var configuration = try ServerConfiguration.load(file: config)
        if let data { configuration.dataDirectory = data }
        if let database { configuration.database = database }
        return configuration
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Parley server: HTTPS and WebSocket on one port, TLS 1.3."
    )

    @OptionGroup var options: ServerOptions

    @Option(help: "Address to listen on. Default: $PARLEY_HOST or 127.0.0.1.")
    var host: String?

    @Option(help: "Port to listen on. Default: $PARLEY_PORT or 8443.")
    var port: Int?

    func run() async throws {
        var configuration = try options.configuration()
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        // Refused here with its sentence, before logging or the server start.
        try Operator.run { try configuration.validate() }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let fileLimit = ProcessResources.raiseOpenFileLimit()
        let server = try ParleyServer(configuration: configuration)
        print("Open-file limit: \(fileLimit) (each connection holds one).")
        if server.createdCertificate {
            print("Generated a self-signed TLS certificate in \(configuration.dataDirectory).")
        }
        print("TLS certificate SHA-256 fingerprint: \(server.fingerprint)")
        let (host, stored) = (configuration.host, server.storageDescription)
        try await server.run { port in
            print("Parley is listening on https://\(host):\(port) (\(stored))")
        }
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage accounts in a data directory, also while the server runs.",
        subcommands: [
            AddUser.self, ListUsers.self, RemoveUser.self, ListDevices.self, RemoveDevice.self, Backup.self,
            Migrate.self,
        ]
    )
}

struct AddUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-user",
        abstract: "Create an account (the seed's provisioning mode)."
    )

    @Argument(help: "Username: 3–32 characters of a-z, 0-9, '.', '_', '-'.")
    var name: String

    @Flag(help: "Read the password from standard input instead of prompting.")
    var passwordStdin = false

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let password: String
        if passwordStdin {
            password = readLine(strippingNewline: true) ?? ""
        } else if let fromEnvironment = ProcessInfo.processInfo.environment["PARLEY_PASSWORD"] {
            password = fromEnvironment
        } else {
            password = PasswordPrompt.read("Password for \(name): ")
        }
        try Operator.run {
            let server = try ParleyServer(configuration: try options.configuration(), logger: Operator.quietLogger)
            try server.addUser(name: name, password: password)
            print("Added user \(name).")
        }
    }
}

struct ListUsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-users", abstract: "List accounts.")
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let server = try ParleyServer(configuration: try options.configuration(), logger: Operator.quietLogger)
            let users = try server.listUsers()
            if users.isEmpty { print("No users.") }
            for user in users {
                print(TerminalText.line(user.name) + "\t\(user.devices) device(s)\tcreated \(user.created)")
            }
        }
    }
}

struct RemoveUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-user",
        abstract: "Delete an account, its devices and sessions."
    )
    @Argument var name: String
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let server = try ParleyServer(configuration: try options.configuration(), logger: Operator.quietLogger)
            guard try server.removeUser(name: name) else {
                throw Operator.Failure(description: "There is no user named \(name).")
            }
            print("Removed user \(name).")
        }
    }
}

struct ListDevices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-devices",
        abstract: "List a user's devices: id and signature-key fingerprint."
    )
    @Argument var user: String
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let server = try ParleyServer(configuration: try options.configuration(), logger: Operator.quietLogger)
            guard let devices = try server.listDevices(user: user) else {
                throw Operator.Failure(description: "There is no user named \(TerminalText.line(user)).")
            }
            if devices.isEmpty { print("\(TerminalText.line(user)) has no devices.") }
            for device in devices { print("\(device.id)\tkey \(device.keyFingerprint)") }
        }
    }
}

struct RemoveDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-device",
        abstract: "Remove one device of a user: its key is retired, its sessions end, its connection closes.",
        discussion: "Frees a place under max_devices_per_account. `list-devices USER` shows the ids."
    )
    @Argument var user: String
    @Argument(help: "The device id, as `list-devices` shows it.") var deviceID: Int64
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let server = try ParleyServer(configuration: try options.configuration(), logger: Operator.quietLogger)
            guard try server.removeDevice(user: user, deviceID: deviceID) else {
                throw Operator.Failure(description: "\(TerminalText.line(user)) has no device \(deviceID).")
            }
            print("Removed device \(deviceID) of \(TerminalText.line(user)).")
        }
    }
}

/// Turns errors into one plain sentence on stderr and a non-zero exit.
enum Operator {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(description: TerminalText.block("\(error)"))
        }
    }

    /// Operator commands log only warnings and errors.
    static var quietLogger: Logger {
        var logger = Logger(label: "parley-admin")
        logger.logLevel = .warning
        return logger
    }
}

/// Reads a line from the terminal without echoing it.
enum PasswordPrompt {
    static func read(_ prompt: String) -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var original = termios()
        let isTerminal = tcgetattr(STDIN_FILENO, &original) == 0
        if isTerminal {
            var silent = original
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &silent)
        }
        defer {
            if isTerminal {
                tcsetattr(STDIN_FILENO, TCSANOW, &original)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        return readLine(strippingNewline: true) ?? ""
    }
}
