import Foundation
import GRDB
import PostgresNIO
import Synchronization

@testable import ParleyServer

/// What tests do to a test server's database from outside it, on either storage: another process
/// (`parley admin`) on SQLite, another node on PostgreSQL.
extension TestServer {
    /// Runs `body` on a second storage of the server's database, with connections of its own.
    func withSecondStorage<T>(_ body: (any ServerStorage) throws -> T) throws -> T {
        let storage: any ServerStorage =
            if let database = server.configuration.database {
                try PostgresStorage(url: try DatabaseURL(database), maxConnections: 1)
            } else {
                try SQLiteStorage(path: server.configuration.databasePath)
            }
        defer { storage.closeForTest() }
        return try body(storage)
    }

    /// The single integer a `SELECT COUNT(*) AS n …` in SQL both storages read alike returns.
    func count(_ sql: String) throws -> Int {
        guard let database = server.configuration.database else {
            return try DatabaseQueue(path: server.configuration.databasePath).read { db in
                try Int.fetchOne(db, sql: sql) ?? -1
            }
        }
        let pool = try PostgresConnectionPool(url: try DatabaseURL(database), maxConnections: 1)
        defer { pool.close() }
        return try pool.withConnection { session in
            Int(try session.row(PostgresQuery(unsafeSQL: sql))?.int("n") ?? -1)
        }
    }
}

extension TestServer {
    /// `count` server nodes on one fresh PostgreSQL database (`configure` sees each node's
    /// configuration after the database is set), stopped however `body` ends.
    static func withNodes(
        _ count: Int,
        configure: @escaping (inout ServerConfiguration) -> Void = { _ in },
        _ body: (_ nodes: [TestServer], _ database: String) async throws -> Void
    ) async throws {
        let database = TestPostgres.string(try TestPostgres.freshDatabase())
        var nodes: [TestServer] = []
        do {
            for _ in 0..<count {
                nodes.append(
                    try await TestServer.start(configure: {
                        $0.database = database
                        configure(&$0)
                    })
                )
            }
            try await body(nodes, database)
        } catch {
            for node in nodes { try? await node.stop() }
            throw error
        }
        for node in nodes { try await node.stop() }
    }
}

/// Holds the server's log writer back, as a long transaction elsewhere would, so accepted
/// messages stay in flight: SQLite's write lock from a second connection (the writer's busy
/// timeout is 10 s), or on PostgreSQL the `messages` table in EXCLUSIVE mode, which blocks the
/// writer's row locks and inserts but not reads (its `lock_timeout` is 5 s). Tests let go well
/// before either.
final class WriteLock: Sendable {
    private let release = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(holding server: TestServer) throws {
        let taken = DispatchSemaphore(value: 0)
        let (release, done) = (release, done)
        let hold: @Sendable () throws -> Void
        if let database = server.server.configuration.database {
            let pool = try PostgresConnectionPool(url: try DatabaseURL(database), maxConnections: 1)
            hold = {
                defer { pool.close() }
                try pool.withConnection { session in
                    try session.transaction { session in
                        try session.query("LOCK TABLE messages IN EXCLUSIVE MODE")
                        taken.signal()
                        release.wait()
                    }
                }
            }
        } else {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: server.server.configuration.databasePath, configuration: configuration)
            hold = {
                try queue.inTransaction(.immediate) { _ in
                    taken.signal()
                    release.wait()
                    return .commit
                }
            }
        }
        let failure = Mutex<String?>(nil)
        Thread {
            do {
                try hold()
            } catch {
                failure.withLock { $0 = "\(error)" }
                taken.signal()
            }
            done.signal()
        }.start()
        taken.wait()
        if let failure = failure.withLock({ $0 }) { throw NotTaken(reason: failure) }
    }

    struct NotTaken: Error { let reason: String }

    func unlock() {
        release.signal()
        done.wait()
    }
}
