import Foundation
import GRDB

/// One client home: a SQLite file holding this device's session, its sealed
/// private keys and group states, the decrypted history (sealed too), the
/// outbox and the pinned server certificate.
final class ClientStore: Sendable {
    private let queue: DatabaseQueue

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: (directory as NSString).appendingPathComponent("parley-client.sqlite"), configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                CREATE TABLE key_packages (reference BLOB PRIMARY KEY, sealed BLOB NOT NULL);
                CREATE TABLE groups (name TEXT PRIMARY KEY, sealed BLOB NOT NULL, last_seq INTEGER NOT NULL, needs_update INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT NOT NULL, seq INTEGER NOT NULL,
                    time INTEGER NOT NULL, sender TEXT NOT NULL, kind TEXT NOT NULL, sealed BLOB NOT NULL);
                CREATE INDEX history_by_group ON history (group_name, seq);
                CREATE TABLE outbox (id TEXT PRIMARY KEY, group_name TEXT NOT NULL, sealed BLOB NOT NULL, created INTEGER NOT NULL);
                CREATE TABLE known_keys (username TEXT PRIMARY KEY, keys BLOB NOT NULL);
                """)
        }
        try migrator.migrate(queue)
    }

    // MARK: Settings

    func setting(_ key: String) throws -> [UInt8]? {
        try queue.read { db in try Data.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]).map { [UInt8]($0) } }
    }

    func string(_ key: String) throws -> String? { try setting(key).map { String(decoding: $0, as: UTF8.self) } }

    func set(_ key: String, _ value: [UInt8]?) throws {
        try queue.write { db in
            if let value {
                try db.execute(sql: "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", arguments: [key, Data(value)])
            } else {
                try db.execute(sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
            }
        }
    }

    func set(_ key: String, string: String?) throws { try set(key, string.map { Array($0.utf8) }) }

    // MARK: KeyPackages

    func storeKeyPackage(reference: [UInt8], sealed: [UInt8]) throws {
        try queue.write { db in try db.execute(sql: "INSERT OR REPLACE INTO key_packages (reference, sealed) VALUES (?, ?)", arguments: [Data(reference), Data(sealed)]) }
    }

    func keyPackage(reference: [UInt8]) throws -> [UInt8]? {
        try queue.read { db in try Data.fetchOne(db, sql: "SELECT sealed FROM key_packages WHERE reference = ?", arguments: [Data(reference)]).map { [UInt8]($0) } }
    }

    func deleteKeyPackage(reference: [UInt8]) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM key_packages WHERE reference = ?", arguments: [Data(reference)]) }
    }

    // MARK: Groups and history

    struct StoredGroup {
        var name: String
        var sealed: [UInt8]
        var lastSeq: UInt64
        var needsUpdate: Bool
    }

    func groups() throws -> [StoredGroup] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM groups ORDER BY name").map {
                StoredGroup(name: $0["name"], sealed: [UInt8]($0["sealed"] as Data), lastSeq: UInt64($0["last_seq"] as Int64), needsUpdate: ($0["needs_update"] as Int64) == 1)
            }
        }
    }

    struct HistoryLine {
        var seq: UInt64
        var time: UInt64
        var sender: String
        var kind: String
        var sealed: [UInt8]
    }

    /// Saves a group's state together with what its processing produced.
    func save(group name: String, sealed: [UInt8], lastSeq: UInt64, needsUpdate: Bool? = nil, lines: [HistoryLine] = [], sentID: String? = nil) throws {
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO groups (name, sealed, last_seq) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, last_seq = excluded.last_seq
                """, arguments: [name, Data(sealed), Int64(lastSeq)])
            if let needsUpdate {
                try db.execute(sql: "UPDATE groups SET needs_update = ? WHERE name = ?", arguments: [needsUpdate ? 1 : 0, name])
            }
            for line in lines {
                try db.execute(sql: "INSERT INTO history (group_name, seq, time, sender, kind, sealed) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [name, Int64(line.seq), Int64(line.time), line.sender, line.kind, Data(line.sealed)])
            }
            if let sentID { try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [sentID]) }
        }
    }

    func deleteGroup(_ name: String) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM groups WHERE name = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM outbox WHERE group_name = ?", arguments: [name])
        }
    }

    func addHistory(group: String, _ line: HistoryLine) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT INTO history (group_name, seq, time, sender, kind, sealed) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [group, Int64(line.seq), Int64(line.time), line.sender, line.kind, Data(line.sealed)])
        }
    }

    func history(group: String, afterID: Int64 = 0) throws -> [(id: Int64, line: HistoryLine)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM history WHERE group_name = ? AND id > ? ORDER BY seq, id", arguments: [group, afterID]).map {
                ($0["id"], HistoryLine(seq: UInt64($0["seq"] as Int64), time: UInt64($0["time"] as Int64), sender: $0["sender"], kind: $0["kind"], sealed: [UInt8]($0["sealed"] as Data)))
            }
        }
    }

    // MARK: Outbox

    func enqueue(id: String, group: String, sealed: [UInt8]) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT INTO outbox (id, group_name, sealed, created) VALUES (?, ?, ?, ?)",
                           arguments: [id, group, Data(sealed), Int64(Date().timeIntervalSince1970 * 1000)])
        }
    }

    func outbox() throws -> [(id: String, group: String, sealed: [UInt8])] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox ORDER BY created").map { ($0["id"], $0["group_name"], [UInt8]($0["sealed"] as Data)) }
        }
    }

    // MARK: Safety numbers

    func knownKeys(_ user: String) throws -> [UInt8]? {
        try queue.read { db in try Data.fetchOne(db, sql: "SELECT keys FROM known_keys WHERE username = ?", arguments: [user]).map { [UInt8]($0) } }
    }

    func setKnownKeys(_ user: String, _ keys: [UInt8]) throws {
        try queue.write { db in try db.execute(sql: "INSERT OR REPLACE INTO known_keys (username, keys) VALUES (?, ?)", arguments: [user, Data(keys)]) }
    }
}
