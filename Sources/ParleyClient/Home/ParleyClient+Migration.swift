import Foundation
import MLS

extension ParleyClient {
    /// Derives the sealing key; the first time, creates the salt, the cost and a check value.
    /// A home from before sealed metadata (no stored cost) is re-sealed on the way.
    func unlockOrInitialise(password: String) throws -> SealingKey {
        guard let salt = try store.setting("salt"), let check = try store.setting("check") else {
            let key = try freshKey(password: password)
            try store.set("check", try key.seal(Array("parley".utf8), context: "check"))
            self.key = key
            return key
        }
        let cost = try store.setting("kdf").map { stored -> Int in
            guard stored.count == 1 else { throw ClientError.invalid("The home's key-derivation cost is corrupt.") }
            return Int(stored[0])
        }
        let key = try SealingKey(password: password, salt: salt, cost: cost ?? SealingKey.legacyCost)
        guard try key.open(check, context: "check") == Array("parley".utf8) else { throw ClientError.wrongPassword }
        self.key = cost == nil ? try migrateLegacyHome(from: key, password: password) : key
        return self.key!
    }

    /// A new salt at today's cost, stored (the check value is the caller's).
    private func freshKey(password: String) throws -> SealingKey {
        let salt = suite.randomBytes(SealingKey.saltLength)
        let cost = SealingKey.costForNewHomes
        let key = try SealingKey(password: password, salt: salt, cost: cost)
        try store.set("salt", salt)
        try store.set("kdf", [UInt8(cost)])
        return key
    }

    /// Re-seals a v1 home (scrypt N = 2^15; group names, senders, seqs, times
    /// and the session token in clear) under a new key at today's cost, with
    /// everything but the username and server URL inside sealed blobs.
    private func migrateLegacyHome(from old: SealingKey, password: String) throws -> SealingKey {
        let legacy = try store.legacy()
        let salt = suite.randomBytes(SealingKey.saltLength)
        let cost = SealingKey.costForNewHomes
        let new = try SealingKey(password: password, salt: salt, cost: cost)
        key = new
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
            let updated =
                legacy.settings["updated:" + group.name].flatMap { Double(String(decoding: $0, as: UTF8.self)) } ?? 0
            records[group.name] = GroupRecord(
                name: group.name,
                lastSeq: group.lastSeq,
                needsUpdate: group.needsUpdate,
                updated: updated
            )
            groups[group.name] = try Group(
                serialized: try old.open(group.sealed, context: "group:" + group.name),
                policy: policy
            )
            migrated.groups.append(try sealRecord(group.name))
        }
        for setting in legacy.settings.keys where setting.hasPrefix("updated:") {
            migrated.settings[setting] = .some(nil)
        }
        for line in legacy.history {
            let text = String(decoding: try old.open(line.sealed, context: "history:" + line.group), as: UTF8.self)
            let entry = HistoryEntry(
                seq: line.seq,
                time: line.time,
                sender: line.sender,
                kind: HistoryEntry.Kind(rawValue: line.kind) ?? .system,
                text: text
            )
            migrated.history.append((try rowID(line.group), try seal(entry, group: line.group)))
        }
        for entry in legacy.outbox {
            let item = OutboxItem(
                id: entry.id,
                group: entry.group,
                text: String(decoding: try old.open(entry.sealed, context: "outbox"), as: UTF8.self)
            )
            let id = try rowID(entry.group)
            migrated.outbox.append(
                (id, try new.seal(Array(try JSONEncoder().encode(item)), context: "outbox:" + Self.hexString(id)))
            )
        }
        migrated.knownKeys = legacy.knownKeys.map { (new.identifier("user", $0.user), $0.keys) }
        try store.replaceLegacy(with: migrated)
        records = [:]
        groups = [:]
        return new
    }
}
