import Foundation
import MLS
import ParleyProtocol

extension ParleyClient {
    // MARK: Applying server frames, failure-isolated

    /// Applies one server frame. Whatever goes wrong stays with that frame's
    /// group: it becomes a system line there (said once), the frame counts as
    /// consumed, and every other frame and group carries on. Only losing the
    /// connection ends the caller's loop.
    func apply(_ frame: ServerFrame) async throws {
        do {
            try await handle(frame)
        } catch let error as ClientError where error.isConnectionLoss {
            throw error
        } catch {
            try recordFailure(of: frame, error)
        }
    }

    private func recordFailure(of frame: ServerFrame, _ error: any Error) throws {
        switch frame {
        case .message(let message):
            guard records[message.group] != nil else { return }
            if message.seq > records[message.group]?.lastSeq ?? 0 { records[message.group]?.lastSeq = message.seq }
            try report(message.group, "A message from \(message.sender) could not be processed: \(error)")
        case .welcome(let welcome):
            try refuse(welcome, because: "\(error)")
        case .groupDestroyed, .error, .replayFinished:
            break
        }
    }

    /// Writes `text` as a system line of `name` unless it is the failure
    /// already reported there last, and saves the group's record.
    func report(_ name: String, _ text: String) throws {
        guard records[name] != nil else { return }
        let line = records[name]?.reported == text ? [] : [systemLine(name, text)]
        records[name]?.reported = text
        try persist(name, lines: line)
    }

    func systemLine(_ name: String, _ text: String, seq: UInt64? = nil, time: UInt64? = nil) -> HistoryEntry {
        HistoryEntry(
            seq: seq ?? records[name]?.lastSeq ?? 0,
            time: time ?? Self.nowMilliseconds(),
            sender: "",
            kind: .system,
            text: text
        )
    }

    /// Marks a group this member can no longer follow: said once, never retried.
    func markUnfollowable(_ name: String, _ reason: String) throws {
        guard records[name]?.problem == nil else { return }
        records[name]?.problem = reason
        try report(name, "You can no longer follow this group: \(reason) Ask an admin to remove you and add you again.")
    }

    /// Applies one server frame: the heart of staying in sync.
    func handle(_ frame: ServerFrame) async throws {
        switch frame {
        case .message(let message):
            try handle(message)
        case .welcome(let welcome):
            try await join(welcome)
        case .groupDestroyed(let destroyed):
            guard records[destroyed.group] != nil else { return }
            try addHistory(systemLine(destroyed.group, "An admin destroyed this group."), group: destroyed.group)
            try forget(destroyed.group)
        case .error, .replayFinished:
            break
        }
    }

    private func handle(_ frame: ServerFrame.Message) throws {
        guard var record = records[frame.group] else { return }
        // Frames seen twice (a replay after a reconnect) are dropped by seq.
        guard frame.seq > record.lastSeq else { return }
        var lines: [HistoryEntry] = []
        // frame.seq > lastSeq, so lastSeq + 1 and frame.seq - 1 cannot overflow.
        if frame.seq - record.lastSeq > 1 {
            lines.append(
                systemLine(
                    frame.group,
                    "Messages \(record.lastSeq + 1) to \(frame.seq - 1) were not delivered by the server.",
                    seq: frame.seq,
                    time: frame.time
                )
            )
        }
        record.lastSeq = frame.seq
        records[frame.group] = record
        // A group this member cannot follow: the frame is acknowledged, nothing else.
        guard record.problem == nil, var group = groups[frame.group] else {
            return try persist(frame.group, lines: lines)
        }
        var sentOutboxID: Int64?
        let message = try? MLSMessage(tlsEncoded: [UInt8](frame.message))
        do {
            guard let message else { throw ClientError.invalid("it is not an MLS message") }
            let processed = try group.process(message)
            lines += describe(processed, in: group, frame)
        } catch MLSError.ownMessage {
            // Our own application message, echoed: the outbox has its text.
            if let id = frame.id, let queued = try outbox().first(where: { $0.item.id == id }) {
                lines.append(
                    HistoryEntry(
                        seq: frame.seq,
                        time: frame.time,
                        sender: username ?? frame.sender,
                        kind: .text,
                        text: queued.item.text
                    )
                )
                sentOutboxID = queued.row
            }
        } catch {
            lines.append(
                systemLine(
                    frame.group,
                    "A message from \(frame.sender) could not be decrypted: \(error).",
                    seq: frame.seq,
                    time: frame.time
                )
            )
            if let message, Self.movesEpoch(message, from: group.epoch) {
                records[frame.group]?.problem =
                    "a change to the group by \(frame.sender) could not be processed (\(error))."
                lines.append(
                    systemLine(
                        frame.group,
                        "You can no longer follow this group: \(records[frame.group]?.problem ?? "") "
                            + "Ask an admin to remove you and add you again.",
                        seq: frame.seq,
                        time: frame.time
                    )
                )
            }
        }
        groups[frame.group] = group
        try persist(frame.group, lines: lines, sentOutboxID: sentOutboxID)
    }

    /// Whether a message this member failed to process shows that the group
    /// moved to an epoch it cannot reach: a commit in its epoch, or anything
    /// from a later one. Such a group is marked, not retried on every command.
    static func movesEpoch(_ message: MLSMessage, from epoch: UInt64) -> Bool {
        switch message {
        case .publicMessage(let message):
            let content = message.content
            if case .commit = content.body { return content.epoch >= epoch }
            return content.epoch > epoch
        case .privateMessage(let message):
            return message.epoch > epoch || (message.epoch == epoch && message.contentType == .commit)
        case .welcome, .groupInfo, .keyPackage:
            return false
        }
    }

