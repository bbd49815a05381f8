import ArgumentParser
import Foundation
import ParleyClient
import ParleyServer
import ProcessSupport
import Synchronization

/// `parley-bench crash`: `parley serve` as a child process on SQLite (or on the PostgreSQL
/// database `--database` names), clients sending in
/// several groups, the server killed with SIGKILL at random moments and restarted, `cycles`
/// times. Then every client converges and the run is checked (``CrashCheck``): each
/// acknowledged message is in the server's log and in every member's history at the seq it
/// was acknowledged with, no log has a gap, every member of a group holds the same messages
/// in the same order, none twice, and every text sent arrived. Exits 1 on any finding.
struct CrashBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash",
        abstract:
            "Kill the server with SIGKILL under load, restart it, repeat; then check nothing acknowledged was lost."
    )

    @Option(help: "Kill-and-restart cycles.") var cycles = 10
    @Option(help: "Client devices sending, each in one group.") var clients = 6
    @Option(help: "Groups the clients are spread over.") var groups = 2
    @Option(help: "Shortest time the server runs before it is killed, in ms.") var minUptime = 300
    @Option(help: "Longest time the server runs before it is killed, in ms.") var maxUptime = 2500
    @Option(help: "Seed for the kill moments (printed, so a run can be repeated).") var seed: UInt64?
    @Option(help: "The parley executable. Default: the one beside parley-bench.") var parley: String?
    @Option(
        help: ArgumentHelp(
            "An empty PostgreSQL database for the server: postgres://user@host:port/db. Default: SQLite.",
            discussion: "Use a fresh database: the run creates users and groups with fixed names."
        )
    )
    var database: String?
    @Flag(help: "Keep the work directory (server data, client homes, server output).") var keep = false
    @Flag(help: "One JSON object as the result.") var json = false
    /// Tests only: records one acknowledgement the server never gave, so a test sees the check fail.
    @Flag(help: .hidden) var injectPhantomAcknowledgement = false

    func validate() throws {
        guard cycles >= 1, clients >= 2, (1...clients / 2).contains(groups) else {
            throw ValidationError("Give at least one cycle, and at least two clients per group.")
        }
        guard minUptime >= 0, maxUptime >= minUptime else {
            throw ValidationError("--max-uptime must be at least --min-uptime, both 0 or more.")
        }
        if let database {
            guard DatabaseURL.isPostgres(database), (try? DatabaseURL(database)) != nil else {
                throw ValidationError("--database must be a postgres:// URL: postgres://user@host:port/database.")
            }
        }
    }

    func run() async throws {
        let seed = self.seed ?? UInt64.random(in: 0...UInt64.max)
        var random = SplitMix64(seed: seed)
        let work = NSTemporaryDirectory() + "parley-crash-" + UUID().uuidString
        let supervisor = try prepare(work: work)
        status("seed \(seed), work directory \(work), server output in \(supervisor.log)")
        let started = ContinuousClock.now
        var outcome = try await soak(supervisor, random: &random)
        outcome.seconds = (ContinuousClock.now - started) / .seconds(1)
        report(outcome, seed: seed)
        if !keep { try? FileManager.default.removeItem(atPath: work) }
        if !outcome.findings.isEmpty { throw ExitCode(1) }
    }

    /// The work directory, the server's config file and the supervisor for them.
    func prepare(work: String) throws -> ServerSupervisor {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        // Limits sized for a test: every client registers from this address and sends flat out.
        var config: [String: Any] = [
            "messages_per_second": 1000, "acks_per_second": 1000,
            "registrations_per_hour_per_address": 10_000, "registrations_per_minute": 10_000,
            "logins_per_minute_per_address": 10_000, "group_creations_per_hour": 10_000,
        ]
        // In the config file, not on the command line, so a password in the URL stays out of `ps`.
        if let database { config["database"] = database }
        let configFile = work + "/server.json"
        try Self.writeOwnerOnly(try JSONSerialization.data(withJSONObject: config), to: configFile)
        let executable = parley ?? Self.siblingExecutable("parley")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("There is no parley executable at \(executable); build it or pass --parley PATH.")
        }
        return ServerSupervisor(
            parley: executable,
            dataDirectory: work + "/server",
            configFile: configFile,
            port: try ServerSupervisor.freePort(),
            log: work + "/server.log"
        )
    }

    /// Writes a config file readable only by this user: it may hold the database's password.
    static func writeOwnerOnly(_ data: Data, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
    }

    static func siblingExecutable(_ name: String) -> String {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// The whole run: set up, load while killing, converge, check. Whatever fails, no server
    /// process is left behind.
    func soak(_ supervisor: ServerSupervisor, random: inout SplitMix64) async throws -> CrashOutcome {
        let server = ServerSlot()
        do {
            return try await soak(supervisor, server, random: &random)
        } catch {
            await server.current?.stop(with: SIGKILL)
            throw error
        }
    }

    private func soak(
        _ supervisor: ServerSupervisor,
        _ server: ServerSlot,
        random: inout SplitMix64
    ) async throws -> CrashOutcome {
        try await server.start(supervisor)
        let load = try await CrashLoad.start(
            url: supervisor.url,
            homes: (supervisor.dataDirectory as NSString).deletingLastPathComponent + "/homes",
            clients: clients,
            groups: groups,
            status: status
        )
        status("\(clients) clients sending in \(groups) groups; \(cycles) kill cycles")
        var kills = CrashOutcome.Kills()
        for cycle in 1...cycles {
            try await killAndRestart(server, supervisor, random: &random, kills: &kills)
            if cycle % 10 == 0 || cycle == cycles {
                status("cycle \(cycle): \(load.ledger.snapshot.acknowledged.count) acknowledged")
            }
        }
        let views = try await load.converge()
        await server.current?.stop(with: SIGTERM)
        server.current = nil
        return try check(load.ledger.snapshot, views: views, dataDirectory: supervisor.dataDirectory, kills: kills)
    }

    /// Reads what the stopped server stored and checks the run (``CrashCheck``).
    func check(
        _ ledger: (submitted: [CrashLedger.Submitted], acknowledged: [CrashLedger.Acknowledged], failures: Int),
        views: [CrashCheck.View],
        dataDirectory: String,
        kills: CrashOutcome.Kills
    ) throws -> CrashOutcome {
        var acknowledged = ledger.acknowledged
        if injectPhantomAcknowledgement, let last = acknowledged.last {
            acknowledged.append(.init(client: last.client, group: last.group, text: "phantom", seq: last.seq + 1))
        }
        let (log, groups) = try storedLog(dataDirectory: dataDirectory)
        let check = CrashCheck(
            submitted: ledger.submitted,
            acknowledged: acknowledged,
            views: views,
            log: log,
            groups: groups
        )
        return CrashOutcome(
            kills: kills,
            submitted: ledger.submitted.count,
            acknowledged: acknowledged.count,
            failures: ledger.failures,
            logged: groups.reduce(0) { $0 + Int(clamping: $1.lastSeq) },
            kept: log.count,
            findings: check.findings()
        )
    }

    /// What the stopped server stored: its log and each group's place in it.
    func storedLog(dataDirectory: String) throws -> ([LogInspection.Row], [LogInspection.GroupRow]) {
        if let database {
            let url = try DatabaseURL(database)
            return (try LogInspection.messages(database: url), try LogInspection.groups(database: url))
        }
        return (
            try LogInspection.messages(dataDirectory: dataDirectory),
            try LogInspection.groups(dataDirectory: dataDirectory)
        )
    }

    /// One cycle: the server runs a random time under load, is killed with SIGKILL and started
    /// again. One cycle in five also kills the new process a random moment into its start-up
    /// (opening and migrating the database), before it listens.
    func killAndRestart(
        _ server: ServerSlot,
        _ supervisor: ServerSupervisor,
        random: inout SplitMix64,
        kills: inout CrashOutcome.Kills
    ) async throws {
        try await Task.sleep(for: .milliseconds(Int.random(in: minUptime...maxUptime, using: &random)))
        await server.current?.stop(with: SIGKILL)
        server.current = nil
        kills.running += 1
        if Int.random(in: 0..<5, using: &random) == 0 {
            server.current = try supervisor.spawn()
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...400, using: &random)))
            await server.current?.stop(with: SIGKILL)
            server.current = nil
            kills.startingUp += 1
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &random)))
        try await server.start(supervisor)
    }

    func status(_ text: String) {
        if !json { print("· \(text)") }
        fflush(nil)
    }

    func report(_ outcome: CrashOutcome, seed: UInt64) {
        let values: [String: Any] = [
            "op": "crash", "storage": database == nil ? "sqlite" : "postgres", "cycles": cycles, "clients": clients,
            "groups": groups,
            "seed": "\(seed)", "kills_running": outcome.kills.running, "kills_starting": outcome.kills.startingUp,
            "submitted": outcome.submitted, "acknowledged": outcome.acknowledged, "logged": outcome.logged,
            "kept": outcome.kept,
            "client_failures": outcome.failures, "findings": outcome.findings.count,
            "seconds": (outcome.seconds * 10).rounded() / 10,
        ]
        if json {
            let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])) ?? Data()
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "  "))
        }
        for finding in outcome.findings.prefix(50) {
            FileHandle.standardError.write(Data("crash: \(finding)\n".utf8))
        }
        fflush(nil)
    }
}

/// What a crash run did and found.
struct CrashOutcome {
    struct Kills {
        /// Kills of a server that was listening and under load.
        var running = 0
        /// Kills of a server process still starting up.
        var startingUp = 0
    }

    var kills: Kills
    var submitted: Int
    var acknowledged: Int
    var failures: Int
    /// Entries the server's logs reached (the groups' last seqs, commits included).
    var logged: Int
    /// Entries still stored at the end: the server prunes what every member acknowledged.
    var kept: Int
    var findings: [CrashFinding]
    var seconds = 0.0
}

/// The server process of the moment, so that a failure anywhere can stop it.
final class ServerSlot: @unchecked Sendable {
    /// Only the run's one task touches it.
    var current: ChildProcess?

    func start(_ supervisor: ServerSupervisor) async throws {
        current = try supervisor.spawn()
        if let current { try await supervisor.waitUntilListening(current) }
    }
}

/// A small seeded generator (SplitMix64), so a run's kill moments can be repeated.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
