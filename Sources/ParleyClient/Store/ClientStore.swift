import Foundation
import GRDB

/// One client home: a SQLite file holding this device's session, its sealed
/// private keys and group states, the decrypted history (sealed too), the
/// outbox and the pinned server certificate. In clear: the username and the
/// server URL (to prompt for the right password before anything is open), the
/// device id, the pinned certificate, KeyPackage references (hashes of public
/// KeyPackages) and the scrypt salt and cost.
final class ClientStore: Sendable {
    private let queue: DatabaseQueue

    init(directory: String) throws {
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // secure_delete: deleted rows are overwritten, not left in free pages.
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(
            path: (directory as NSString).appendingPathComponent("parley-client.sqlite"),
            configuration: configuration
        )
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                    CREATE TABLE key_packages (reference BLOB PRIMARY KEY, sealed BLOB NOT NULL);
                    CREATE TABLE groups (name TEXT PRIMARY KEY, sealed BLOB NOT NULL, last_seq INTEGER NOT NULL, needs_update INTEGER NOT NULL DEFAULT 0);
                    CREATE TABLE history (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT NOT NULL, seq INTEGER NOT NULL,
                        time INTEGER NOT NULL, sender TEXT NOT NULL, kind TEXT NOT NULL, sealed BLOB NOT NULL);
                    CREATE INDEX history_by_group ON history (group_name, seq);
                    CREATE TABLE outbox (id TEXT PRIMARY KEY, group_name TEXT NOT NULL, sealed BLOB NOT NULL, created INTEGER NOT NULL);
                    CREATE TABLE known_keys (username TEXT PRIMARY KEY, keys BLOB NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v2") { db in
            // Sealed rows named by keyed hashes; the v1 tables are emptied when
            // the home is next unlocked (the migration needs the password).
            try db.execute(
                sql: """
                    CREATE TABLE group_records (id BLOB PRIMARY KEY, sealed BLOB NOT NULL);
                    CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, group_id BLOB NOT NULL, sealed BLOB NOT NULL);
                    CREATE INDEX entries_by_group ON entries (group_id, id);
                    CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, group_id BLOB NOT NULL, sealed BLOB NOT NULL);
                    """
            )
        }
        try migrator.migrate(queue)
    }

    // MARK: Settings

    /// What the settings table holds, one row each. In clear: the username and server (to
    /// ask for the right password), the device id, the pinned certificate, and the scrypt
    /// salt and cost; sealed: the check value, the session token and the signature key.
    enum Setting: String, CaseIterable {
        case username, server, device, certificate, salt, kdf, check, token
        case signaturePrivate = "signature_private"
        case signaturePublic = "signature_public"
        /// The account's identity key seed (sealed), on devices that hold it.
        case identityPrivate = "identity_private"
        /// Sealed: a link in progress on a new device (Linking/PendingLink.swift).
        case link
    }

