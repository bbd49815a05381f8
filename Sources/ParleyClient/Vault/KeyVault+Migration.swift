import Foundation
import MLS

extension KeyVault {
    /// Re-seals a v1 home (scrypt N = 2^15; group names, senders, seqs, times and the
    /// session token in clear) under a new key at today's cost, with everything but the
    /// username and server URL inside sealed blobs. Returns the new key.
    static func migrateLegacyHome(
        database: ClientStore,
        from old: SealingKey,
        password: String,
        suite: CipherSuiteProvider
    ) throws -> SealingKey {
        let legacy = try database.legacy()
        let salt = suite.randomBytes(SealingKey.saltLength)
        let cost = SealingKey.costForNewHomes
        let new = try SealingKey(password: password, salt: salt, cost: cost)
        let store = SealedHomeStore(database: database, key: new)
        var migrated = ClientStore.Migrated()
        migrated.settings = [
            "salt": salt, "kdf": [UInt8(cost)], "check": try new.seal(Array("parley".utf8), context: "check"),
        ]
        if let token = legacy.settings["token"] { migrated.settings["token"] = try new.seal(token, context: "token") }
        if let signature = legacy.settings["signature_private"] {
            migrated.settings["signature_private"] = try new.seal(
                try old.open(signature, context: "signature"),
                context: "signature"
            )
        }
        migrated.keyPackages = try legacy.keyPackages.map {
            ($0.reference, try new.seal(try old.open($0.sealed, context: "keypackage"), context: "keypackage"))
        }
        for group in legacy.groups {
            // v1 kept each group's last self-update time in a setting of its own.
            let updated =
                legacy.settings["updated:" + group.name].flatMap { Double(String(decoding: $0, as: UTF8.self)) } ?? 0
            let record = GroupRecord(
                name: group.name,
                lastSeq: group.lastSeq,
                needsUpdate: group.needsUpdate,
                updated: updated
            )
            let state = try old.open(group.sealed, context: "group:" + group.name)
            migrated.groups.append(try store.sealed(StoredGroup(record: record, state: state)))
        }
        for setting in legacy.settings.keys where setting.hasPrefix("updated:") {
            migrated.settings[setting] = .some(nil)
        }
        try migrateRows(legacy, from: old, into: store, &migrated)
        try database.replaceLegacy(with: migrated)
        return new
    }

    private static func migrateRows(
        _ legacy: ClientStore.Legacy,
        from old: SealingKey,
        into store: SealedHomeStore,
        _ migrated: inout ClientStore.Migrated
    ) throws {
        for line in legacy.history {
            let text = String(decoding: try old.open(line.sealed, context: "history:" + line.group), as: UTF8.self)
            let entry = HistoryEntry(
                seq: line.seq,
                time: line.time,
                sender: line.sender,
                kind: HistoryEntry.Kind(rawValue: line.kind) ?? .system,
                text: text
            )
            migrated.history.append((store.rowID(line.group), try store.seal(entry, group: line.group)))
        }
        for entry in legacy.outbox {
            let item = OutboxItem(
                id: entry.id,
                group: entry.group,
                text: String(decoding: try old.open(entry.sealed, context: "outbox"), as: UTF8.self)
            )
            let sealed = try store.sealed(item)
            migrated.outbox.append((sealed.group, sealed.sealed))
        }
        migrated.knownKeys = legacy.knownKeys.map { (store.key.identifier("user", $0.user), $0.keys) }
    }
}
