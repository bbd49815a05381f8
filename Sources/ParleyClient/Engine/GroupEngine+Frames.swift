import Foundation
import MLS
import ParleyProtocol

/// One message this device accepted into a group's history, as features that check the
/// log end to end (fork detection, issue 13) need it.
struct AcceptedMessage: Sendable {
    /// Its position in the group's log, as validated (``LogPosition``).
    var seq: UInt64
    /// The MLS message exactly as the server delivered it.
    var message: [UInt8]
    /// What processing it did; nil for this device's own application message, which MLS
    /// does not decrypt for its sender.
    var content: ProcessedMessage?
    /// The member who signed it (RFC 9420 §6.1), from the MLS tree, never from the frame.
    var sender: LeafIndex?
}

extension GroupEngine {
    // MARK: Applying server frames, failure-isolated

    /// Applies one server frame. Whatever goes wrong stays with that frame's group: it
    /// becomes a system line there (said once), the frame counts as consumed, and every
    /// other frame and group carries on. Only losing the connection ends the caller's loop.
    /// Returns the local name of the group whose history the frame changed, if any.
    @discardableResult
    func apply(_ frame: ServerFrame) async throws -> String? {
        let frame = localized(frame)
        do {
            return try await handle(frame)
        } catch let error as ClientError where error.isConnectionLoss {
            throw error
        } catch let error as HomeWriteFailure {
            // Nothing of it was kept and the connection is closed: the next one replays it.
            throw error
        } catch {
            try recordFailure(of: frame, error)
            return frame.changedGroup
        }
    }

    private func recordFailure(of frame: ServerFrame, _ error: any Error) throws {
        switch frame {
        case .message(let message):
            guard records[message.group] != nil else { return }
            if message.seq > records[message.group]?.lastSeq ?? 0, Int64(exactly: message.seq) != nil {
                records[message.group]?.lastSeq = message.seq
            }
            try report(message.group, "A message from \(message.sender) could not be processed: \(error)")
        case .welcome(let welcome):
            try refuse(welcome, because: "\(error)")
        case .groupDestroyed, .error, .replayFinished:
            break
        }
    }

    /// Applies one server frame (its group already named as this device names it, see
    /// ``localized(_:)``): the heart of staying in sync. Returns the group it changed.
    func handle(_ frame: ServerFrame) async throws -> String? {
        switch frame {
        case .message(let message):
            let before = groups[message.group]
            try handle(message)
            try await checkDeviceChanges(in: message.group, from: before, seq: message.seq)
            return message.group
        case .welcome(let welcome):
            return try await join(welcome)
        case .groupDestroyed(let destroyed):
            for name in locals(calledByServer: destroyed.group) { try handle(destroyed, in: name) }
            return destroyed.group
        case .error, .replayFinished:
            return nil
        }
    }

    /// The server says a group was destroyed. Its word alone deletes nothing (it could say
    /// this of any group): only the notice it kept, the admin's signed `destroy_group`, does,
    /// when it verifies against this member's own state of the group (an admin's signature in
    /// the epoch this member is in). The notice is processed on a copy: a forged one changes
    /// nothing, and says so.
    private func handle(_ destroyed: ServerFrame.GroupDestroyed, in name: String) throws {
        guard let notice = destroyed.notice else {
            return try warn(
                name,
                "Note: the server says this group was destroyed (not confirmed by an admin). Nothing was deleted."
            )
        }
        var copy = groups[name]
        if let message = try? MLSMessage(tlsEncoded: [UInt8](notice)),
            // A copy, discarded: no log time, so no past epoch's grace is judged here.
            let processed = try? copy?.process(message, deliveredAt: nil),
            let group = copy, Self.isAdminDestroy(processed, in: group),
            case .application(let application) = processed
        {
            return try destroyConfirmed(name, by: ParleyGroupPolicy.username(of: application.credential))
        }
        try warn(
            name,
            "Warning: the server says this group was destroyed, but the notice it gave is not an admin's signed "
                + "destroy for this group. Nothing was deleted."
        )
    }

    /// The one place a group is deleted because an admin destroyed it: this device's own
    /// `destroy`, an admin's signed destroy message in the log, or one the server kept.
    func destroyConfirmed(_ name: String, by admin: String? = nil) throws {
        guard records[name] != nil else { return }
        let who = admin.map { "\($0) (an admin)" } ?? "An admin"
        try store.appendHistory(systemLine(name, "\(who) destroyed this group."), to: name)
        try forget(name)
    }

    /// Marks a group this member can no longer follow: said once, never retried.
    func markUnfollowable(_ name: String, _ reason: String) throws {
        guard records[name]?.problem == nil else { return }
        records[name]?.problem = reason
        try report(name, "You can no longer follow this group: \(reason) Ask an admin to remove you and add you again.")
    }

    // MARK: Messages

