import Foundation
import GRDB

/// A link request as the server keeps it: the account and signature key of the new device
/// (which has no device row yet: it may not log in before approval) and what it asked to be
/// approved with.
public struct StoredLinkRequest: Sendable, Hashable {
    public var lookupID: String
    public var userID: Int64
    public var userName: String
    public var signatureKey: [UInt8]
    public var deviceName: String
    public var hpkeKey: [UInt8]
    public var nonce: [UInt8]
    public var expiresAt: UInt64
}

extension SQLiteStorage {
    public func createLinkRequest(_ request: StoredLinkRequest, maxPending: Int, now: UInt64) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM link_requests WHERE expires_at <= ?", arguments: [Self.bound(now)])
            try db.execute(
                sql: "DELETE FROM link_requests WHERE user_id = ? AND signature_key = ?",
                arguments: [request.userID, Data(request.signatureKey)]
            )
            if try Row.fetchOne(
                db,
                sql: "SELECT 1 FROM link_requests WHERE lookup_id = ?",
                arguments: [request.lookupID]
            ) != nil {
                throw StorageError.conflict("lookup id in use")
            }
            let pending =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM link_requests WHERE user_id = ?",
                    arguments: [request.userID]
                ) ?? 0
            guard pending < maxPending else { throw StorageError.limitReached }
            try db.execute(
                sql: """
                    INSERT INTO link_requests
                        (lookup_id, user_id, signature_key, device_name, hpke_key, nonce, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    request.lookupID, request.userID, Data(request.signatureKey), request.deviceName,
                    Data(request.hpkeKey), Data(request.nonce), Self.bound(request.expiresAt),
                ]
            )
        }
    }

    public func linkRequest(lookupID: String, now: UInt64) throws -> StoredLinkRequest? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT r.*, u.name FROM link_requests r JOIN users u ON u.id = r.user_id
                        WHERE r.lookup_id = ? AND r.expires_at > ?
                        """,
                    arguments: [lookupID, Self.bound(now)]
                )
            else { return nil }
            return StoredLinkRequest(
                lookupID: row["lookup_id"],
                userID: row["user_id"],
                userName: row["name"],
                signatureKey: [UInt8](row["signature_key"] as Data),
                deviceName: row["device_name"],
                hpkeKey: [UInt8](row["hpke_key"] as Data),
                nonce: [UInt8](row["nonce"] as Data),
                expiresAt: try Self.unsigned(row, "expires_at")
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
        try pool.write { db in
            try db.execute(sql: "DELETE FROM link_bundles WHERE expires_at <= ?", arguments: [Self.bound(now)])
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT user_id, signature_key FROM link_requests WHERE lookup_id = ? AND expires_at > ?",
                    arguments: [lookupID, Self.bound(now)]
                )
            else { return false }
            let (userID, key): (Int64, Data) = (row["user_id"], row["signature_key"])
            guard
                try Row.fetchOne(
                    db,
                    sql: "SELECT 1 FROM link_bundles WHERE user_id = ? AND signature_key = ?",
                    arguments: [userID, key]
                ) == nil
            else { return false }
            let waiting =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM link_bundles WHERE user_id = ?",
                    arguments: [userID]
                ) ?? 0
            guard waiting <= maxAccountBytes, bundle.count <= maxAccountBytes - waiting else {
                throw StorageError.limitReached
            }
            try db.execute(sql: "DELETE FROM link_requests WHERE lookup_id = ?", arguments: [lookupID])
            try db.execute(
                sql: "INSERT INTO link_bundles (user_id, signature_key, data, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [userID, key, Data(bundle), Self.bound(expiresAt)]
            )
            return true
        }
    }

    public func linkBundle(userID: Int64, signatureKey: [UInt8], now: UInt64, keepUntil: UInt64) throws -> [UInt8]? {
        try pool.write { db in
            let data = try Data.fetchOne(
                db,
                sql: "SELECT data FROM link_bundles WHERE user_id = ? AND signature_key = ? AND expires_at > ?",
                arguments: [userID, Data(signatureKey), Self.bound(now)]
            )
            guard let data else { return nil }
            try db.execute(
                sql: """
                    UPDATE link_bundles SET fetched = 1, expires_at = ?
                    WHERE user_id = ? AND signature_key = ? AND fetched = 0
                    """,
                arguments: [Self.bound(keepUntil), userID, Data(signatureKey)]
            )
            return [UInt8](data)
        }
    }

    public func deleteExpiredLinks(now: UInt64) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM link_requests WHERE expires_at <= ?", arguments: [Self.bound(now)])
            let requests = db.changesCount
            try db.execute(sql: "DELETE FROM link_bundles WHERE expires_at <= ?", arguments: [Self.bound(now)])
            let bundles = db.changesCount
            try db.execute(sql: "DELETE FROM rate_limits WHERE tat <= ?", arguments: [Self.bound(now)])
            return requests + bundles
        }
    }

    public func deleteLinkBundle(userID: Int64, signatureKey: [UInt8]) throws -> Bool {
        try pool.write { db in
            try db.execute(
                sql: "DELETE FROM link_bundles WHERE user_id = ? AND signature_key = ?",
                arguments: [userID, Data(signatureKey)]
            )
            return db.changesCount > 0
        }
    }
}
