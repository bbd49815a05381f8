import Foundation
import GRDB

/// The default storage: one SQLite file in WAL mode with `synchronous = FULL`,
/// so a committed transaction survives a crash or power loss before the
/// server acknowledges anything. SQL is kept to what PostgreSQL also accepts.
public final class SQLiteStorage: ServerStorage {
    /// Internal, not private: the linking tables' methods live in SQLiteStorage+Linking.swift.
    let pool: DatabasePool

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                        password_hash BLOB NOT NULL, salt BLOB NOT NULL, created_at INTEGER NOT NULL);
                    CREATE TABLE devices (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        signature_key BLOB NOT NULL UNIQUE);
                    CREATE TABLE sessions (
                        token_hash BLOB PRIMARY KEY,
                        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                        expires_at INTEGER NOT NULL);
                    CREATE TABLE key_packages (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                        reference BLOB NOT NULL UNIQUE, data BLOB NOT NULL,
                        last_resort INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0);
                    CREATE TABLE groups (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                        mls_group_id BLOB NOT NULL UNIQUE, state BLOB NOT NULL,
                        last_seq INTEGER NOT NULL, created_at INTEGER NOT NULL);
                    CREATE TABLE messages (
                        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
                        seq INTEGER NOT NULL, time INTEGER NOT NULL,
                        sender_device INTEGER NOT NULL, data BLOB NOT NULL,
                        PRIMARY KEY (group_id, seq));
                    CREATE TABLE memberships (
                        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
                        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                        joined_seq INTEGER NOT NULL, left_seq INTEGER, acked_seq INTEGER NOT NULL,
                        PRIMARY KEY (group_id, device_id));
                    CREATE TABLE welcomes (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
                        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                        seq INTEGER NOT NULL, time INTEGER NOT NULL, data BLOB NOT NULL);
                    CREATE TABLE notices (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
                        group_name TEXT NOT NULL);
                    """
            )
        }
        // The stored group state is written on commits only (finding 8): remember which seq it
        // reflects, so proposals sent after it are re-derived from the log. Older rows were
        // written on every handshake message, so their state reflects last_seq.
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE groups ADD COLUMN state_seq INTEGER NOT NULL DEFAULT 0;
                    UPDATE groups SET state_seq = last_seq;
                    ALTER TABLE messages ADD COLUMN is_proposal INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX messages_sender ON messages(sender_device);
                    """
            )
        }
        migrator.registerMigration("accounts-tombstones") { db in
            // A removed account's name and device keys stay here forever (finding 16): a
            // newcomer can never take over the name, nor log in with the old devices' keys.
            try db.execute(
                sql: """
                    CREATE TABLE retired_names (name TEXT PRIMARY KEY, removed_at INTEGER NOT NULL);
                    CREATE TABLE retired_keys (signature_key BLOB PRIMARY KEY, removed_at INTEGER NOT NULL);
                    """
            )
        }
        // The sender's copy is delivered and acknowledged like any other (PROTOCOL.md, "Echo"):
        // its client id is kept with it, so a replay carries it and a resend of the same id is
        // answered with the stored message instead of a second log entry. Unique per sending
        // device: two devices' ids never collide.
        migrator.registerMigration("messages-client-id") { db in
            try db.execute(
                sql: """
                    ALTER TABLE messages ADD COLUMN client_id TEXT;
                    CREATE UNIQUE INDEX messages_client_id ON messages(group_id, sender_device, client_id)
                        WHERE client_id IS NOT NULL;
                    """
            )
        }
        // The admin's signed destroy message, kept with each offline member's notice so that
        // member can verify the destroy itself (PROTOCOL.md, `groupDestroyed`).
        migrator.registerMigration("notices-destroy-message") { db in
            try db.execute(sql: "ALTER TABLE notices ADD COLUMN message BLOB")
        }
        // The signed device directory (docs/PROTOCOL.md, "Device directory"): per account its
        // identity key, set once and never changed, and the latest signed device list.
        migrator.registerMigration("device-directory") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device_lists (
                        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                        identity_key BLOB NOT NULL, version INTEGER NOT NULL, list BLOB NOT NULL);
                    """
            )
        }
        // The destroy message is kept once per destroyed group, not once per member device
        // (review s5 M3); each device's notice refers to it. Older notices keep their own copy.
        migrator.registerMigration("notices-shared-destroy-message") { db in
            try db.execute(
                sql: """
                    CREATE TABLE destroy_notices (id INTEGER PRIMARY KEY AUTOINCREMENT, message BLOB NOT NULL);
                    ALTER TABLE notices ADD COLUMN notice_id INTEGER REFERENCES destroy_notices(id);
                    """
            )
        }
        // Linking a device (PROTOCOL.md, "Linking a device"): pending requests expire after minutes;
        // a sealed history bundle waits for its one device, and goes with it. Both are keyed by
        // account and signature key: the new device posts before it has a device row (it may not
        // log in until the account's signed list names it).
        migrator.registerMigration("link-requests") { db in
            try db.execute(
                sql: """
                    CREATE TABLE link_requests (
                        lookup_id TEXT PRIMARY KEY,
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        signature_key BLOB NOT NULL,
                        device_name TEXT NOT NULL, hpke_key BLOB NOT NULL, nonce BLOB NOT NULL,
                        expires_at INTEGER NOT NULL,
                        UNIQUE (user_id, signature_key));
                    CREATE TABLE link_bundles (
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        signature_key BLOB NOT NULL,
                        data BLOB NOT NULL, expires_at INTEGER NOT NULL,
                        PRIMARY KEY (user_id, signature_key));
                    """
            )
        }
        // A bundle lives only the request's lifetime until its device first fetches it (it never
        // logged in: nobody will), then a day (docs/PROTOCOL.md, "Linking a device").
        migrator.registerMigration("link-bundles-fetched") { db in
            try db.execute(sql: "ALTER TABLE link_bundles ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0")
        }
        // Rate limits every node shares (SQLiteStorage+RateLimits.swift): a token bucket per key,
        // as the moment it is full again; the hourly sweep deletes rows past it.
        migrator.registerMigration("rate-limits") { db in
            try db.execute(
                sql: """
                    CREATE TABLE rate_limits (key BLOB PRIMARY KEY, tat INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE INDEX rate_limits_tat ON rate_limits(tat);
                    """
            )
        }
        return migrator
    }

    /// A non-negative integer column as UInt64: a negative value on disk is corruption, not a trap.
    static func unsigned(_ row: Row, _ column: String) throws -> UInt64 {
        guard let value = UInt64(exactly: row[column] as Int64) else { throw StorageError.corrupt(column) }
        return value
    }

    /// A seq or time bound for SQL: beyond Int64.max nothing is stored, so clamping selects the same rows.
    static func bound(_ value: UInt64) -> Int64 { Int64(clamping: value) }

    // MARK: Device directory

    public func deviceList(ofUser userID: Int64) throws -> StoredDeviceList? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT identity_key, version, list FROM device_lists WHERE user_id = ?",
                    arguments: [userID]
                )
            else { return nil }
            return StoredDeviceList(
                identityKey: [UInt8](row["identity_key"] as Data),
                version: try Self.unsigned(row, "version"),
                data: [UInt8](row["list"] as Data)
            )
        }
    }

    public func storeDeviceList(userID: Int64, _ list: StoredDeviceList) throws {
        guard let version = Int64(exactly: list.version) else { throw StorageError.conflict("version out of range") }
        try pool.write { db in
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT identity_key, version FROM device_lists WHERE user_id = ?",
                arguments: [userID]
            ) {
                guard [UInt8](row["identity_key"] as Data) == list.identityKey else {
                    throw StorageError.conflict("identity key differs")
                }
                guard try Self.unsigned(row, "version") < list.version else {
                    throw StorageError.conflict("version not newer")
                }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO device_lists (user_id, identity_key, version, list) VALUES (?, ?, ?, ?)",
                arguments: [userID, Data(list.identityKey), version, Data(list.data)]
            )
        }
    }

    // MARK: Accounts

    public func createUser(name: String, passwordHash: [UInt8], salt: [UInt8]) throws -> Int64 {
        try pool.write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) != nil {
                throw StorageError.conflict("user exists")
            }
            if try Row.fetchOne(db, sql: "SELECT 1 FROM retired_names WHERE name = ?", arguments: [name]) != nil {
                throw StorageError.retired
            }
            try db.execute(
                sql: "INSERT INTO users (name, password_hash, salt, created_at) VALUES (?, ?, ?, ?)",
                arguments: [name, Data(passwordHash), Data(salt), Int64(Clock.milliseconds())]
            )
            return db.lastInsertedRowID
        }
    }

    public func user(named name: String) throws -> UserRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map(Self.user)
        }
    }

    public func users() throws -> [UserRecord] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map(Self.user) }
    }

    public func removeUser(named name: String) throws -> Bool {
        try pool.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = ?", arguments: [name]) else {
                return false
            }
            let now = Int64(clamping: Clock.milliseconds())
            try db.execute(
                sql: "INSERT OR IGNORE INTO retired_names (name, removed_at) VALUES (?, ?)",
                arguments: [name, now]
            )
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO retired_keys (signature_key, removed_at) SELECT signature_key, ? FROM devices WHERE user_id = ?
                    """,
                arguments: [now, id]
            )
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    private static func user(_ row: Row) -> UserRecord {
        UserRecord(
            id: row["id"],
            name: row["name"],
            passwordHash: [UInt8](row["password_hash"] as Data),
            salt: [UInt8](row["salt"] as Data),
            createdAt: UInt64(row["created_at"] as Int64)
        )
    }

    // MARK: Devices and sessions

    public func registerDevice(userID: Int64, signatureKey: [UInt8], maxDevices: Int) throws -> Int64 {
        try pool.write { db in
            let key = Data(signatureKey)
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT id, user_id FROM devices WHERE signature_key = ?",
                arguments: [key]
            ) {
                guard row["user_id"] as Int64 == userID else {
                    throw StorageError.conflict("key belongs to another user")
                }
                return row["id"]
            }
            if try Row.fetchOne(db, sql: "SELECT 1 FROM retired_keys WHERE signature_key = ?", arguments: [key]) != nil
            {
                throw StorageError.retired
            }
            let count =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM devices WHERE user_id = ?", arguments: [userID]) ?? 0
            guard count < maxDevices else { throw StorageError.limitReached }
            try db.execute(sql: "INSERT INTO devices (user_id, signature_key) VALUES (?, ?)", arguments: [userID, key])
            return db.lastInsertedRowID
        }
    }

    public func removeDevice(userID: Int64, deviceID: Int64) throws -> Bool {
        try pool.write { db in
            let now = Int64(clamping: Clock.milliseconds())
            // The tombstone first, in the same transaction: the key can never log in again.
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO retired_keys (signature_key, removed_at)
                    SELECT signature_key, ? FROM devices WHERE id = ? AND user_id = ?
                    """,
                arguments: [now, deviceID, userID]
            )
            // Sessions, KeyPackages, memberships and Welcomes go with it (ON DELETE CASCADE).
            try db.execute(sql: "DELETE FROM devices WHERE id = ? AND user_id = ?", arguments: [deviceID, userID])
            return db.changesCount > 0
        }
    }

    public func deleteSessions(deviceID: Int64) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM sessions WHERE device_id = ?", arguments: [deviceID]) }
    }

    public func devices(ofUser userID: Int64) throws -> [DeviceRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT d.*, u.name FROM devices d JOIN users u ON u.id = d.user_id WHERE d.user_id = ? ORDER BY d.id",
                arguments: [userID]
            ).map(Self.device)
        }
    }

    public func device(withSignatureKey key: [UInt8]) throws -> DeviceRecord? {
        try pool.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT d.*, u.name FROM devices d JOIN users u ON u.id = d.user_id WHERE d.signature_key = ?",
                arguments: [Data(key)]
            ).map(Self.device)
        }
    }

    private static func device(_ row: Row) -> DeviceRecord {
        DeviceRecord(
            id: row["id"],
            userID: row["user_id"],
            userName: row["name"],
            signatureKey: [UInt8](row["signature_key"] as Data)
        )
    }

    public func createSession(tokenHash: [UInt8], deviceID: Int64, expiresAt: UInt64) throws {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO sessions (token_hash, device_id, expires_at) VALUES (?, ?, ?)",
                arguments: [Data(tokenHash), deviceID, Int64(expiresAt)]
            )
        }
    }

    public func session(tokenHash: [UInt8], now: UInt64) throws -> SessionRecord? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT s.expires_at, d.*, u.name FROM sessions s JOIN devices d ON d.id = s.device_id
                        JOIN users u ON u.id = d.user_id WHERE s.token_hash = ? AND s.expires_at > ?
                        """,
                    arguments: [Data(tokenHash), Int64(now)]
                )
            else { return nil }
            return SessionRecord(device: Self.device(row), expiresAt: UInt64(row["expires_at"] as Int64))
        }
    }

    public func deleteSession(tokenHash: [UInt8]) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE token_hash = ?", arguments: [Data(tokenHash)])
        }
    }

    // MARK: KeyPackages

    public func addKeyPackages(deviceID: Int64, _ packages: [StoredKeyPackage]) throws {
        try pool.write { db in
            for package in packages {
                if package.lastResort {
                    try db.execute(
                        sql:
                            "DELETE FROM key_packages WHERE device_id = ? AND last_resort = 1 AND \(Self.suiteMatches)",
                        arguments: [deviceID, Self.suiteOf(package)]
                    )
                }
                try db.execute(
                    sql: "INSERT INTO key_packages (device_id, reference, data, last_resort) VALUES (?, ?, ?, ?)",
                    arguments: [deviceID, Data(package.reference), Data(package.data), package.lastResort ? 1 : 0]
                )
            }
        }
    }

    public func availableKeyPackages(deviceID: Int64, suite: UInt16) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM key_packages
                    WHERE device_id = ? AND last_resort = 0 AND claimed = 0 AND \(Self.suiteMatches)
                    """,
                arguments: [deviceID, Data(StoredKeyPackage.suiteBytes(suite))]
            ) ?? 0
        }
    }

    public func claimKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage? {
        try pool.write { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT id, reference, data, last_resort FROM key_packages
                    WHERE device_id = ? AND claimed = 0 AND \(Self.suiteMatches) ORDER BY last_resort, id LIMIT 1
                    """,
                arguments: [deviceID, Data(StoredKeyPackage.suiteBytes(suite))]
            )
            guard let row else { return nil }
            let lastResort = (row["last_resort"] as Int64) == 1
            if !lastResort {
                try db.execute(sql: "UPDATE key_packages SET claimed = 1 WHERE id = ?", arguments: [row["id"] as Int64])
            }
            return StoredKeyPackage(
                reference: [UInt8](row["reference"] as Data),
                data: [UInt8](row["data"] as Data),
                lastResort: lastResort
            )
        }
    }

    public func lastResortKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage? {
        try pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT reference, data FROM key_packages
                    WHERE device_id = ? AND last_resort = 1 AND \(Self.suiteMatches) ORDER BY id DESC LIMIT 1
                    """,
                arguments: [deviceID, Data(StoredKeyPackage.suiteBytes(suite))]
            ).map { row in
                StoredKeyPackage(
                    reference: [UInt8](row["reference"] as Data),
                    data: [UInt8](row["data"] as Data),
                    lastResort: true
                )
            }
        }
    }

    /// A package's suite, as its stored bytes hold it (``StoredKeyPackage/suiteOffset``); SQLite's
    /// `substr` on a BLOB counts bytes from 1.
    private static let suiteMatches = "substr(data, \(StoredKeyPackage.suiteOffset + 1), 2) = ?"

    private static func suiteOf(_ package: StoredKeyPackage) -> Data {
        Data(package.data.dropFirst(StoredKeyPackage.suiteOffset).prefix(2))
    }

    public func keyPackageOwner(reference: [UInt8]) throws -> Int64? {
        try pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT device_id FROM key_packages WHERE reference = ?",
                arguments: [Data(reference)]
            )
        }
    }

    // MARK: Groups

    public func createGroup(_ group: GroupRecord, creatorDevice: Int64) throws -> Int64 {
        try pool.write { db in
            if try Row.fetchOne(
                db,
                sql: "SELECT 1 FROM groups WHERE name = ? OR mls_group_id = ?",
                arguments: [group.name, Data(group.mlsGroupID)]
            ) != nil {
                throw StorageError.conflict("group exists")
            }
            try db.execute(
                sql: "INSERT INTO groups (name, mls_group_id, state, last_seq, created_at) VALUES (?, ?, ?, 0, ?)",
                arguments: [group.name, Data(group.mlsGroupID), Data(group.state), Self.bound(group.createdAt)]
            )
            let id = db.lastInsertedRowID
            try db.execute(
                sql: "INSERT INTO memberships (group_id, device_id, joined_seq, acked_seq) VALUES (?, ?, 0, 0)",
                arguments: [id, creatorDevice]
            )
            return id
        }
    }

    public func group(named name: String) throws -> GroupRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM groups WHERE name = ?", arguments: [name]).map(Self.group)
        }
    }

    public func group(id: Int64) throws -> GroupRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM groups WHERE id = ?", arguments: [id]).map(Self.group)
        }
    }

    public func groups(ofDevice deviceID: Int64) throws -> [GroupRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT g.* FROM groups g JOIN memberships m ON m.group_id = g.id
                    WHERE m.device_id = ? AND m.left_seq IS NULL ORDER BY g.name
                    """,
                arguments: [deviceID]
            ).map(Self.group)
        }
    }

    private static func group(_ row: Row) throws -> GroupRecord {
        GroupRecord(
            id: row["id"],
            name: row["name"],
            mlsGroupID: [UInt8](row["mls_group_id"] as Data),
            state: [UInt8](row["state"] as Data),
            lastSeq: try unsigned(row, "last_seq"),
            createdAt: try unsigned(row, "created_at"),
            stateSeq: try unsigned(row, "state_seq")
        )
    }

    public func append(_ entry: LogAppend) throws -> UInt64 {
        try pool.write { db in try Self.insert(entry, db) }
    }

    /// Group commit (issue 15): every entry in one transaction, so one fsync of the WAL makes
    /// them all durable. Each entry has its own savepoint: one that fails is rolled back and
    /// refused, with the later entries of its group (unless ``LogAppend/refusalSpares(_:)``); the
    /// others are stored. If the transaction itself fails, nothing is stored.
    public func append(batch entries: [LogAppend]) throws -> [Result<UInt64, any Error>] {
        try pool.write { db in
            var failedGroups = Set<Int64>()
            return entries.map { entry in
                guard !failedGroups.contains(entry.groupID) else { return .failure(StorageError.earlierRefused) }
                var seq: UInt64 = 0
                let result = Result<UInt64, any Error> {
                    try db.inSavepoint {
                        seq = try Self.insert(entry, db)
                        return .commit
                    }
                    return seq
                }
                if case .failure(let error) = result, !entry.refusalSpares(error) { failedGroups.insert(entry.groupID) }
                return result
            }
        }
    }

    /// Ends use of the database: later writes fail, as after a crash; nothing half-written is kept.
    public func close() throws {
        try pool.close()
    }

    private static func insert(_ entry: LogAppend, _ db: Database) throws -> UInt64 {
        // The statements every send runs are prepared once per connection (GRDB's statement
        // cache): parsing them per send showed in the issue 15 profile.
        let last =
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT last_seq FROM groups WHERE id = ?"),
                arguments: [entry.groupID]
            ) ?? 0
        let (seq, overflow) = last.addingReportingOverflow(1)
        guard !overflow, last >= 0 else { throw StorageError.corrupt("last_seq") }
        if let clientID = entry.clientID,
            let earlier = try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT seq FROM messages WHERE group_id = ? AND sender_device = ? AND client_id = ?"
                ),
                arguments: [entry.groupID, entry.senderDevice, clientID]
            )
        {
            guard let earlier = UInt64(exactly: earlier) else { throw StorageError.corrupt("seq") }
            throw StorageError.duplicate(seq: earlier)
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO messages (group_id, seq, time, sender_device, data, is_proposal, client_id)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                entry.groupID, seq, Self.bound(entry.time), entry.senderDevice, Data(entry.data),
                entry.isProposal ? 1 : 0, entry.clientID,
            ]
        )
        if let state = entry.newState {
            try db.execute(
                sql: "UPDATE groups SET last_seq = ?, state = ?, state_seq = ? WHERE id = ?",
                arguments: [seq, Data(state), seq, entry.groupID]
            )
        } else {
            try db.cachedStatement(sql: "UPDATE groups SET last_seq = ? WHERE id = ?")
                .execute(arguments: [seq, entry.groupID])
        }
        for device in entry.leftDevices {
            try db.execute(
                sql:
                    "UPDATE memberships SET left_seq = ? WHERE group_id = ? AND device_id = ? AND left_seq IS NULL",
                arguments: [seq, entry.groupID, device]
            )
        }
        for device in entry.joinedDevices {
            try db.execute(
                sql: """
                    INSERT INTO memberships (group_id, device_id, joined_seq, acked_seq) VALUES (?, ?, ?, ?)
                    ON CONFLICT (group_id, device_id) DO UPDATE SET joined_seq = excluded.joined_seq, left_seq = NULL, acked_seq = excluded.acked_seq
                    """,
                arguments: [entry.groupID, device, seq, seq]
            )
        }
        for welcome in entry.welcomes {
            try db.execute(
                sql: "INSERT INTO welcomes (group_id, device_id, seq, time, data) VALUES (?, ?, ?, ?, ?)",
                arguments: [entry.groupID, welcome.deviceID, seq, Self.bound(entry.time), Data(welcome.data)]
            )
        }
        return UInt64(seq)  // seq > last >= 0, so exact
    }

    public func messages(groupID: Int64, after seq: UInt64, through last: UInt64?, limit: Int) throws -> [LogEntry] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT m.seq, m.time, m.sender_device, m.data, m.client_id, u.name FROM messages m
                    LEFT JOIN devices d ON d.id = m.sender_device LEFT JOIN users u ON u.id = d.user_id
                    WHERE m.group_id = ? AND m.seq > ? AND m.seq <= ? ORDER BY m.seq LIMIT ?
                    """,
                arguments: [groupID, Self.bound(seq), Self.bound(last ?? UInt64(Int64.max)), limit]
            ).map(Self.logEntry)
        }
    }

    /// Asked by the shard for every send with an id (a resend is answered with what is stored),
    /// so its statement is prepared once per reader connection.
    public func message(groupID: Int64, senderDevice: Int64, clientID: String) throws -> LogEntry? {
        try pool.read { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT m.seq, m.time, m.sender_device, m.data, m.client_id, u.name FROM messages m
                        LEFT JOIN devices d ON d.id = m.sender_device LEFT JOIN users u ON u.id = d.user_id
                        WHERE m.group_id = ? AND m.sender_device = ? AND m.client_id = ?
                        """
                ),
                arguments: [groupID, senderDevice, clientID]
            ).map(Self.logEntry)
        }
    }

    private static func logEntry(_ row: Row) throws -> LogEntry {
        LogEntry(
            seq: try unsigned(row, "seq"),
            time: try unsigned(row, "time"),
            sender: row["name"] ?? "(deleted)",
            senderDevice: row["sender_device"],
            data: [UInt8](row["data"] as Data),
            clientID: row["client_id"]
        )
    }

    public func memberships(ofDevice deviceID: Int64) throws -> [MembershipRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT m.*, g.name FROM memberships m JOIN groups g ON g.id = m.group_id
                    WHERE m.device_id = ? AND (m.left_seq IS NULL OR m.acked_seq < m.left_seq) ORDER BY g.name
                    """,
                arguments: [deviceID]
            ).map(Self.membership)
        }
    }

    public func membership(groupID: Int64, deviceID: Int64) throws -> MembershipRecord? {
        try pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT m.*, g.name FROM memberships m JOIN groups g ON g.id = m.group_id
                    WHERE m.group_id = ? AND m.device_id = ?
                    """,
                arguments: [groupID, deviceID]
            ).map(Self.membership)
        }
    }

    private static func membership(_ row: Row) throws -> MembershipRecord {
        let left: UInt64? = if row["left_seq"] as Int64? != nil { try unsigned(row, "left_seq") } else { nil }
        return MembershipRecord(
            groupID: row["group_id"],
            groupName: row["name"],
            deviceID: row["device_id"],
            joinedSeq: try unsigned(row, "joined_seq"),
            leftSeq: left,
            ackedSeq: try unsigned(row, "acked_seq")
        )
    }

    public func storedBytes(groupID: Int64) throws -> Int64 {
        try pool.read { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM messages WHERE group_id = ?",
                arguments: [groupID]
            ) ?? 0
        }
    }

    public func storedBytes(userID: Int64) throws -> Int64 {
        try pool.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(LENGTH(m.data)), 0) FROM messages m
                    JOIN devices d ON d.id = m.sender_device WHERE d.user_id = ?
                    """,
                arguments: [userID]
            ) ?? 0
        }
    }

    public func welcomes(forDevice deviceID: Int64) throws -> [WelcomeRecord] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT w.*, g.name FROM welcomes w JOIN groups g ON g.id = w.group_id WHERE w.device_id = ? ORDER BY w.id
                    """,
                arguments: [deviceID]
            ).map { row in
                WelcomeRecord(
                    groupID: row["group_id"],
                    groupName: row["name"],
                    seq: try Self.unsigned(row, "seq"),
                    time: try Self.unsigned(row, "time"),
                    data: [UInt8](row["data"] as Data)
                )
            }
        }
    }

    public func acknowledge(deviceID: Int64, groupID: Int64, seq: UInt64) throws {
        // The service range-checks seq against the group's log; a value no log can reach is refused here too.
        guard let seq = Int64(exactly: seq) else { throw StorageError.outOfRange("seq") }
        try pool.write { db in
            try db.execute(
                sql: "UPDATE memberships SET acked_seq = ? WHERE group_id = ? AND device_id = ? AND acked_seq < ?",
                arguments: [seq, groupID, deviceID, seq]
            )
            try db.execute(
                sql: "DELETE FROM welcomes WHERE group_id = ? AND device_id = ? AND seq <= ?",
                arguments: [groupID, deviceID, seq]
            )
        }
    }

    /// The log writer's acknowledgements, in one transaction (one fsync) with a savepoint each.
    public func acknowledge(batch: [LogAcknowledgement]) throws -> [Result<Void, any Error>] {
        try pool.write { db in
            batch.map { ack in
                Result {
                    try db.inSavepoint {
                        try Self.acknowledge(ack, db)
                        return .commit
                    }
                }
            }
        }
    }

    private static func acknowledge(_ ack: LogAcknowledgement, _ db: Database) throws {
        var found: (id: Int64, last: UInt64)?
        for name in ack.nameSpellings where found == nil {
            if let row = try Row.fetchOne(db, sql: "SELECT id, last_seq FROM groups WHERE name = ?", arguments: [name])
            {
                found = (row["id"], try unsigned(row, "last_seq"))
            }
        }
        guard let (groupID, lastSeq) = found,
            let row = try Row.fetchOne(
                db,
                sql: "SELECT left_seq FROM memberships WHERE group_id = ? AND device_id = ?",
                arguments: [groupID, ack.deviceID]
            )
        else {
            throw AcknowledgementRefusal.notMember
        }
        let last = row["left_seq"] as Int64? != nil ? try unsigned(row, "left_seq") : lastSeq
        guard ack.seq <= last, let seq = Int64(exactly: ack.seq) else {
            throw AcknowledgementRefusal.beyondLog(last: last)
        }
        try db.execute(
            sql: "UPDATE memberships SET acked_seq = ? WHERE group_id = ? AND device_id = ? AND acked_seq < ?",
            arguments: [seq, groupID, ack.deviceID, seq]
        )
        try db.execute(
            sql: "DELETE FROM welcomes WHERE group_id = ? AND device_id = ? AND seq <= ?",
            arguments: [groupID, ack.deviceID, seq]
        )
    }

    public func destroyGroup(id: Int64, notify devices: [Int64], notice: Data?) throws {
        try pool.write { db in
            guard let name = try String.fetchOne(db, sql: "SELECT name FROM groups WHERE id = ?", arguments: [id])
            else { return }
            var noticeID: Int64?
            if let notice {
                try db.execute(sql: "INSERT INTO destroy_notices (message) VALUES (?)", arguments: [notice])
                noticeID = db.lastInsertedRowID
            }
            for device in devices {
                try db.execute(
                    sql: "INSERT INTO notices (device_id, group_name, notice_id) VALUES (?, ?, ?)",
                    arguments: [device, name, noticeID]
                )
            }
            try db.execute(sql: "DELETE FROM groups WHERE id = ?", arguments: [id])
        }
    }

    public func notices(forDevice deviceID: Int64) throws -> [DestroyNotice] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT n.id, n.group_name, COALESCE(d.message, n.message) AS message FROM notices n
                    LEFT JOIN destroy_notices d ON d.id = n.notice_id WHERE n.device_id = ? ORDER BY n.id
                    """,
                arguments: [deviceID]
            ).map { DestroyNotice(group: $0["group_name"], notice: $0["message"], id: $0["id"]) }
        }
    }

    public func clearNotices(forDevice deviceID: Int64, ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try pool.write { db in
            for id in ids {
                try db.execute(sql: "DELETE FROM notices WHERE device_id = ? AND id = ?", arguments: [deviceID, id])
            }
            try Self.deleteUnreferencedDestroyNotices(db)
        }
    }

    /// A destroy message no device's notice refers to any more (all fetched, or their devices removed).
    private static func deleteUnreferencedDestroyNotices(_ db: Database) throws {
        try db.execute(
            sql: """
                DELETE FROM destroy_notices
                WHERE id NOT IN (SELECT notice_id FROM notices WHERE notice_id IS NOT NULL)
                """
        )
    }

    public func prune(olderThan cutoff: UInt64) throws -> Int {
        try pool.write { db in
            try Self.deleteUnreferencedDestroyNotices(db)
            try db.execute(
                sql: """
                    DELETE FROM messages WHERE time < ? OR (seq <= (
                        SELECT COALESCE(MIN(CASE WHEN ms.left_seq IS NULL THEN ms.acked_seq ELSE MIN(ms.acked_seq, ms.left_seq) END), 0)
                        FROM memberships ms WHERE ms.group_id = messages.group_id AND (ms.left_seq IS NULL OR ms.acked_seq < ms.left_seq))
                      -- Proposals after the stored state are re-derived from the log on restart: keep them.
                      AND (is_proposal = 0 OR seq <= (SELECT g.state_seq FROM groups g WHERE g.id = messages.group_id)))
                    """,
                arguments: [Self.bound(cutoff)]
            )
            return db.changesCount
        }
    }
}

/// Server time in milliseconds since the Unix epoch.
public enum Clock {
    /// A clock set before 1970 (or not a number) reads as 0 rather than trapping.
    public static func milliseconds() -> UInt64 {
        UInt64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
    }
}