    func setting(_ setting: Setting) throws -> [UInt8]? {
        let key = setting.rawValue
        return try queue.read { db in
            try Data.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]).map { [UInt8]($0) }
        }
    }

    func string(_ setting: Setting) throws -> String? {
        try self.setting(setting).map { String(decoding: $0, as: UTF8.self) }
    }

    func set(_ setting: Setting, _ value: [UInt8]?) throws {
        let key = setting.rawValue
        try queue.write { db in
            if let value {
                try db.execute(
                    sql:
                        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    arguments: [key, Data(value)]
                )
            } else {
                try db.execute(sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
            }
        }
    }

    func set(_ setting: Setting, string: String?) throws { try set(setting, string.map { Array($0.utf8) }) }

    // MARK: KeyPackages

    func storeKeyPackage(reference: [UInt8], sealed: [UInt8]) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO key_packages (reference, sealed) VALUES (?, ?)",
                arguments: [Data(reference), Data(sealed)]
            )
        }
    }

    func keyPackage(reference: [UInt8]) throws -> [UInt8]? {
        try queue.read { db in
            try Data.fetchOne(
                db,
                sql: "SELECT sealed FROM key_packages WHERE reference = ?",
                arguments: [Data(reference)]
            ).map { [UInt8]($0) }
        }
    }

    func deleteKeyPackage(reference: [UInt8]) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM key_packages WHERE reference = ?", arguments: [Data(reference)])
        }
    }

    // MARK: Groups, history, outbox (v2: names and metadata sealed)
    //
    // Rows are named by `SealingKey.identifier`, an HMAC of the group's name,
    // so the file shows neither group names nor who wrote what when: the
    // name, seq, time, sender and text of every line live in its sealed blob.
    // History rows are kept in insertion order, which is seq order (frames
    // are applied in server order); readers sort the opened lines by seq.

    func groupRecords() throws -> [(id: [UInt8], sealed: [UInt8])] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, sealed FROM group_records").map {
                ([UInt8]($0["id"] as Data), [UInt8]($0["sealed"] as Data))
            }
        }
    }

    /// Saves a group's record together with what its processing produced, in one transaction.
    func save(
        group id: [UInt8],
        sealed: [UInt8],
        lines: [[UInt8]] = [],
        sentOutboxID: Int64? = nil,
        usedKeyPackage: [UInt8]? = nil
    ) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO group_records (id, sealed) VALUES (?, ?)",
                arguments: [Data(id), Data(sealed)]
            )
            for line in lines {
                try db.execute(
                    sql: "INSERT INTO entries (group_id, sealed) VALUES (?, ?)",
                    arguments: [Data(id), Data(line)]
                )
            }
            if let sentOutboxID { try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [sentOutboxID]) }
            if let usedKeyPackage {
                try db.execute(sql: "DELETE FROM key_packages WHERE reference = ?", arguments: [Data(usedKeyPackage)])
            }
        }
    }

    /// Forgets a group's state and queued messages; its history stays readable.
    func deleteGroup(_ id: [UInt8]) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM group_records WHERE id = ?", arguments: [Data(id)])
            try db.execute(sql: "DELETE FROM queue WHERE group_id = ?", arguments: [Data(id)])
        }
    }

    func addHistory(group id: [UInt8], _ sealed: [UInt8]) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO entries (group_id, sealed) VALUES (?, ?)",
                arguments: [Data(id), Data(sealed)]
            )
        }
    }

    func history(group id: [UInt8]) throws -> [[UInt8]] {
        try queue.read { db in
            try Data.fetchAll(
                db,
                sql: "SELECT sealed FROM entries WHERE group_id = ? ORDER BY id",
                arguments: [Data(id)]
            ).map { [UInt8]($0) }
        }
    }

    @discardableResult
    func enqueue(group id: [UInt8], sealed: [UInt8]) throws -> Int64 {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO queue (group_id, sealed) VALUES (?, ?)",
                arguments: [Data(id), Data(sealed)]
            )
            return db.lastInsertedRowID
        }
    }

    /// Queued messages, oldest first.
    func outbox() throws -> [(id: Int64, group: [UInt8], sealed: [UInt8])] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, group_id, sealed FROM queue ORDER BY id").map {
                ($0["id"], [UInt8]($0["group_id"] as Data), [UInt8]($0["sealed"] as Data))
            }
        }
    }

    func updateOutbox(_ id: Int64, sealed: [UInt8]) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE queue SET sealed = ? WHERE id = ?", arguments: [Data(sealed), id])
        }
    }

    /// Removes a queued message (parked) and records why in its group's history.
    func park(_ id: Int64, group: [UInt8], line: [UInt8]) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [id])
            try db.execute(
                sql: "INSERT INTO entries (group_id, sealed) VALUES (?, ?)",
                arguments: [Data(group), Data(line)]
            )
        }
    }

    // MARK: Homes from before v2

    /// What a v1 home kept in clear next to its sealed blobs.
    struct Legacy {
        var groups: [(name: String, sealed: [UInt8], lastSeq: UInt64, needsUpdate: Bool)] = []
        var history: [(group: String, seq: UInt64, time: UInt64, sender: String, kind: String, sealed: [UInt8])] = []
        var outbox: [(id: String, group: String, sealed: [UInt8])] = []
        var knownKeys: [(user: String, keys: [UInt8])] = []
        var keyPackages: [(reference: [UInt8], sealed: [UInt8])] = []
        var settings: [String: [UInt8]] = [:]
    }

    func legacy() throws -> Legacy {
        try queue.read { db in
            var legacy = Legacy()
            legacy.groups = try Row.fetchAll(db, sql: "SELECT * FROM groups").map {
                (
                    $0["name"], [UInt8]($0["sealed"] as Data), UInt64(clamping: $0["last_seq"] as Int64),
                    ($0["needs_update"] as Int64) == 1
                )
            }
            legacy.history = try Row.fetchAll(db, sql: "SELECT * FROM history ORDER BY id").map {
                (
                    $0["group_name"], UInt64(clamping: $0["seq"] as Int64), UInt64(clamping: $0["time"] as Int64),
                    $0["sender"], $0["kind"],
                    [UInt8]($0["sealed"] as Data)
                )
            }
            legacy.outbox = try Row.fetchAll(db, sql: "SELECT * FROM outbox ORDER BY created").map {
                ($0["id"], $0["group_name"], [UInt8]($0["sealed"] as Data))
            }
            legacy.knownKeys = try Row.fetchAll(db, sql: "SELECT * FROM known_keys").map {
                ($0["username"], [UInt8]($0["keys"] as Data))
            }
            legacy.keyPackages = try Row.fetchAll(db, sql: "SELECT * FROM key_packages").map {
                ([UInt8]($0["reference"] as Data), [UInt8]($0["sealed"] as Data))
            }
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM settings") {
                legacy.settings[row["key"]] = [UInt8](row["value"] as Data)
            }
            return legacy
        }
    }

    /// What a v1 home becomes: every row re-sealed under the new key.
    struct Migrated {
        var groups: [(id: [UInt8], sealed: [UInt8])] = []
        var history: [(group: [UInt8], sealed: [UInt8])] = []
        var outbox: [(group: [UInt8], sealed: [UInt8])] = []
        var knownKeys: [(id: [UInt8], keys: [UInt8])] = []
        var keyPackages: [(reference: [UInt8], sealed: [UInt8])] = []
        /// Settings to write (nil deletes).
        var settings: [String: [UInt8]?] = [:]
    }

    /// Replaces a v1 home's contents by `migrated` in one transaction, then
    /// compacts the file so the old clear-text rows leave no trace in it.
    func replaceLegacy(with migrated: Migrated) throws {
        try queue.write { db in
            for table in ["groups", "history", "outbox", "known_keys", "key_packages"] {
                try db.execute(sql: "DELETE FROM \(table)")
            }
            // Every re-sealed row is two blobs: one insert per table, in the tables' order.
            let rows: [(table: String, columns: String, rows: [(Data, Data)])] = [
                ("group_records", "id, sealed", migrated.groups.map { (Data($0.id), Data($0.sealed)) }),
                ("entries", "group_id, sealed", migrated.history.map { (Data($0.group), Data($0.sealed)) }),
                ("queue", "group_id, sealed", migrated.outbox.map { (Data($0.group), Data($0.sealed)) }),
                ("known_keys", "username, keys", migrated.knownKeys.map { (Data($0.id), Data($0.keys)) }),
                (
                    "key_packages", "reference, sealed",
                    migrated.keyPackages.map { (Data($0.reference), Data($0.sealed)) }
                ),
            ]
            for (table, columns, values) in rows {
                for (first, second) in values {
                    try db.execute(sql: "INSERT INTO \(table) (\(columns)) VALUES (?, ?)", arguments: [first, second])
                }
            }
            for (key, value) in migrated.settings {
                if let value {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                        arguments: [key, Data(value)]
                    )
                } else {
                    try db.execute(sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
                }
            }
        }
        try queue.vacuum()
    }

    // MARK: Safety numbers

    /// `user` is the row identifier of the user's name (v2), never the name.
    func knownKeys(_ user: [UInt8]) throws -> [UInt8]? {
        try queue.read { db in
            try Data.fetchOne(db, sql: "SELECT keys FROM known_keys WHERE username = ?", arguments: [Data(user)]).map {
                [UInt8]($0)
            }
        }
    }

    func setKnownKeys(_ user: [UInt8], _ keys: [UInt8]) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO known_keys (username, keys) VALUES (?, ?)",
                arguments: [Data(user), Data(keys)]
            )
        }
    }
}
