import Foundation
import ParleyProtocol
import PostgresNIO

/// The same read-only look at a PostgreSQL database (`parley-bench crash --database`).
extension LogInspection {
    public static func groups(database: DatabaseURL) throws -> [GroupRow] {
        try withPool(database) { session in
            try session.rows(
                """
                SELECT g.name, g.last_seq, COALESCE((SELECT MIN(ms.acked_seq) FROM memberships ms
                    WHERE ms.group_id = g.id AND ms.left_seq IS NULL), 0) AS acked
                FROM groups g ORDER BY g.name
                """
            ).map {
                GroupRow(
                    group: try $0.text("name"),
                    lastSeq: try $0.int("last_seq"),
                    acknowledgedByAll: try $0.int("acked")
                )
            }
        }
    }

    public static func messages(database: DatabaseURL) throws -> [Row] {
        try withPool(database) { session in
            try session.rows(
                "SELECT g.name, m.seq, m.data FROM messages m JOIN groups g ON g.id = m.group_id ORDER BY g.name, m.seq"
            ).map { row in
                let data = try row.bytes("data")
                return Row(
                    group: try row.text("name"),
                    seq: try row.int("seq"),
                    bytes: data.count,
                    prefix: Hex.encode(data.prefix(24))
                )
            }
        }
    }

    private static func withPool<T>(_ database: DatabaseURL, _ body: (PostgresSession) throws -> T) throws -> T {
        let pool = try PostgresConnectionPool(url: database, maxConnections: 1)
        defer { pool.close() }
        return try pool.withConnection(body)
    }
}
