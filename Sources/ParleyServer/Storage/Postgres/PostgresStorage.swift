import Foundation
import NIOCore
import PostgresNIO
import Synchronization

/// Storage in PostgreSQL, for several server nodes sharing one database (`database:
/// postgres://…`). Every method is one transaction, committed with PostgreSQL's default
/// `synchronous_commit = on`, so a method that returns has made its writes durable. Values are
/// always bound parameters (`PostgresQuery` interpolation), never spliced into SQL text.
///
/// Order and epochs are decided here, not in a node's memory: an append locks its group's row
/// (`SELECT … FOR UPDATE`), assigns the next seq (unique per group) and checks the epoch in the
/// same transaction, so "the first commit of an epoch wins" holds across nodes.
public final class PostgresStorage: ServerStorage {
    let pool: PostgresConnectionPool
    /// This storage's name in ``ClusterEvent`` payloads: its own notifications are ignored.
    let node = String(UUID().uuidString.prefix(8))
    private let listener = Mutex<PostgresListener?>(nil)
    private let sessionReads = SessionReads()
    /// This node's clock (``Clock/milliseconds()``; another in tests), and how far the database's
    /// runs ahead of it (``measureClockOffset()``): what rate limits shared by every node are timed by.
    let localClock: @Sendable () -> UInt64
    let clockOffset: Atomic<Int64>

    /// Connects to the database and creates or migrates its schema.
    public convenience init(url: DatabaseURL, maxConnections: Int = 8) throws {
        try self.init(url: url, maxConnections: maxConnections, localClock: { Clock.milliseconds() })
    }

    init(url: DatabaseURL, maxConnections: Int, localClock: @escaping @Sendable () -> UInt64) throws {
        let pool = try PostgresConnectionPool(url: url, maxConnections: maxConnections)
        let offset: Int64
        do {
            try pool.withConnection { try PostgresSchema.migrate($0) }
            offset = try Self.clockOffset(pool: pool, localClock: localClock)
        } catch {
            pool.close()
            throw Self.startError(error, url: url)
        }
        // Every stored property set once, no method of self called before: the release build's
        // ownership checker refused a throwing init that called one with an `Atomic` stored here.
        self.pool = pool
        self.localClock = localClock
        clockOffset = Atomic(offset)
    }

    /// The URL the storage uses, without its password when printed.
    public var url: DatabaseURL { pool.url }

    /// Closes the connections; later calls fail.
    public func close() {
        stopListening()
        pool.close()
    }

    /// How long the server waits at start for its LISTEN to take effect.
    static let listenDeadline = Duration.seconds(30)

    /// Starts telling `onEvent` what other nodes change (cross-node fan-out and cache invalidation)
    /// and returns once LISTEN took effect: a node that served before would miss what others
    /// store meanwhile, with its clients already told they are up to date.
    func listen(_ onEvent: @escaping @Sendable (ClusterEvent) -> Void) async throws {
        let (ready, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let listener = PostgresListener(pool: pool, node: node, onEvent: onEvent, onListening: { signal.yield() })
        self.listener.withLock { $0 = listener }
        listener.start()
        let url = url
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in ready { return }
                throw PostgresStorageError.closed
            }
            group.addTask {
                try await Task.sleep(for: Self.listenDeadline)
                throw PostgresStorageError.unreachable(url, reason: "LISTEN did not take effect")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// The listening connection's `application_name`, while listening.
    var listenerApplicationName: String? { listener.withLock { $0?.applicationName } }

    func stopListening() {
        listener.withLock { listener in
            defer { listener = nil }
            return listener
        }?.stop()
    }

    /// Tells the other nodes, when the current transaction commits.
    static func notify(_ event: ClusterEvent, node: String, _ db: PostgresSession) throws {
        let payload = event.payload(node: node)
        try db.query("SELECT pg_notify(\(ClusterEvent.channel), \(payload))")
    }

    private static func startError(_ error: any Error, url: DatabaseURL) -> any Error {
        if error is PostgresStorageError { return error }
        return PostgresStorageError.unreachable(url, reason: PostgresConnectionPool.reason(error))
    }

    @discardableResult
    func read<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try pool.withConnection(body)
    }

    @discardableResult
    func write<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        try pool.withConnection { try $0.transaction(body) }
    }

