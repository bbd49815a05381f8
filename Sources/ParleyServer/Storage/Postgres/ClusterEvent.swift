/// What one node tells the others through PostgreSQL's `NOTIFY` (channel ``channel``), sent in
/// the transaction that made the change, so it is delivered only if that transaction commits,
/// and in commit order. The notification names rows; nodes read the rows themselves.
enum ClusterEvent: Sendable, Hashable {
    /// The node stored `count` messages of one kind, `size` bytes in all, in `group` at the
    /// consecutive seqs ending at `seq` (count ≥ 1; a commit is always alone).
    case appended(group: Int64, seq: UInt64, kind: Kind, size: Int64, count: UInt64)
    /// The group was destroyed.
    case destroyed(group: Int64)
    /// The device's sessions ended (logout, device removed or revoked, account removed).
    case sessionsEnded(device: Int64)
    /// This node may have missed notifications (its listening connection dropped, or it fell
    /// behind): every cache is read again.
    case missed

    enum Kind: String, Sendable {
        case application = "a"
        case proposal = "p"
        case commit = "c"
    }

    static let channel = "parley_events"

    /// The payload: a letter, the sending node's id, then numbers, space-separated.
    func payload(node: String) -> String {
        switch self {
        case .appended(let group, let seq, let kind, let size, let count) where count == 1:
            // One message: the six fields a node of the version before runs also reads.
            "m \(node) \(group) \(seq) \(kind.rawValue) \(size)"
        case .appended(let group, let seq, let kind, let size, let count):
            "m \(node) \(group) \(seq) \(kind.rawValue) \(size) \(count)"
        case .destroyed(let group): "x \(node) \(group)"
        case .sessionsEnded(let device): "s \(node) \(device)"
        case .missed: "?"
        }
    }

    /// The most messages one notification names: a writer's batch (`LogWriter`'s default).
    static let maxRun = UInt64(LogWriter.defaultMaxBatch)

    /// The event another node sent; nil for this node's own and for anything malformed.
    init?(payload: String, ownNode: String) {
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count >= 3, !parts[1].isEmpty, parts[1] != ownNode, let first = Int64(parts[2]) else { return nil }
        switch (parts[0], parts.count) {
        case ("m", 6), ("m", 7):
            // Six fields: a node of the version before runs, which named one message.
            guard let seq = UInt64(parts[3]), let kind = Kind(rawValue: String(parts[4])),
                let size = Int64(parts[5]), size >= 0,
                let count = parts.count == 7 ? UInt64(parts[6]) : 1, count >= 1, count <= seq,
                // A run is at most one batch of the log writer: a larger count (any role that
                // can connect may NOTIFY) would make this node read and resend a whole log.
                count <= Self.maxRun,
                kind != .commit || count == 1
            else { return nil }
            self = .appended(group: first, seq: seq, kind: kind, size: size, count: count)
        case ("x", 3): self = .destroyed(group: first)
        case ("s", 3): self = .sessionsEnded(device: first)
        default: return nil
        }
    }
}
