import Foundation
import MLS
import ParleyProtocol

/// One line of a group's history as the user sees it.
public struct HistoryEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case text, system }
    public var seq: UInt64
    public var time: UInt64
    public var sender: String
    public var kind: Kind
    public var text: String
    /// A caveat the user should see beside the line (e.g. the server's time for it is far
    /// from this device's clock); nil when there is none. Optional so older homes decode.
    public var note: String? = nil

    public init(seq: UInt64, time: UInt64, sender: String, kind: Kind, text: String, note: String? = nil) {
        self.seq = seq
        self.time = time
        self.sender = sender
        self.kind = kind
        self.text = text
        self.note = note
    }
}

/// What a home keeps about one group besides its MLS state; sealed at rest.
/// Fields added after the first release are optional, so older records still decode.
struct GroupRecord: Codable, Sendable, Equatable {
    /// This device's name for the group, unique in the home: the server's name, or
    /// `name#2` (and so on) for a different MLS group that arrived under a name one of this
    /// device's groups already has. Commands and the store use it.
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
    /// Warnings about the group that stay visible in its status (an unconfirmed destroy,
    /// and later a fork the server showed); nil when none.
    var warnings: [String]?
    /// The latest server time (ms) of an applied message whose time was plausible; a later
    /// message stamped earlier than this is flagged.
    var lastTime: UInt64?
    /// This member's record of the log in the current epoch, for fork and drop detection
    /// (GroupEngine+History.swift); nil until the group is anchored.
    var history: HistoryLedger?
    /// The server's name for the group when it differs from `name` (a newcomer that arrived
    /// under a name in use); nil when they are the same, as for every group of older homes.
    var server: String?

    /// The name the server addresses this group by, in frames sent and received.
    var serverName: String { server ?? name }
}

/// One group as the store keeps it: its record and its serialized MLS state (empty for a
/// group this device knows of but cannot follow, e.g. an invitation it could not open).
struct StoredGroup: Sendable {
    var record: GroupRecord
    var state: [UInt8]
}

/// A message waiting in the outbox; sealed at rest.
struct OutboxItem: Codable, Sendable, Equatable {
    /// The `send` id, echoed by the server.
    var id: String
    var group: String
    var text: String
    /// Failed attempts so far; the item is parked at `GroupEngine.outboxAttempts`.
    var attempts = 0
    /// The exact MLS message last submitted for it: its echo is recognised by these bytes
    /// too, so a copy replayed without its `id` (after a reconnect) still confirms it.
    var submitted: Data?
    /// The MLS group ID of the group it was typed in: if the name now holds another group,
    /// it is parked, never encrypted into that one (nil in items queued before it was kept).
    var groupID: Data?
}

/// An outbox item with the store's row number, which names it for update and removal.
struct QueuedMessage: Sendable, Equatable {
    var row: Int64
    var item: OutboxItem
}
