import Foundation
import MLS
import ParleyProtocol

/// The ``HomeStore`` of a real home: ``ClientStore``'s SQLite file, every record sealed with
/// the home's ``SealingKey`` and every row named by a keyed hash, so the file shows neither
/// group names nor who wrote what when. The formats are those of every home since v2:
/// - group record: `[4-byte length][record JSON][MLS state]`, context `group-record:<row id>`;
/// - history line: entry JSON, context `history:<group row id>`;
/// - outbox item: item JSON, context `outbox:<group row id>`;
/// - KeyPackage bundle: ``KeyPackageBundle/storedBytes()``, context `keypackage`.
struct SealedHomeStore: HomeStore {
    let database: ClientStore
    let key: SealingKey

    func rowID(_ group: String) -> [UInt8] { key.identifier("group", group) }

    // MARK: Groups

    func sealed(_ group: StoredGroup) throws -> (id: [UInt8], sealed: [UInt8]) {
        let meta = try JSONEncoder().encode(group.record)
        guard let length = UInt32(exactly: meta.count) else {
            throw ClientError.damagedHome(.oversizedGroupRecord)
        }
        let plain = withUnsafeBytes(of: length.bigEndian) { Array($0) } + Array(meta) + group.state
        let id = rowID(group.record.name)
        return (id, try key.seal(plain, context: "group-record:" + Hex.encode(id)))
    }

    func opened(id: [UInt8], sealed: [UInt8]) throws -> StoredGroup {
        let plain = try key.open(sealed, context: "group-record:" + Hex.encode(id))
        guard plain.count >= 4 else { throw ClientError.damagedHome(.groupRecord) }
        let length = plain[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= plain.count - 4 else { throw ClientError.damagedHome(.groupRecord) }
        let record = try JSONDecoder().decode(GroupRecord.self, from: Data(plain[4..<(4 + length)]))
        return StoredGroup(record: record, state: Array(plain[(4 + length)...]))
    }

    func groups() throws -> [StoredGroup] {
        try database.groupRecords().map { try opened(id: $0.id, sealed: $0.sealed) }
    }

    func save(
        _ group: StoredGroup,
        appending lines: [HistoryEntry],
        confirming confirmed: Int64?,
        consuming consumed: [UInt8]?
    ) throws {
        let (id, sealed) = try sealed(group)
        try database.save(
            group: id,
            sealed: sealed,
            lines: try lines.map { try seal($0, group: group.record.name) },
            sentOutboxID: confirmed,
            usedKeyPackage: consumed
        )
    }

    func deleteGroup(named name: String) throws { try database.deleteGroup(rowID(name)) }

    // MARK: History

    func seal(_ entry: HistoryEntry, group: String) throws -> [UInt8] {
        try key.seal(Array(try JSONEncoder().encode(entry)), context: "history:" + Hex.encode(rowID(group)))
    }

    func history(of name: String) throws -> [HistoryEntry] {
        let id = rowID(name)
        return try database.history(group: id).map {
            try JSONDecoder().decode(
                HistoryEntry.self,
                from: Data(try key.open($0, context: "history:" + Hex.encode(id)))
            )
        }
    }

    func appendHistory(_ entry: HistoryEntry, to name: String) throws {
        try database.addHistory(group: rowID(name), try seal(entry, group: name))
    }

    // MARK: Outbox

    func sealed(_ item: OutboxItem) throws -> (group: [UInt8], sealed: [UInt8]) {
        let id = rowID(item.group)
        return (id, try key.seal(Array(try JSONEncoder().encode(item)), context: "outbox:" + Hex.encode(id)))
    }

    func outbox() throws -> [QueuedMessage] {
        try database.outbox().map { row in
            let plain = try key.open(row.sealed, context: "outbox:" + Hex.encode(row.group))
            return QueuedMessage(row: row.id, item: try JSONDecoder().decode(OutboxItem.self, from: Data(plain)))
        }
    }

    @discardableResult func enqueue(_ item: OutboxItem) throws -> Int64 {
        let (group, sealed) = try sealed(item)
        return try database.enqueue(group: group, sealed: sealed)
    }

    func update(_ queued: QueuedMessage) throws {
        try database.updateOutbox(queued.row, sealed: try sealed(queued.item).sealed)
    }

    func park(_ queued: QueuedMessage, line: HistoryEntry) throws {
        try database.park(
            queued.row,
            group: rowID(queued.item.group),
            line: try seal(line, group: queued.item.group)
        )
    }

    // MARK: KeyPackages and known keys

    func storeKeyPackage(_ bundle: KeyPackageBundle, reference: [UInt8]) throws {
        try database.storeKeyPackage(
            reference: reference,
            sealed: try key.seal(try bundle.storedBytes(), context: "keypackage")
        )
    }

    func keyPackage(reference: [UInt8]) throws -> KeyPackageBundle? {
        try database.keyPackage(reference: reference).map {
            try KeyPackageBundle(storedBytes: try key.open($0, context: "keypackage"))
        }
    }

    func deleteKeyPackage(reference: [UInt8]) throws { try database.deleteKeyPackage(reference: reference) }

    func knownKeys(of user: String) throws -> [UInt8]? { try database.knownKeys(key.identifier("user", user)) }

    func setKnownKeys(_ digest: [UInt8], of user: String) throws {
        try database.setKnownKeys(key.identifier("user", user), digest)
    }

    // Contact pins share the known-keys table under their own keyed-hash ids, sealed: the pins
    // say whom this home talks to.
    func contactPin(of user: String) throws -> ContactPin? {
        try database.knownKeys(key.identifier("contact", user)).map {
            try ContactPin(encoded: try key.open($0, context: "contact"))
        }
    }

    func setContactPin(_ pin: ContactPin, of user: String) throws {
        try database.setKnownKeys(key.identifier("contact", user), try key.seal(try pin.encoded(), context: "contact"))
    }
}