    /// Text PostgreSQL cannot store (a NUL character) names no row: lookups find nothing.
    static func storable(_ text: String) -> Bool { !text.utf8.contains(0) }

    /// A seq or time bound for SQL: beyond Int64.max nothing is stored, so clamping selects the same rows.
    static func bound(_ value: UInt64) -> Int64 { Int64(clamping: value) }

    static func now() -> Int64 { Int64(clamping: Clock.milliseconds()) }

    // MARK: Accounts

    public func createUser(name: String, passwordHash: [UInt8], salt: [UInt8]) throws -> Int64 {
        guard Self.storable(name) else { throw StorageError.outOfRange("name") }
        do {
            return try write { db in
                if try db.row("SELECT 1 AS one FROM users WHERE name = \(name)") != nil {
                    throw StorageError.conflict("user exists")
                }
                if try db.row("SELECT 1 AS one FROM retired_names WHERE name = \(name)") != nil {
                    throw StorageError.retired
                }
                let (hash, salt, now) = (Data(passwordHash), Data(salt), Self.now())
                let row = try db.row(
                    """
                    INSERT INTO users (name, password_hash, salt, created_at) VALUES (\(name), \(hash), \(salt), \(now))
                    RETURNING id
                    """
                )
                guard let id = try row?.int("id") else { throw StorageError.corrupt("users.id") }
                return id
            }
        } catch  where SQLState.of(error) == SQLState.uniqueViolation {
            // Another node registered the name between our check and our insert.
            throw StorageError.conflict("user exists")
        }
    }

    public func user(named name: String) throws -> UserRecord? {
        guard Self.storable(name) else { return nil }
        return try read { db in try db.row("SELECT * FROM users WHERE name = \(name)").map(Self.user) }
    }

    public func users() throws -> [UserRecord] {
        try read { db in try db.rows("SELECT * FROM users ORDER BY name COLLATE \"C\"").map(Self.user) }
    }

    public func removeUser(named name: String) throws -> Bool {
        guard Self.storable(name) else { return false }
        return try write { db in
            guard let id = try db.row("SELECT id FROM users WHERE name = \(name) FOR UPDATE")?.int("id") else {
                return false
            }
            for device in try db.rows("SELECT id FROM devices WHERE user_id = \(id)") {
                try Self.notify(.sessionsEnded(device: try device.int("id")), node: node, db)
            }
            let now = Self.now()
            try db.query(
                "INSERT INTO retired_names (name, removed_at) VALUES (\(name), \(now)) ON CONFLICT DO NOTHING"
            )
            try db.query(
                """
                INSERT INTO retired_keys (signature_key, removed_at) SELECT signature_key, \(now) FROM devices
                WHERE user_id = \(id) ON CONFLICT DO NOTHING
                """
            )
            return try db.execute("DELETE FROM users WHERE id = \(id)") > 0
        }
    }

    static func user(_ row: PostgresRandomAccessRow) throws -> UserRecord {
        UserRecord(
            id: try row.int("id"),
            name: try row.text("name"),
            passwordHash: try row.bytes("password_hash"),
            salt: try row.bytes("salt"),
            createdAt: try row.unsigned("created_at")
        )
    }

    // MARK: Device directory

    public func deviceList(ofUser userID: Int64) throws -> StoredDeviceList? {
        try read { db in
            guard let row = try db.row("SELECT identity_key, version, list FROM device_lists WHERE user_id = \(userID)")
            else { return nil }
            return StoredDeviceList(
                identityKey: try row.bytes("identity_key"),
                version: try row.unsigned("version"),
                data: try row.bytes("list")
            )
        }
    }

    public func storeDeviceList(userID: Int64, _ list: StoredDeviceList) throws {
        guard let version = Int64(exactly: list.version) else { throw StorageError.conflict("version out of range") }
        do {
            try write { db in
                let (key, data) = (Data(list.identityKey), Data(list.data))
                if let row = try db.row(
                    "SELECT identity_key, version FROM device_lists WHERE user_id = \(userID) FOR UPDATE"
                ) {
                    guard try row.bytes("identity_key") == list.identityKey else {
                        throw StorageError.conflict("identity key differs")
                    }
                    guard try row.unsigned("version") < list.version else {
                        throw StorageError.conflict("version not newer")
                    }
                    try db.query(
                        "UPDATE device_lists SET version = \(version), list = \(data) WHERE user_id = \(userID)"
                    )
                } else {
                    try db.query(
                        """
                        INSERT INTO device_lists (user_id, identity_key, version, list)
                        VALUES (\(userID), \(key), \(version), \(data))
                        """
                    )
                }
            }
        } catch  where SQLState.of(error) == SQLState.uniqueViolation {
            // Another node stored the account's first list at the same moment: this one is not newer.
            throw StorageError.conflict("version not newer")
        }
    }

