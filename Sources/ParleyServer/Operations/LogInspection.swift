import Foundation
import GRDB
import ParleyProtocol

/// A read-only look at what the server stores, for `parley demo` and operators:
/// each logged message's group, position, size and first bytes.
public enum LogInspection {
    public struct Row: Sendable {
        public var group: String
        public var seq: Int64
        public var bytes: Int
        public var prefix: String
    }

    /// A group's place in its log: the last seq assigned, and the seq through which every
    /// current member has acknowledged (what the server may prune, SQLiteStorage.prune).
    public struct GroupRow: Sendable {
        public var group: String
        public var lastSeq: Int64
        public var acknowledgedByAll: Int64
    }

    public static func groups(dataDirectory: String) throws -> [GroupRow] {
        let queue = try DatabaseQueue(path: (dataDirectory as NSString).appendingPathComponent("parley.sqlite"))
        return try queue.read { db in
            try GRDB.Row.fetchAll(
                db,
                sql: """
                    SELECT g.name, g.last_seq, COALESCE((SELECT MIN(ms.acked_seq) FROM memberships ms
                        WHERE ms.group_id = g.id AND ms.left_seq IS NULL), 0) AS acked
                    FROM groups g ORDER BY g.name
                    """
            ).map { GroupRow(group: $0["name"], lastSeq: $0["last_seq"], acknowledgedByAll: $0["acked"]) }
        }
    }

    public static func messages(dataDirectory: String) throws -> [Row] {
        let queue = try DatabaseQueue(path: (dataDirectory as NSString).appendingPathComponent("parley.sqlite"))
        return try queue.read { db in
            try GRDB.Row.fetchAll(
                db,
                sql:
                    "SELECT g.name, m.seq, m.data FROM messages m JOIN groups g ON g.id = m.group_id ORDER BY g.name, m.seq"
            ).map { row in
                let data = row["data"] as Data
                return Row(
                    group: row["name"],
                    seq: row["seq"],
                    bytes: data.count,
                    prefix: Hex.encode(data.prefix(24))
                )
            }
        }
    }
}