    private func handle(_ frame: ServerFrame.Message) throws {
        guard var record = records[frame.group] else { return }
        var lines: [HistoryEntry] = []
        switch LogPosition(seq: frame.seq, after: record.lastSeq) {
        case .refused:
            return try report(
                frame.group,
                "The server sent a message numbered \(frame.seq), which no group's log reaches; it was refused."
            )
        case .replay:
            return
        case .gap(let from, let to):
            lines.append(
                systemLine(
                    frame.group,
                    "Messages \(from) to \(to) were not delivered by the server.",
                    seq: frame.seq,
                    time: frame.time
                )
            )
        case .next:
            break
        }
        record.lastSeq = frame.seq
        let note = timeNote(frame.time, after: record.lastTime)
        if note == nil { record.lastTime = max(record.lastTime ?? 0, frame.time) }
        records[frame.group] = record
        // The server accepted this device's `send` of that id, whatever processing its
        // echo does here (a proposal or a commit this device cannot apply still went out).
        // Only the exact bytes sent confirm it: an id alone is the server's word, and a frame
        // naming a pending id with other bytes (junk, or an old message of this device's
        // replayed) is no echo.
        if let id = inFlight[frame.message], frame.id == nil || frame.id == id { confirmedSends[id] = frame.seq }
        // A group this member cannot follow: the frame is acknowledged, nothing else.
        guard record.problem == nil, var group = groups[frame.group] else {
            return try persist(frame.group, lines: lines)
        }
        // `parley upgrade`: a successor's Welcome travels in the log (GroupEngine+Upgrade).
        if case .welcome(let welcome)? = try? MLSMessage(tlsEncoded: [UInt8](frame.message)) {
            return try followSuccessor(welcome, frame, from: group, lines: lines)
        }
        let (produced, confirmed, destroyed) = try process(frame, in: &group)
        lines += produced.map { line in
            var line = line
            line.note = note
            return line
        }
        groups[frame.group] = group
        try persist(frame.group, lines: lines, confirming: confirmed)
        // An admin's signed destroy notice, stored above: now the group goes.
        if destroyed { try destroyConfirmed(frame.group) }
    }

    /// A note for a message whose server time is implausible: far from this device's clock,
    /// or earlier than the group's previous message (the server orders the log, so its
    /// times should never run backwards).
    private func timeNote(_ time: UInt64, after previous: UInt64?) -> String? {
        if let skew = LogPosition.timeNote(serverTime: time, localTime: now()) { return skew }
        guard let previous, time < previous else { return nil }
        return "the server's time for this message is earlier than for the message before it; it may be wrong"
    }

    /// Processes one message of a followed group: the history lines it produces, the
    /// outbox row its echo confirmed, if any, and whether it is an admin's destroy notice.
    private func process(
        _ frame: ServerFrame.Message,
        in group: inout Group
    ) throws -> (lines: [HistoryEntry], confirmed: Int64?, destroyed: Bool) {
        let bytes = [UInt8](frame.message)
        let message = try? MLSMessage(tlsEncoded: bytes)
        let queued = try pendingSend(echoedBy: frame)
        do {
            guard let message else { throw ClientError.notAnMLSMessage }
            // The grace for late messages of a past epoch runs on the log's clock (the server's
            // times, in seconds), never on when this device gets to them: one offline between a
            // commit and a message the server relayed within its grace still reads it.
            let processed = try group.process(message, deliveredAt: frame.time / 1000)
            let sender = Self.signer(of: processed)
            var lines = describe(processed, in: group, frame)
            lines += accepted(
                AcceptedMessage(seq: frame.seq, message: bytes, content: processed, sender: sender),
                in: frame.group,
                group: group
            )
            return (lines, nil, Self.isAdminDestroy(processed, in: group))
        } catch MLSError.ownMessage {
            // This device's own application message, echoed: the outbox has its text.
            guard let queued else {
                recordUnprocessed(seq: frame.seq, message: bytes, in: frame.group)
                return ([], nil, false)
            }
            confirmedSends[queued.item.id] = frame.seq
            let line = HistoryEntry(
                seq: frame.seq,
                time: frame.time,
                sender: identity.username,
                kind: .text,
                text: queued.item.text
            )
            let own = AcceptedMessage(seq: frame.seq, message: bytes, content: nil, sender: group.ownLeaf)
            return ([line] + accepted(own, in: frame.group, group: group), queued.row, false)
        } catch {
            recordUnprocessed(seq: frame.seq, message: bytes, in: frame.group)
            return (try undecryptable(frame, message, in: group, error), nil, false)
        }
    }

    /// The queued message this frame echoes: the exact MLS bytes last submitted for it (with
    /// its `send` id, or a copy replayed without one). Never its text, nor an id alone.
    private func pendingSend(echoedBy frame: ServerFrame.Message) throws -> QueuedMessage? {
        try store.outbox().first { queued in
            queued.item.group == frame.group && queued.item.submitted == frame.message
                && (frame.id == nil || frame.id == queued.item.id)
        }
    }

    /// Checks over every accepted message (fork detection, issue 13): sees each one in log
    /// order, with the group as processing left it, and returns warning lines to store with it.
    func accepted(_ message: AcceptedMessage, in name: String, group: Group) -> [HistoryEntry] {
        checkHistory(message, group: group, in: name)
    }

    private static func signer(of processed: ProcessedMessage) -> LeafIndex? {
        switch processed {
        case .application(let message): message.sender
        case .proposal(_, let proposal):
            if case .member(let leaf) = proposal.sender { leaf } else { nil }
        case .commit(let summary): summary.committerLeaf
        }
    }

    private func undecryptable(
        _ frame: ServerFrame.Message,
        _ message: MLSMessage?,
        in group: Group,
        _ error: any Error
    ) throws -> [HistoryEntry] {
        var lines = [
            systemLine(
                frame.group,
                "A message from \(frame.sender) could not be decrypted: \(error).",
                seq: frame.seq,
                time: frame.time
            )
        ]
        if let message, Self.movesEpoch(message, from: group.epoch) {
            let problem = "a change to the group by \(frame.sender) could not be processed (\(error))."
            records[frame.group]?.problem = problem
            lines.append(
                systemLine(
                    frame.group,
                    "You can no longer follow this group: \(problem) Ask an admin to remove you and add you again.",
                    seq: frame.seq,
                    time: frame.time
                )
            )
        }
        return lines
    }

    /// Whether a message this member failed to process shows that the group moved to an
    /// epoch it cannot reach: a commit in its epoch, or anything from a later one. Such a
    /// group is marked, not retried on every command.
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
}