    // MARK: Devices and sessions

    public func registerDevice(userID: Int64, signatureKey: [UInt8], maxDevices: Int) throws -> Int64 {
        let key = Data(signatureKey)
        return try write { db in
            // The user's row lock serialises registrations of the user's devices across nodes,
            // so the device bound holds.
            _ = try db.row("SELECT id FROM users WHERE id = \(userID) FOR UPDATE")
            if let row = try db.row("SELECT id, user_id FROM devices WHERE signature_key = \(key)") {
                guard try row.int("user_id") == userID else {
                    throw StorageError.conflict("key belongs to another user")
                }
                return try row.int("id")
            }
            if try db.row("SELECT 1 AS one FROM retired_keys WHERE signature_key = \(key)") != nil {
                throw StorageError.retired
            }
            let count = try db.row("SELECT COUNT(*) AS count FROM devices WHERE user_id = \(userID)")?.int("count") ?? 0
            guard count < maxDevices else { throw StorageError.limitReached }
            let row = try db.row("INSERT INTO devices (user_id, signature_key) VALUES (\(userID), \(key)) RETURNING id")
            guard let id = try row?.int("id") else { throw StorageError.corrupt("devices.id") }
            return id
        }
    }

    public func removeDevice(userID: Int64, deviceID: Int64) throws -> Bool {
        try write { db in
            let now = Self.now()
            // The tombstone first, in the same transaction: the key can never log in again.
            try db.query(
                """
                INSERT INTO retired_keys (signature_key, removed_at)
                SELECT signature_key, \(now) FROM devices WHERE id = \(deviceID) AND user_id = \(userID)
                ON CONFLICT DO NOTHING
                """
            )
            // Sessions, KeyPackages, memberships and Welcomes go with it (ON DELETE CASCADE).
            guard try db.execute("DELETE FROM devices WHERE id = \(deviceID) AND user_id = \(userID)") > 0 else {
                return false
            }
            try Self.notify(.sessionsEnded(device: deviceID), node: node, db)
            return true
        }
    }

    public func deleteSessions(deviceID: Int64) throws {
        try write { db in
            try db.query("DELETE FROM sessions WHERE device_id = \(deviceID)")
            try Self.notify(.sessionsEnded(device: deviceID), node: node, db)
        }
    }

    public func devices(ofUser userID: Int64) throws -> [DeviceRecord] {
        try read { db in
            try db.rows(
                """
                SELECT d.*, u.name FROM devices d JOIN users u ON u.id = d.user_id WHERE d.user_id = \(userID)
                ORDER BY d.id
                """
            ).map(Self.device)
        }
    }

    public func device(withSignatureKey key: [UInt8]) throws -> DeviceRecord? {
        let key = Data(key)
        return try read { db in
            try db.row(
                "SELECT d.*, u.name FROM devices d JOIN users u ON u.id = d.user_id WHERE d.signature_key = \(key)"
            ).map(Self.device)
        }
    }

    static func device(_ row: PostgresRandomAccessRow) throws -> DeviceRecord {
        DeviceRecord(
            id: try row.int("id"),
            userID: try row.int("user_id"),
            userName: try row.text("name"),
            signatureKey: try row.bytes("signature_key")
        )
    }

    public func createSession(tokenHash: [UInt8], deviceID: Int64, expiresAt: UInt64) throws {
        let (hash, expires) = (Data(tokenHash), Self.bound(expiresAt))
        try write { db in
            try db.query(
                "INSERT INTO sessions (token_hash, device_id, expires_at) VALUES (\(hash), \(deviceID), \(expires))"
            )
        }
    }

    /// Checks that arrive together share one query (``SessionReads``): every frame checks its session.
    public func session(tokenHash: [UInt8], now: UInt64) throws -> SessionRecord? {
        try sessionReads.read(tokenHash: tokenHash, now: now) { try sessions(tokenHashes: $0) }
    }

