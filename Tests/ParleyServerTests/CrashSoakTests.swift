import Foundation
import Testing

/// Runs `parley-bench crash` for real: `parley serve` as a child process, SIGKILL-ed under
/// load and restarted, then the acknowledged messages and every client's history checked.
/// A few cycles here; BENCHMARKS.md ("Crash safety") records a run of 50.
@Suite(.serialized) struct CrashSoakTests {
    static let products = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug")

    /// Runs parley-bench with `arguments`; returns its exit status and its one JSON result line.
    static func bench(_ arguments: [String]) throws -> (status: Int32, result: [String: Any]) {
        let binary = products.appendingPathComponent("parley-bench").path
        try #require(
            FileManager.default.isExecutableFile(atPath: binary),
            "build the executables first (`swift build`); this test runs \(binary)"
        )
        let output = NSTemporaryDirectory() + "crash-soak-" + UUID().uuidString
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["crash", "--json"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try process.run()
        // A hung run fails the test instead of hanging it.
        let deadline = Date().addingTimeInterval(600)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("parley-bench crash did not finish within 10 minutes")
        }
        process.waitUntilExit()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let line = text.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        return (process.terminationStatus, result)
    }

    @Test func killingTheServerUnderLoadLosesNothingAcknowledged() throws {
        let (status, result) = try Self.bench(["--cycles", "3", "--clients", "3", "--groups", "1", "--seed", "7"])
        #expect(status == 0)
        #expect(result["findings"] as? Int == 0)
        #expect(result["kills_running"] as? Int == 3)
        // The load really ran across the kills: messages were acknowledged and sends or syncs
        // failed while the server was down.
        #expect((result["acknowledged"] as? Int ?? 0) > 5)
        #expect((result["client_failures"] as? Int ?? 0) > 0)
        #expect((result["logged"] as? Int ?? 0) >= (result["acknowledged"] as? Int ?? .max))
        #expect((result["kept"] as? Int ?? .max) <= (result["logged"] as? Int ?? 0))
    }

    @Test func theCheckFailsTheRunWhenAnAcknowledgedMessageIsMissing() throws {
        // An acknowledgement the server never gave stands for a message lost after its ack.
        let (status, result) = try Self.bench([
            "--cycles", "1", "--clients", "2", "--groups", "1", "--inject-phantom-acknowledgement",
        ])
        #expect(status == 1)
        #expect((result["findings"] as? Int ?? 0) >= 1)
    }
}

/// The same run with the server on PostgreSQL (a fresh database): a SIGKILL-ed node's open
/// transactions are rolled back by the database, and what it acknowledged is committed. The
/// check reads the log from the database (an empty read would find every acknowledgement
/// missing); CrashSoakTests shows the check failing a run. BENCHMARKS.md ("Crash safety")
/// records a run of 50.
@Suite(.serialized, .storageThreads) struct PostgresCrashSoakTests {
    @Test func killingTheServerOnPostgreSQLUnderLoadLosesNothingAcknowledged() throws {
        let database = TestPostgres.string(try TestPostgres.freshDatabase())
        let (status, result) = try CrashSoakTests.bench([
            "--cycles", "3", "--clients", "3", "--groups", "1", "--seed", "7", "--database", database,
        ])
        #expect(status == 0)
        #expect(result["storage"] as? String == "postgres")
        #expect(result["findings"] as? Int == 0)
        #expect(result["kills_running"] as? Int == 3)
        #expect((result["acknowledged"] as? Int ?? 0) > 5)
        #expect((result["client_failures"] as? Int ?? 0) > 0)
        #expect((result["logged"] as? Int ?? 0) >= (result["acknowledged"] as? Int ?? .max))
    }
}
