import ParleyServer

/// One way a crash run lost, reordered or duplicated a message.
enum CrashFinding: Hashable, Sendable, CustomStringConvertible {
    /// The server acknowledged `seq` to the sender, and its log has no such entry.
    case acknowledgedMissingOnServer(group: String, seq: UInt64, text: String)
    /// A member's history does not show the acknowledged text at the acknowledged seq.
    case acknowledgedMissingAtMember(client: Int, group: String, seq: UInt64, text: String)
    /// A sender's acknowledgements did not come in increasing seq order.
    case acknowledgedOutOfOrder(client: Int, seq: UInt64, previous: UInt64)
    /// The server's log of a group skips a seq that not every member had acknowledged
    /// (acknowledged ones may be pruned), or ends before the group's last seq.
    case gapInLog(group: String, missing: UInt64)
    /// A text this client asked to send never reached its own history.
    case neverDelivered(client: Int, group: String, text: String)
    /// The same text shows more than once in a member's history.
    case duplicated(client: Int, group: String, text: String)
    /// A member's history is not in increasing seq order.
    case historyOutOfOrder(client: Int, group: String)
    /// Two members of a group hold different messages or orders.
    case diverged(group: String, client: Int, from: Int)

    var description: String {
        switch self {
        case .acknowledgedMissingOnServer(let group, let seq, let text):
            "lost: \(text) was acknowledged as #\(seq) of \(group), and the server's log has no #\(seq)"
        case .acknowledgedMissingAtMember(let client, let group, let seq, let text):
            "lost: \(text) was acknowledged as #\(seq) of \(group), and client \(client) does not show it there"
        case .acknowledgedOutOfOrder(let client, let seq, let previous):
            "order: client \(client) was acknowledged #\(seq) after #\(previous)"
        case .gapInLog(let group, let missing):
            "gap: the server's log of \(group) has no #\(missing), which not every member had acknowledged"
        case .neverDelivered(let client, let group, let text):
            "lost: client \(client) sent \(text) to \(group) and it never arrived"
        case .duplicated(let client, let group, let text):
            "duplicate: client \(client) shows \(text) in \(group) more than once"
        case .historyOutOfOrder(let client, let group):
            "order: client \(client)'s history of \(group) is not in seq order"
        case .diverged(let group, let client, let from):
            "diverged: clients \(client) and \(from) hold different messages in \(group)"
        }
    }
}

/// Checks a crash run's outcome: the ledger of what was sent and acknowledged, every member's
/// history once all have converged, and the server's log as stored on disk.
struct CrashCheck {
    /// One line as every member must see it: the server's seq, who sent it, what it says.
    struct Line: Hashable, Sendable {
        var seq: UInt64
        var sender: String
        var text: String
    }

    /// One member's history of its group, text lines only.
    struct View: Sendable {
        var client: Int
        var group: String
        var entries: [Line]
    }

    var submitted: [CrashLedger.Submitted]
    var acknowledged: [CrashLedger.Acknowledged]
    var views: [View]
    var log: [LogInspection.Row]
    var groups: [LogInspection.GroupRow]

    func findings() -> [CrashFinding] {
        serverFindings() + acknowledgementFindings() + historyFindings() + deliveryFindings()
    }

    /// Each group's log holds every seq from the first one not every member acknowledged
    /// through the group's last seq. The server prunes what all members acknowledged (at
    /// each start), so only those may be gone.
    func serverFindings() -> [CrashFinding] {
        var findings: [CrashFinding] = []
        let stored = Dictionary(grouping: log, by: \.group).mapValues { Set($0.map(\.seq)) }
        for group in groups where group.lastSeq > group.acknowledgedByAll {
            let present = stored[group.group] ?? []
            for seq in (max(0, group.acknowledgedByAll) + 1)...group.lastSeq where !present.contains(seq) {
                findings.append(.gapInLog(group: group.group, missing: UInt64(seq)))
            }
        }
        return findings
    }

    /// Whether the server still holds, or was allowed to prune, `seq` of `group`.
    func isStoredOrPruned(_ group: String, _ seq: UInt64) -> Bool {
        guard let row = groups.first(where: { $0.group == group }), let seq = Int64(exactly: seq), seq <= row.lastSeq
        else { return false }
        return seq <= row.acknowledgedByAll || log.contains { $0.group == group && $0.seq == seq }
    }

    /// Every acknowledged message is in the server's log (or was pruned once every member
    /// had acknowledged it) and in every member's history at its seq, and each sender's
    /// acknowledgements rose.
    func acknowledgementFindings() -> [CrashFinding] {
        var findings: [CrashFinding] = []
        var previous: [Int: UInt64] = [:]
        for ack in acknowledged {
            if let last = previous[ack.client], last >= ack.seq {
                findings.append(.acknowledgedOutOfOrder(client: ack.client, seq: ack.seq, previous: last))
            }
            previous[ack.client] = ack.seq
            if !isStoredOrPruned(ack.group, ack.seq) {
                findings.append(.acknowledgedMissingOnServer(group: ack.group, seq: ack.seq, text: ack.text))
            }
            for view in views where view.group == ack.group {
                if !view.entries.contains(where: { $0.seq == ack.seq && $0.text == ack.text }) {
                    findings.append(
                        .acknowledgedMissingAtMember(
                            client: view.client,
                            group: ack.group,
                            seq: ack.seq,
                            text: ack.text
                        )
                    )
                }
            }
        }
        return findings
    }

    /// Histories are in seq order, hold each text once, and agree within a group.
    func historyFindings() -> [CrashFinding] {
        var findings: [CrashFinding] = []
        for view in views {
            if zip(view.entries, view.entries.dropFirst()).contains(where: { $0.seq >= $1.seq }) {
                findings.append(.historyOutOfOrder(client: view.client, group: view.group))
            }
            let counts = Dictionary(view.entries.map { ($0.text, 1) }, uniquingKeysWith: +)
            for (text, count) in counts.sorted(by: { $0.key < $1.key }) where count > 1 {
                findings.append(.duplicated(client: view.client, group: view.group, text: text))
            }
        }
        for (group, members) in Dictionary(grouping: views, by: \.group) {
            guard let first = members.first else { continue }
            for other in members.dropFirst() where other.entries != first.entries {
                findings.append(.diverged(group: group, client: other.client, from: first.client))
            }
        }
        return findings
    }

    /// Every text asked for arrived, acknowledged at the time or sent later from the outbox.
    func deliveryFindings() -> [CrashFinding] {
        var shown: [Int: Set<String>] = [:]
        for view in views { shown[view.client, default: []].formUnion(view.entries.map(\.text)) }
        return submitted.compactMap { sent in
            shown[sent.client, default: []].contains(sent.text)
                ? nil : .neverDelivered(client: sent.client, group: sent.group, text: sent.text)
        }
    }
}