    /// The sessions of these token hashes, expired or not, with their devices.
    func sessions(tokenHashes: [[UInt8]]) throws -> [[UInt8]: SessionRecord] {
        let hashes = tokenHashes.map { ByteBuffer(bytes: $0) }
        return try read { db in
            var found: [[UInt8]: SessionRecord] = [:]
            for row in try db.rows(
                """
                SELECT s.token_hash, s.expires_at, d.*, u.name FROM sessions s JOIN devices d ON d.id = s.device_id
                JOIN users u ON u.id = d.user_id WHERE s.token_hash = ANY(\(hashes)::BYTEA[])
                """
            ) {
                found[try row.bytes("token_hash")] = SessionRecord(
                    device: try Self.device(row),
                    expiresAt: try row.unsigned("expires_at")
                )
            }
            return found
        }
    }

    public func deleteSession(tokenHash: [UInt8]) throws {
        let hash = Data(tokenHash)
        try write { db in try db.query("DELETE FROM sessions WHERE token_hash = \(hash)") }
    }

    // MARK: KeyPackages

    public func addKeyPackages(deviceID: Int64, _ packages: [StoredKeyPackage]) throws {
        try write { db in
            for package in packages {
                if package.lastResort {
                    let suite = Data(package.data.dropFirst(StoredKeyPackage.suiteOffset).prefix(2))
                    try db.query(
                        """
                        DELETE FROM key_packages
                        WHERE device_id = \(deviceID) AND last_resort AND substring(data from 7 for 2) = \(suite)
                        """
                    )
                }
                let (reference, data, lastResort) = (Data(package.reference), Data(package.data), package.lastResort)
                try db.query(
                    """
                    INSERT INTO key_packages (device_id, reference, data, last_resort)
                    VALUES (\(deviceID), \(reference), \(data), \(lastResort))
                    """
                )
            }
        }
    }

    // A package's suite is its bytes 7–8 counted from 1 (StoredKeyPackage.suiteOffset).
    public func availableKeyPackages(deviceID: Int64, suite: UInt16) throws -> Int {
        let suite = Data(StoredKeyPackage.suiteBytes(suite))
        return try read { db in
            let row = try db.row(
                """
                SELECT COUNT(*) AS count FROM key_packages
                WHERE device_id = \(deviceID) AND NOT last_resort AND NOT claimed AND substring(data from 7 for 2) = \(suite)
                """
            )
            return Int(try row?.int("count") ?? 0)
        }
    }

    /// One-time packages are claimed with `FOR UPDATE SKIP LOCKED`: two nodes claiming at once
    /// get two different packages, never the same one.
    public func claimKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage? {
        let suiteBytes = Data(StoredKeyPackage.suiteBytes(suite))
        return try write { db in
            if let row = try db.row(
                """
                UPDATE key_packages SET claimed = TRUE WHERE id = (
                    SELECT id FROM key_packages WHERE device_id = \(deviceID) AND NOT claimed AND NOT last_resort
                    AND substring(data from 7 for 2) = \(suiteBytes)
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING reference, data
                """
            ) {
                return StoredKeyPackage(
                    reference: try row.bytes("reference"),
                    data: try row.bytes("data"),
                    lastResort: false
                )
            }
            return try Self.lastResort(deviceID: deviceID, suite: suite, db)
        }
    }

    public func lastResortKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage? {
        try read { db in try Self.lastResort(deviceID: deviceID, suite: suite, db) }
    }

    private static func lastResort(deviceID: Int64, suite: UInt16, _ db: PostgresSession) throws -> StoredKeyPackage? {
        let suite = Data(StoredKeyPackage.suiteBytes(suite))
        return try db.row(
            """
            SELECT reference, data FROM key_packages
            WHERE device_id = \(deviceID) AND last_resort AND substring(data from 7 for 2) = \(suite)
            ORDER BY id DESC LIMIT 1
            """
        ).map { StoredKeyPackage(reference: try $0.bytes("reference"), data: try $0.bytes("data"), lastResort: true) }
    }

    public func keyPackageOwner(reference: [UInt8]) throws -> Int64? {
        let reference = Data(reference)
        return try read { db in
            try db.row("SELECT device_id FROM key_packages WHERE reference = \(reference)")?.int("device_id")
        }
    }
}
