import Foundation
import MLS

/// What a home keeps about one group besides its MLS state; sealed at rest.
struct GroupRecord: Codable, Sendable, Equatable {
    var name: String
    /// The last seq applied (and acknowledged).
    var lastSeq: UInt64 = 0
    var needsUpdate = false
    /// When this device last refreshed its leaf, seconds since 1970.
    var updated: Double = 0
    /// Why this member can no longer follow the group (an invitation that could
    /// not be opened, a commit it cannot process); nil while it can.
    var problem: String?
    /// The last failure written to the history, so a repeated one is said once.
    var reported: String?
}

/// A message waiting in the outbox; sealed at rest.
struct OutboxItem: Codable, Sendable {
    /// The `send` id, echoed by the server.
    var id: String
    var group: String
    var text: String
    /// Failed attempts so far; the item is parked at `ParleyClient.outboxAttempts`.
    var attempts = 0
}

extension ParleyClient {
    /// Failed attempts after which a queued message is parked with a notice.
    static let outboxAttempts = 3

    static func nowMilliseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    func rowID(_ group: String) throws -> [UInt8] { try sealingKey().identifier("group", group) }

    static func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    // MARK: Group records

    /// `[4-byte length][record JSON][MLS state]`, sealed under the row's id.
    func sealRecord(_ name: String) throws -> (id: [UInt8], sealed: [UInt8]) {
        guard let record = records[name] else { throw ClientError.noSuchGroup(name) }
        let meta = try JSONEncoder().encode(record)
        guard let length = UInt32(exactly: meta.count) else {
            throw ClientError.invalid("A group record is too large.")
        }
        let state = try groups[name]?.serialized() ?? []
        let plain = withUnsafeBytes(of: length.bigEndian) { Array($0) } + Array(meta) + state
        let id = try rowID(name)
        return (id, try sealingKey().seal(plain, context: "group-record:" + Self.hexString(id)))
    }

    func openRecord(id: [UInt8], sealed: [UInt8]) throws -> (GroupRecord, [UInt8]) {
        let plain = try sealingKey().open(sealed, context: "group-record:" + Self.hexString(id))
        guard plain.count >= 4 else { throw ClientError.invalid("A stored group record is corrupt.") }
        let length = plain[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= plain.count - 4 else { throw ClientError.invalid("A stored group record is corrupt.") }
        let record = try JSONDecoder().decode(GroupRecord.self, from: Data(plain[4..<(4 + length)]))
        return (record, Array(plain[(4 + length)...]))
    }

    func loadGroups() throws {
        for row in try store.groupRecords() {
            let (record, state) = try openRecord(id: row.id, sealed: row.sealed)
            records[record.name] = record
            if !state.isEmpty { groups[record.name] = try Group(serialized: state, policy: policy) }
        }
    }

    /// Saves `name`'s record and state with the history lines its change produced.
    func persist(_ name: String, lines: [HistoryEntry] = [], sentOutboxID: Int64? = nil) throws {
        let (id, sealed) = try sealRecord(name)
        try store.save(
            group: id,
            sealed: sealed,
            lines: try lines.map { try seal($0, group: name) },
            sentOutboxID: sentOutboxID
        )
    }

    func forget(_ name: String) throws {
        groups.removeValue(forKey: name)
        records.removeValue(forKey: name)
        try store.deleteGroup(try rowID(name))
    }

    // MARK: History

    func seal(_ entry: HistoryEntry, group: String) throws -> [UInt8] {
        try sealingKey().seal(
            Array(try JSONEncoder().encode(entry)),
            context: "history:" + Self.hexString(try rowID(group))
        )
    }

    func addHistory(_ entry: HistoryEntry, group: String) throws {
        try store.addHistory(group: try rowID(group), try seal(entry, group: group))
    }

    /// The group's history, oldest first (the order it was applied in).
    public func history(_ name: String) throws -> [HistoryEntry] {
        let id = try rowID(name)
        let key = try sealingKey()
        return try store.history(group: id).map {
            try JSONDecoder().decode(
                HistoryEntry.self,
                from: Data(try key.open($0, context: "history:" + Self.hexString(id)))
            )
        }
    }

    // MARK: Outbox

    func queue(_ item: OutboxItem) throws {
        let id = try rowID(item.group)
        try store.enqueue(
            group: id,
            sealed: try sealingKey().seal(
                Array(try JSONEncoder().encode(item)),
                context: "outbox:" + Self.hexString(id)
            )
        )
    }

    /// Queued messages, oldest first, with their row ids.
    func outbox() throws -> [(row: Int64, item: OutboxItem)] {
        let key = try sealingKey()
        return try store.outbox().map { row in
            let plain = try key.open(row.sealed, context: "outbox:" + Self.hexString(row.group))
            return (row.id, try JSONDecoder().decode(OutboxItem.self, from: Data(plain)))
        }
    }

    func updateQueued(_ row: Int64, _ item: OutboxItem) throws {
        let id = try rowID(item.group)
        try store.updateOutbox(
            row,
            sealed: try sealingKey().seal(
                Array(try JSONEncoder().encode(item)),
                context: "outbox:" + Self.hexString(id)
            )
        )
    }

    /// Gives up on a queued message, saying so in its group's history.
    func park(_ row: Int64, _ item: OutboxItem, because reason: String) throws {
        let line = HistoryEntry(
            seq: records[item.group]?.lastSeq ?? 0,
            time: Self.nowMilliseconds(),
            sender: "",
            kind: .system,
            text: "Your message \u{201C}\(item.text)\u{201D} was not sent: \(reason)"
        )
        try store.park(row, group: try rowID(item.group), line: try seal(line, group: item.group))
    }

    // MARK: Session token

    var sessionToken: String? {
        guard let key, let sealed = try? store.setting("token"), let plain = try? key.open(sealed, context: "token")
        else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }

    func setSessionToken(_ token: String?) throws {
        try store.set("token", try token.map { try sealingKey().seal(Array($0.utf8), context: "token") })
    }
}
