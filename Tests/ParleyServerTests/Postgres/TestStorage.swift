import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import ParleyServer

/// The storages the tests run against. PostgreSQL needs a server: `PARLEY_TEST_POSTGRES` names
/// one (scripts/test starts a throwaway cluster and sets it); without it those tests fail, with
/// a sentence saying how to get one, never skip.
enum StorageKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The kind `TestServer` uses when a test does not say: `PARLEY_TEST_STORAGE` (`sqlite`, the
    /// default, or `postgres`: scripts/test runs the server suites once more on PostgreSQL that
    /// way), unless a suite runs another suite's test under `$current`.
    @TaskLocal static var current: StorageKind = fromEnvironment()

    private static func fromEnvironment() -> StorageKind {
        let name = ProcessInfo.processInfo.environment["PARLEY_TEST_STORAGE"] ?? ""
        guard !name.isEmpty else { return .sqlite }
        guard let kind = StorageKind(rawValue: name) else {
            fatalError("PARLEY_TEST_STORAGE is \(name); it must be sqlite or postgres")
        }
        return kind
    }

    /// A fresh, empty storage of this kind.
    func make() throws -> any ServerStorage {
        switch self {
        case .sqlite:
            let directory = NSTemporaryDirectory() + "parley-storage-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return try SQLiteStorage(path: directory + "/db.sqlite")
        case .postgres:
            return try PostgresStorage(url: try TestPostgres.freshDatabase(), maxConnections: 4)
        }
    }
}

enum TestPostgres {
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "PARLEY_TEST_POSTGRES is not set: these tests need PostgreSQL. Run them through scripts/test, "
                + "or `scripts/postgres run swift test --filter Postgres`, or set PARLEY_TEST_POSTGRES to "
                + "postgres://user@host:port/database of a server where that user may create databases."
        }
    }

    static func baseURL() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES"], !text.isEmpty else {
            throw Missing()
        }
        return try DatabaseURL(text)
    }

    /// A new, empty database on the test server: each test has its own, so tests run in parallel.
    static func freshDatabase() throws -> DatabaseURL {
        var url = try baseURL()
        let name = "parley_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let pool = try PostgresConnectionPool(url: url, maxConnections: 1)
        defer { pool.close() }
        // The name is ours (letters and digits), so it can stand in the SQL text.
        _ = try pool.withConnection { try $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)")) }
        url.database = name
        return url
    }

    /// `url` as a connection string (the test cluster has no password).
    static func string(_ url: DatabaseURL) -> String {
        "postgres://\(url.username)@\(url.host):\(url.port)/\(url.database)"
    }

    private static let byDirectory = Mutex<[String: String]>([:])

    /// The database of a test server's data directory: a fresh one the first time, the same one
    /// when the server restarts on that directory.
    static func database(for directory: String) throws -> String {
        if let known = byDirectory.withLock({ $0[directory] }) { return known }
        let url = string(try freshDatabase())
        byDirectory.withLock { $0[directory] = url }
        return url
    }
}

extension ServerStorage {
    /// Closes PostgreSQL's connections; SQLite's file closes with the last reference.
    func closeForTest() {
        (self as? PostgresStorage)?.close()
    }
}

/// Runs a PostgreSQL suite's tests on the storage threads, as a server on PostgreSQL runs its own
/// work: the tests call storage directly (blocking on the network, some on a held row lock for
/// `lock_timeout`), and on the cooperative pool's two threads that would stall every other test
/// running in the process.
struct StorageThreads: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(BlockingStorageExecutor.shared) { try await function() }
    }
}

extension Trait where Self == StorageThreads {
    static var storageThreads: Self { Self() }
}