    /// History lines for what a message did. Who did it comes from the MLS
    /// credential of the leaf that signed it, never from the frame's `sender`,
    /// which the server writes and could forge.
    private func describe(
        _ processed: ProcessedMessage,
        in group: Group,
        _ frame: ServerFrame.Message
    ) -> [HistoryEntry] {
        let actor = { (leaf: LeafIndex) in
            group.tree.leafNode(at: leaf).flatMap { ParleyGroupPolicy.username(of: $0.credential) } ?? "a member"
        }
        switch processed {
        case .application(let message):
            let sender = ParleyGroupPolicy.username(of: message.credential) ?? frame.sender
            return [
                HistoryEntry(
                    seq: frame.seq,
                    time: frame.time,
                    sender: sender,
                    kind: .text,
                    text: String(decoding: message.data, as: UTF8.self)
                )
            ]
        case .proposal(_, let proposal):
            if case .remove(let leaf) = proposal.proposal, proposal.sender == .member(leaf) {
                return [
                    systemLine(
                        frame.group,
                        "\(actor(leaf)) asked to leave the group.",
                        seq: frame.seq,
                        time: frame.time
                    )
                ]
            }
            return []
        case .commit(let summary):
            return describe(summary, by: actor(summary.committerLeaf), frame)
        }
    }

    private func describe(
        _ summary: CommitSummary,
        by committer: String,
        _ frame: ServerFrame.Message
    ) -> [HistoryEntry] {
        var lines: [HistoryEntry] = []
        let names = { (members: [(index: LeafIndex, credential: Credential)]) in
            Array(Set(members.compactMap { ParleyGroupPolicy.username(of: $0.credential) })).sorted().joined(
                separator: ", "
            )
        }
        let line = { (text: String) in self.systemLine(frame.group, text, seq: frame.seq, time: frame.time) }
        if !summary.added.isEmpty { lines.append(line("\(committer) added \(names(summary.added)).")) }
        if !summary.removed.isEmpty {
            lines.append(
                line(
                    summary.removedSelf
                        ? "You were removed from the group." : "\(committer) removed \(names(summary.removed))."
                )
            )
        }
        return lines
    }

    // MARK: Welcomes

    /// Joins from a Welcome with the matching stored KeyPackage, then plans a
    /// self-update. A Welcome that cannot be used (random bytes, a KeyPackage
    /// this device never made, a tree that does not match) is recorded once
    /// and acknowledged; it is never retried.
    private func join(_ frame: ServerFrame.WelcomeFrame) async throws {
        // Ignore a Welcome for a group this member follows, and one already seen.
        if groups[frame.group] != nil, records[frame.group]?.problem == nil { return }
        guard frame.seq > records[frame.group]?.lastSeq ?? 0 else { return }
        guard case .welcome(let welcome) = try MLSMessage(tlsEncoded: [UInt8](frame.welcome)) else {
            throw ClientError.invalid("it is not a Welcome")
        }
        let key = try sealingKey()
        guard let entry = try welcome.secrets.first(where: { try store.keyPackage(reference: $0.newMember) != nil }),
            let sealed = try store.keyPackage(reference: entry.newMember)
        else {
            throw ClientError.invalid("it names none of this device's key packages")
        }
        let bundle = try decodeBundle(try key.open(sealed, context: "keypackage"))
        let group: Group
        do {
            group = try Group.join(welcome: welcome, keyPackage: bundle, policy: policy)
        } catch let first as MLSError {
            // Other clients may leave the tree out of the Welcome; the server keeps it.
            let (api, token) = try await requireAPI()
            let response = try await api.call(
                .GET,
                "/v1/groups/\(Self.pathComponent(frame.group))/tree",
                token: token,
                as: API.RatchetTree.self
            )
            guard let tree = try? RatchetTree(suite, encoded: [UInt8](response.tree)),
                let joined = try? Group.join(welcome: welcome, keyPackage: bundle, ratchetTree: tree, policy: policy)
            else { throw first }
            group = joined
        }
        groups[frame.group] = group
        records[frame.group] = GroupRecord(name: frame.group, lastSeq: frame.seq, needsUpdate: true)
        if !bundle.keyPackage.isLastResort { try store.deleteKeyPackage(reference: entry.newMember) }
        try persist(
            frame.group,
            lines: [systemLine(frame.group, "You joined \(frame.group).", seq: frame.seq, time: frame.time)]
        )
        try socket?.send(.ack(.init(group: frame.group, seq: frame.seq)))
    }

    /// Records an unusable Welcome: a group entry without state that says why,
    /// so its frames are acknowledged and ignored, and the user sees it once.
    private func refuse(_ frame: ServerFrame.WelcomeFrame, because reason: String) throws {
        guard frame.seq > records[frame.group]?.lastSeq ?? 0 else { return }
        if records[frame.group] == nil { records[frame.group] = GroupRecord(name: frame.group) }
        records[frame.group]?.lastSeq = frame.seq
        let problem = "an invitation to it could not be opened (\(reason))."
        if groups[frame.group] == nil { records[frame.group]?.problem = problem }
        try report(
            frame.group,
            "You were invited to \(frame.group), but the invitation could not be opened: \(reason). It was ignored."
        )
        try socket?.send(.ack(.init(group: frame.group, seq: frame.seq)))
    }

    /// A group or user name as one URL path segment, whatever it contains.
    static func pathComponent(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? ""
    }
}
