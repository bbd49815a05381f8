import Foundation
import Logging
import ParleyClient
import ParleyServer

/// The seeds' scenario on a fresh server: alice creates group1, adds bob and
/// charlie, they talk, alice removes charlie and says "charlie cant see this".
public struct DemoScenario {
    /// What each user ended up seeing, and what the server stored.
    public struct Outcome: Sendable {
        public var views: [String: [HistoryEntry]]
        public var dataDirectory: String
        public var plaintexts: [String]
        /// Plaintexts found in any file under the server's data directory (should be none).
        public var leakedPlaintexts: [String]
        public var storedMessages: [LogInspection.Row]
    }

    public static let conversation: [(user: String, text: String)] = [
        ("alice", "hello bob and charlie"),
        ("bob", "hi alice, hi charlie"),
        ("charlie", "hey both"),
    ]
    public static let afterRemoval = "charlie cant see this"

    public init() {}

    /// Runs the scenario; `log` receives a running commentary.
    public func run(log: (String) -> Void = { _ in }) async throws -> Outcome {
        let root = NSTemporaryDirectory() + "parley-demo-" + UUID().uuidString
        var configuration = ServerConfiguration()
        configuration.dataDirectory = root + "/server"
        configuration.port = 0
        var logger = Logger(label: "parley-demo")
        logger.logLevel = .error
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let serverTask = Task { try await server.run(handleSignals: false) { continuation.yield($0) } }
        var portIterator = ports.makeAsyncIterator()
        guard let port = await portIterator.next() else { throw DemoError("the server did not start") }
        let url = "https://127.0.0.1:\(port)"
        log("Server running at \(url), data in \(configuration.dataDirectory)")
        log("Certificate fingerprint \(server.fingerprint)")

        func client(_ name: String) throws -> ParleyClient { try ParleyClient(home: root + "/" + name) }
        let password = "demo password"
        var clients: [String: ParleyClient] = [:]
        do {
            for name in ["alice", "bob", "charlie"] {
                let user = try client(name)
                try await user.register(server: url, username: name, password: password)
                clients[name] = user
                log("\(name) registered and uploaded key packages")
            }
            let alice = clients["alice"]!
            let bob = clients["bob"]!
            let charlie = clients["charlie"]!
            try await alice.createGroup("group1")
            log("alice created group1")
            try await alice.add(["bob", "charlie"], to: "group1")
            log("alice added bob and charlie")
            for user in [bob, charlie] { try await user.sync() }
            for (name, text) in Self.conversation {
                _ = try await clients[name]!.send(text, to: "group1")
                log("\(name): \(text)")
                for other in clients.values { try await other.sync() }
            }
            try await alice.remove("charlie", from: "group1")
            log("alice removed charlie")
            _ = try await alice.send(Self.afterRemoval, to: "group1")
            log("alice: \(Self.afterRemoval)")
            for user in [bob, charlie] { try await user.sync() }

            var views: [String: [HistoryEntry]] = [:]
            for (name, user) in clients { views[name] = try await user.history("group1") }
            for user in clients.values { await user.close() }
            await server.shutdown()
            _ = try? await serverTask.value

            let plaintexts = Self.conversation.map(\.text) + [Self.afterRemoval]
            return Outcome(
                views: views,
                dataDirectory: configuration.dataDirectory,
                plaintexts: plaintexts,
                leakedPlaintexts: try Self.search(configuration.dataDirectory, for: plaintexts),
                storedMessages: try LogInspection.messages(dataDirectory: configuration.dataDirectory)
            )
        } catch {
            for user in clients.values { await user.close() }
            await server.shutdown()
            throw error
        }
    }

    /// Which of `needles` occur in any file below `directory`.
    static func search(_ directory: String, for needles: [String]) throws -> [String] {
        var found = Set<String>()
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let file = enumerator?.nextObject() as? String {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file) else { continue }
            for needle in needles where data.range(of: Data(needle.utf8)) != nil { found.insert(needle) }
        }
        return needles.filter(found.contains)
    }
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
