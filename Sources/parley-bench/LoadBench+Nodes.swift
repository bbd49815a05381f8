import ArgumentParser
import Foundation
import ParleyClient
import ProcessSupport

/// `parley-bench load --nodes N`: N `parley serve` child processes on one database (PostgreSQL
/// with `--database`; SQLite only for one node), sharing one certificate as docs/OPERATIONS.md
/// tells operators, each in its own process as nodes on one machine would run.
struct LoadNodes: Sendable {
    let supervisors: [ServerSupervisor]
    let processes: [ChildProcess]

    var urls: [String] { supervisors.map(\.url) }

    /// Starts the nodes one after another (the first creates the schema and the certificate the
    /// others are given) and waits until each listens.
    static func start(
        count: Int,
        database: String?,
        rate: Int,
        root: String,
        status: (String) -> Void
    ) async throws -> LoadNodes {
        let executable = CrashBench.siblingExecutable("parley")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("There is no parley executable at \(executable); build it (swift build).")
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var config = configuration(database: database, rate: rate)
        var supervisors: [ServerSupervisor] = []
        var processes: [ChildProcess] = []
        do {
            for index in 0..<count {
                if index == 1 {
                    // Node 1 wrote a self-signed pair into its data directory: every other node
                    // presents the same one, so a client pinned to one trusts all.
                    config["tls_certificate"] = supervisors[0].dataDirectory + "/tls-certificate.pem"
                    config["tls_private_key"] = supervisors[0].dataDirectory + "/tls-private-key.pem"
                }
                let file = root + "/node\(index).json"
                try CrashBench.writeOwnerOnly(try JSONSerialization.data(withJSONObject: config), to: file)
                let supervisor = ServerSupervisor(
                    parley: executable,
                    dataDirectory: root + "/node\(index)",
                    configFile: file,
                    port: try ServerSupervisor.freePort(),
                    log: root + "/node\(index).log"
                )
                let process = try supervisor.spawn()
                processes.append(process)
                supervisors.append(supervisor)
                try await supervisor.waitUntilListening(process)
                status("node \(index + 1) of \(count) listening at \(supervisor.url), output in \(supervisor.log)")
            }
        } catch {
            for process in processes { await process.stop(with: SIGKILL) }
            throw error
        }
        return LoadNodes(supervisors: supervisors, processes: processes)
    }

    /// Limits sized for the load: every client registers and logs in from this one address, and
    /// the idle connections are many devices of a few accounts.
    static func configuration(database: String?, rate: Int) -> [String: Any] {
        var config: [String: Any] = [
            "messages_per_second": min(100_000, max(1000, rate)), "acks_per_second": min(100_000, max(1000, rate)),
            "max_devices_per_account": LoadTarget.devicesPerAccount,
            "logins_per_minute_per_address": 1_000_000, "registrations_per_minute": 1_000_000,
            "registrations_per_hour_per_address": 1_000_000, "group_creations_per_hour": 1_000_000,
            "max_connections_per_address": 1_000_000,
        ]
        // In the config file, not on the command line, so a password in the URL stays out of `ps`.
        if let database { config["database"] = database }
        return config
    }

    func stop() async {
        for process in processes { await process.stop(with: SIGTERM) }
    }
}
