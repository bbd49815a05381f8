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
