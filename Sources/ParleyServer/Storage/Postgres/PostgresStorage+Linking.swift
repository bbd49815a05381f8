import Foundation
import PostgresNIO

/// Linking a device on PostgreSQL, as SQLiteStorage+Linking.swift does it (same bounds, same
/// errors). The account's row lock (`SELECT … FOR UPDATE`) serialises what two nodes do for one
/// account at once, so the pending-request bound and the bundle byte bound hold across nodes.
extension PostgresStorage {
    public func createLinkRequest(_ request: StoredLinkRequest, maxPending: Int, now: UInt64) throws {
        guard Self.storable(request.lookupID) else { throw StorageError.outOfRange("lookup id") }
        guard Self.storable(request.deviceName) else { throw StorageError.outOfRange("device name") }
        let (userID, key, now) = (request.userID, Data(request.signatureKey), Self.bound(now))
        do {
            try write { db in
                _ = try db.row("SELECT id FROM users WHERE id = \(userID) FOR UPDATE")
                try db.query("DELETE FROM link_requests WHERE expires_at <= \(now)")
                try db.query("DELETE FROM link_requests WHERE user_id = \(userID) AND signature_key = \(key)")
                if try db.row("SELECT 1 AS one FROM link_requests WHERE lookup_id = \(request.lookupID)") != nil {
                    throw StorageError.conflict("lookup id in use")
                }
                let pending =
                    try db.row("SELECT COUNT(*) AS count FROM link_requests WHERE user_id = \(userID)")?.int("count")
                    ?? 0
                guard pending < maxPending else { throw StorageError.limitReached }
                let (name, hpke, nonce) = (request.deviceName, Data(request.hpkeKey), Data(request.nonce))
                let expires = Self.bound(request.expiresAt)
                try db.query(
                    """
                    INSERT INTO link_requests
                        (lookup_id, user_id, signature_key, device_name, hpke_key, nonce, expires_at)
                    VALUES (\(request.lookupID), \(userID), \(key), \(name), \(hpke), \(nonce), \(expires))
                    """
                )
            }
        } catch  where SQLState.of(error) == SQLState.uniqueViolation {
            // Another account's request took the lookup id between our check and our insert.
            throw StorageError.conflict("lookup id in use")
        }
    }

    public func linkRequest(lookupID: String, now: UInt64) throws -> StoredLinkRequest? {
        guard Self.storable(lookupID) else { return nil }
        let now = Self.bound(now)
        return try read { db in
            guard
                let row = try db.row(
                    """
                    SELECT r.*, u.name FROM link_requests r JOIN users u ON u.id = r.user_id
                    WHERE r.lookup_id = \(lookupID) AND r.expires_at > \(now)
                    """
                )
            else { return nil }
            return StoredLinkRequest(
                lookupID: try row.text("lookup_id"),
                userID: try row.int("user_id"),
                userName: try row.text("name"),
                signatureKey: try row.bytes("signature_key"),
                deviceName: try row.text("device_name"),
                hpkeKey: try row.bytes("hpke_key"),
                nonce: try row.bytes("nonce"),
                expiresAt: try row.unsigned("expires_at")
            )
        }
    }

    public func answerLinkRequest(
        lookupID: String,
        bundle: [UInt8],
        expiresAt: UInt64,
        maxAccountBytes: Int,
        now: UInt64
    ) throws -> Bool {
        guard Self.storable(lookupID) else { return false }
        let (data, expires, now) = (Data(bundle), Self.bound(expiresAt), Self.bound(now))
        return try write { db in
            try db.query("DELETE FROM link_bundles WHERE expires_at <= \(now)")
            guard
                let request = try db.row(
                    "SELECT user_id FROM link_requests WHERE lookup_id = \(lookupID) AND expires_at > \(now)"
                )
            else { return false }
            let userID = try request.int("user_id")
            _ = try db.row("SELECT id FROM users WHERE id = \(userID) FOR UPDATE")
            // Read again under the account's lock: another node may have answered it meanwhile.
            guard
                let row = try db.row(
                    """
                    SELECT signature_key FROM link_requests
                    WHERE lookup_id = \(lookupID) AND user_id = \(userID) AND expires_at > \(now)
                    """
                )
            else { return false }
            let key = Data(try row.bytes("signature_key"))
            guard
                try db.row("SELECT 1 AS one FROM link_bundles WHERE user_id = \(userID) AND signature_key = \(key)")
                    == nil
            else { return false }
            let waiting =
                try db.row(
                    "SELECT COALESCE(SUM(OCTET_LENGTH(data)), 0)::BIGINT AS bytes FROM link_bundles WHERE user_id = \(userID)"
                )?.int("bytes") ?? 0
            guard waiting <= maxAccountBytes, bundle.count <= maxAccountBytes - Int(waiting) else {
                throw StorageError.limitReached
            }
            try db.query("DELETE FROM link_requests WHERE lookup_id = \(lookupID)")
            try db.query(
                """
                INSERT INTO link_bundles (user_id, signature_key, data, expires_at)
                VALUES (\(userID), \(key), \(data), \(expires))
                """
            )
            return true
        }
    }

    public func linkBundle(userID: Int64, signatureKey: [UInt8], now: UInt64, keepUntil: UInt64) throws -> [UInt8]? {
        let (key, now, keepUntil) = (Data(signatureKey), Self.bound(now), Self.bound(keepUntil))
        return try write { db in
            guard
                let row = try db.row(
                    """
                    SELECT data FROM link_bundles
                    WHERE user_id = \(userID) AND signature_key = \(key) AND expires_at > \(now) FOR UPDATE
                    """
                )
            else { return nil }
            try db.query(
                """
                UPDATE link_bundles SET fetched = TRUE, expires_at = \(keepUntil)
                WHERE user_id = \(userID) AND signature_key = \(key) AND NOT fetched
                """
            )
            return try row.bytes("data")
        }
    }

    public func deleteExpiredLinks(now: UInt64) throws -> Int {
        // The hourly sweep: the clocks may have drifted apart since the last measurement.
        try? measureClockOffset()
        let (expiry, bucketTime) = (Self.bound(now), databaseTime(now))
        return try write { db in
            let requests = try db.execute("DELETE FROM link_requests WHERE expires_at <= \(expiry)")
            let bundles = try db.execute("DELETE FROM link_bundles WHERE expires_at <= \(expiry)")
            try db.query("DELETE FROM rate_limits WHERE tat <= \(bucketTime)")
            return requests + bundles
        }
    }

    public func deleteLinkBundle(userID: Int64, signatureKey: [UInt8]) throws -> Bool {
        let key = Data(signatureKey)
        return try write { db in
            try db.execute("DELETE FROM link_bundles WHERE user_id = \(userID) AND signature_key = \(key)") > 0
        }
    }
}
