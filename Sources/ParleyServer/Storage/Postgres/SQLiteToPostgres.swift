import Foundation
import GRDB
import MLS
import PostgresNIO

/// `parley admin migrate`: copies an SQLite data directory's database into an empty PostgreSQL
/// database, ids included, in one PostgreSQL transaction read from one SQLite snapshot. Stop the
/// server first: what it writes meanwhile is not copied.
public enum SQLiteToPostgres {
    /// Rows copied per table, in copy order.
    public typealias Summary = [(table: String, rows: Int)]

    enum Kind { case int, optionalInt, bool, bytes, optionalBytes, text, optionalText }

    /// Every table and column, parents before children (foreign keys), as SQLite's migrator
    /// leaves them and PostgresSchema declares them. Names here are constants, never input.
    static let tables: [(name: String, columns: [(String, Kind)])] = [
        ("users", [("id", .int), ("name", .text), ("password_hash", .bytes), ("salt", .bytes), ("created_at", .int)]),
        ("retired_names", [("name", .text), ("removed_at", .int)]),
        ("retired_keys", [("signature_key", .bytes), ("removed_at", .int)]),
        ("device_lists", [("user_id", .int), ("identity_key", .bytes), ("version", .int), ("list", .bytes)]),
        ("devices", [("id", .int), ("user_id", .int), ("signature_key", .bytes)]),
        (
            "link_requests",
            [
                ("lookup_id", .text), ("user_id", .int), ("signature_key", .bytes), ("device_name", .text),
                ("hpke_key", .bytes), ("nonce", .bytes), ("expires_at", .int),
            ]
        ),
        (
            "link_bundles",
            [("user_id", .int), ("signature_key", .bytes), ("data", .bytes), ("expires_at", .int), ("fetched", .bool)]
        ),
        ("sessions", [("token_hash", .bytes), ("device_id", .int), ("expires_at", .int)]),
        (
            "key_packages",
            [
                ("id", .int), ("device_id", .int), ("reference", .bytes), ("data", .bytes), ("last_resort", .bool),
                ("claimed", .bool),
            ]
        ),
        (
            "groups",
            [
                ("id", .int), ("name", .text), ("mls_group_id", .bytes), ("state", .bytes), ("last_seq", .int),
                ("state_seq", .int), ("created_at", .int),
            ]
        ),
        (
            "messages",
            [
                ("group_id", .int), ("seq", .int), ("time", .int), ("sender_device", .int), ("data", .bytes),
                ("is_proposal", .bool), ("client_id", .optionalText),
            ]
        ),
        (
            "memberships",
            [
                ("group_id", .int), ("device_id", .int), ("joined_seq", .int), ("left_seq", .optionalInt),
                ("acked_seq", .int),
            ]
        ),
        (
            "welcomes",
            [("id", .int), ("group_id", .int), ("device_id", .int), ("seq", .int), ("time", .int), ("data", .bytes)]
        ),
        ("destroy_notices", [("id", .int), ("message", .bytes)]),
        (
            "notices",
            [
                ("id", .int), ("device_id", .int), ("group_name", .text), ("message", .optionalBytes),
                ("notice_id", .optionalInt),
            ]
        ),
    ]

    /// Tables whose ids PostgreSQL generates: their sequences continue after the copied ids.
    static let identities = ["users", "devices", "key_packages", "groups", "welcomes", "destroy_notices", "notices"]

    public static func copy(sqlitePath: String, to url: DatabaseURL) throws -> Summary {
        guard FileManager.default.fileExists(atPath: sqlitePath) else {
            throw PostgresStorageError.noSource(sqlitePath)
        }
        // Brings the SQLite file to its latest schema first, so every column above exists.
        _ = try SQLiteStorage(path: sqlitePath)
        var configuration = Configuration()
        configuration.readonly = true
        let source = try DatabaseQueue(path: sqlitePath, configuration: configuration)
        let target = try PostgresStorage(url: url, maxConnections: 1)
        defer { target.close() }
        return try source.read { sqlite in
            try target.write { db in
                let existing = try db.row("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM groups) AS n")
                guard try existing?.int("n") == 0 else { throw PostgresStorageError.targetNotEmpty }
                var summary: Summary = []
                for table in tables { summary.append((table.name, try copy(table.name, table.columns, sqlite, db))) }
                try setEpochs(db)
                for table in identities {
                    try db.query(
                        PostgresQuery(
                            unsafeSQL: """
                                SELECT setval(pg_get_serial_sequence('\(table)', 'id'), COALESCE(MAX(id), 0) + 1, false)
                                FROM \(table)
                                """
                        )
                    )
                }
                return summary
            }
        }
    }

    private static func copy(
        _ table: String,
        _ columns: [(String, Kind)],
        _ sqlite: Database,
        _ db: PostgresSession
    ) throws -> Int {
        let names = columns.map(\.0).joined(separator: ", ")
        let placeholders = (1...columns.count).map { "$\($0)" }.joined(separator: ", ")
        let insert = "INSERT INTO \(table) (\(names)) VALUES (\(placeholders))"
        let rows = try Row.fetchCursor(sqlite, sql: "SELECT \(names) FROM \(table)")
        var count = 0
        while let row = try rows.next() {
            var binds = PostgresBindings(capacity: columns.count)
            for (name, kind) in columns { try bind(row[name], kind, column: "\(table).\(name)", &binds) }
            try db.query(PostgresQuery(unsafeSQL: insert, binds: binds))
            count += 1
        }
        return count
    }

    /// One SQLite value as the PostgreSQL column's type; anything else is corruption, not a guess.
    private static func bind(
        _ value: DatabaseValue,
        _ kind: Kind,
        column: String,
        _ binds: inout PostgresBindings
    )
        throws
    {
        switch (kind, value.storage) {
        case (.int, .int64(let number)), (.optionalInt, .int64(let number)): binds.append(number)
        case (.bool, .int64(let number)): binds.append(number != 0)
        case (.bytes, .blob(let data)), (.optionalBytes, .blob(let data)): try binds.append(data)
        case (.text, .string(let text)), (.optionalText, .string(let text)):
            guard PostgresStorage.storable(text) else { throw StorageError.corrupt(column) }
            binds.append(text)
        case (.optionalInt, .null), (.optionalBytes, .null), (.optionalText, .null): binds.appendNull()
        default: throw StorageError.corrupt(column)
        }
    }

    /// SQLite keeps no epoch column: each group's is read from its stored public state.
    private static func setEpochs(_ db: PostgresSession) throws {
        for row in try db.rows("SELECT id, state FROM groups") {
            // A group a ReInit closed stores its closure ahead of the view (DeliveryShard+Successor).
            let (view, _) = try DeliveryShard.loadState(try row.bytes("state"), policy: GroupPolicy())
            guard let epoch = Int64(exactly: view.epoch) else { throw StorageError.outOfRange("epoch") }
            let id = try row.int("id")
            try db.query("UPDATE groups SET epoch = \(epoch) WHERE id = \(id)")
        }
    }
}
