import Foundation
import MLS
import ParleyProtocol

/// How a `send` ended.
public enum SendOutcome: Sendable, Equatable {
    case sent(seq: UInt64)
    /// Stored in the outbox; it goes out on the next sync.
    case queued
}

/// Builds one MLS message (and its Welcome, for a commit that adds) from a group's current
/// state, given the authenticated_data an application message is to carry.
typealias MessageBuilder = @Sendable (inout Group, _ authenticatedData: [UInt8]) throws -> (MLSMessage, MLSMessage?)

extension GroupEngine {
    // MARK: Submitting

    /// Sends what `build` makes from the group's current state and waits for the server's
    /// answer, processing other frames in order meanwhile. The message went out when its
    /// echo is processed (``confirmedSends``, by the `send` id, or by its bytes for a queued
    /// text); on `wrongEpoch` another commit won: by then it has been processed, so the
    /// message is rebuilt on the new epoch and sent again. Returns the echo's seq.
    ///
    /// A queued text already submitted once (its answer lost with the connection) goes out
    /// again as the same bytes under the same id, never rebuilt: the server keeps one message
    /// per id and answers a resend with that message's echo, so the echo always matches the
    /// bytes the outbox holds. Only `wrongEpoch`, a refusal that says those bytes can never
    /// be stored, lets the text be encrypted anew.
    @discardableResult
    func submit(
        in name: String,
        id: String = UUID().uuidString,
        queued: QueuedMessage? = nil,
        carriesClaim: Bool = true,
        _ build: MessageBuilder
    ) async throws -> UInt64 {
        let connection = try await openConnection()
        var resend = queued?.item.submitted
        for _ in 0..<5 {
            let (bytes, welcome) = try resend.map { ($0, nil) } ?? prepare(name, queued, carriesClaim, build)
            resend = nil
            inFlight[bytes] = id
            defer { inFlight.removeValue(forKey: bytes) }
            try connection.send(.send(.init(id: id, group: serverName(name), message: bytes, welcome: welcome)))
            guard let refusal = try await answer(to: id, on: connection) else {
                return confirmedSends[id] ?? 0
            }
            groups[name]?.discardPendingCommit()
            // Bytes a later flush resends keep their claim; discarded ones give it back.
            if queued == nil || refusal.code == .wrongEpoch {
                withdrawHistoryClaim(Self.authenticatedData(of: bytes), in: name)
            }
            try persist(name)
            guard refusal.code == .wrongEpoch else { throw ClientError.server(refusal) }
        }
        throw ClientError.server(ErrorBody(.wrongEpoch, "The group kept changing; try again."))
    }

    /// Builds the next message of `name` (and its Welcome), saving the group's new state and
    /// the bytes a queued text is submitted as before anything is sent: a pending commit whose
    /// echo arrives after a restart is merged, and a ratchet generation once used is never
    /// used again.
    private func prepare(
        _ name: String,
        _ queued: QueuedMessage?,
        _ carriesClaim: Bool,
        _ build: MessageBuilder
    ) throws -> (message: Data, welcome: Data?) {
        var group = try usableGroup(name)
        let claim = carriesClaim ? authenticatedData(for: name) : []
        let (message, welcome) = try build(&group, claim)
        let bytes = Data(try message.tlsEncoded())
        groups[name] = group
        try persist(name)
        if var queued {
            queued.item.submitted = bytes
            try store.update(queued)
        }
        return (bytes, try welcome.map { Data(try $0.tlsEncoded()) })
    }

    /// The authenticated_data an encoded message carries (RFC 9420 §6: in the clear in both
    /// PublicMessage and PrivateMessage), where this device's history claim is.
    static func authenticatedData(of bytes: Data) -> [UInt8] {
        switch try? MLSMessage(tlsEncoded: [UInt8](bytes)) {
        case .publicMessage(let framed): framed.content.authenticatedData
        case .privateMessage(let framed): framed.authenticatedData
        default: []
        }
    }

    /// Waits until the `send` named `id` is echoed (nil) or refused (the server's error).
    private func answer(to id: String, on connection: any ServerConnection) async throws -> ErrorBody? {
        while confirmedSends[id] == nil {
            let frame = try await nextFrame(on: connection)
            if case .error(let error) = frame, error.id == id { return error.error }
            try await apply(frame)
        }
        return nil
    }

    /// Submits a message that carries no authenticated_data of Parley's own.
    @discardableResult
    func submit(
        in name: String,
        _ build: @escaping @Sendable (inout Group) throws -> (MLSMessage, MLSMessage?)
    ) async throws -> UInt64 {
        try await submit(in: name, carriesClaim: false) { group, _ in try build(&group) }
    }

    /// Commits with `options`; the Commit carries this member's history claim like any
    /// other message (a PublicMessage's authenticated_data is signed, RFC 9420 §6.1).
    func commit(in name: String, _ options: CommitOptions) async throws {
        try await submit(in: name) { group, claim in
            var options = options
            options.authenticatedData = claim
            let output = try group.commit(options)
            return (output.message, output.welcome)
        }
    }

    /// What an outgoing message of `name` carries as authenticated_data (RFC 9420 §6:
    /// covered by the sender's signature, readable by members): the sender's view of the
    /// log (``HistoryClaim``, GroupEngine+History.swift). Application messages, proposals
    /// and commits all carry it.
    func authenticatedData(for name: String) -> [UInt8] { historyClaim(for: name) }

    // MARK: Outbox

    /// Sends a text: stored in the outbox first, so it survives being offline.
    func send(_ text: String, to name: String) async throws -> SendOutcome {
        let group = try usableGroup(name)
        guard (try? ApplicationContent.text(text).encoded()) != nil else {
            throw ClientError.invalid("A message must be 1 to \(ApplicationContent.maxTextBytes) bytes of text.")
        }
        let id = UUID().uuidString
        try store.enqueue(OutboxItem(id: id, group: name, text: text, groupID: Data(group.groupID)))
        do {
            try await connect()
            try await flushOutbox()
            try acknowledgeAll()
        } catch let error as ClientError where error.isConnectionLoss {
            // Sent or not, it stays queued until a replay shows whether the server logged it.
            return .queued
        }
        return confirmedSends[id].map { .sent(seq: $0) } ?? .queued
    }

    /// Sends queued messages, oldest first. A message that cannot go out (its group cannot
    /// be followed, this member left, the server refuses it, or it failed `outboxAttempts`
    /// times) is parked with a line in its group; it never fails the command, nor holds up
    /// messages to other groups. One whose echo already arrived (in the replay after a
    /// reconnect) is no longer queued, so it is never sent twice.
    func flushOutbox() async throws {
        for queued in try store.outbox() {
            // A group a ReInit closed takes nothing more; its successor will (GroupEngine+Upgrade).
            if groups[queued.item.group]?.reInit != nil { continue }
            if let reason = unsendableReason(queued.item) {
                try park(queued, because: reason)
                continue
            }
            do {
                let text = try ApplicationContent.text(queued.item.text).encoded()
                try await submit(in: queued.item.group, id: queued.item.id, queued: queued) { group, data in
                    (try group.encrypt(text, authenticatedData: data), nil)
                }
            } catch let error as ClientError where error.isConnectionLoss {
                throw error
            } catch {
                // Its echo may have arrived meanwhile; otherwise count the attempt.
                guard var retried = try store.outbox().first(where: { $0.row == queued.row }) else { continue }
                retried.item.attempts += 1
                if retried.item.attempts >= Self.outboxAttempts || !Self.isRetryable(error) {
                    try park(retried, because: "\(error)")
                } else {
                    try store.update(retried)
                }
            }
        }
    }

    /// Gives up on a queued message, saying so in its group's history.
    func park(_ queued: QueuedMessage, because reason: String) throws {
        let line = systemLine(
            queued.item.group,
            "Your message \u{201C}\(queued.item.text)\u{201D} was not sent: \(reason)"
        )
        try store.park(queued, line: line)
    }

    private func unsendableReason(_ item: OutboxItem) -> String? {
        let name = item.group
        guard let group = groups[name] else { return "you are not in \(name) any more." }
        if let id = item.groupID, id != Data(group.groupID) {
            return "\(name) is no longer the group it was typed in."
        }
        if let problem = records[name]?.problem { return "you can no longer follow \(name): \(problem)" }
        return group.isActive ? nil : "you are no longer a member of \(name)."
    }

    /// Failures worth another attempt on a later sync.
    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case ClientError.timedOut: true
        // groupClosed: the group is being upgraded; the message goes to its successor.
        case ClientError.server(let body):
            [.rateLimited, .wrongEpoch, .internalError, .groupClosed].contains(body.code)
        default: false
        }
    }

    // MARK: Receiving, for interactive use

    /// Processes the frames that arrive within `timeout` and returns the names of the
    /// groups whose history changed. One task alternates between this and the user's commands.
    func pump(timeout: Duration) async throws -> Set<String> {
        // A reconnect's replay changes groups too (the chat screen must redraw them).
        var changed = try await connect()
        let connection = try await openConnection()
        var wait = timeout
        while let frame = try await connection.next(timeout: wait) {
            if let name = try await apply(frame) { changed.insert(name) }
            wait = .zero
        }
        if !changed.isEmpty { try acknowledgeAll() }
        return changed
    }

    /// Keeps processing frames as they arrive and hands each new history entry of `name`
    /// to `onEntry`, until `stop` returns true.
    func follow(
        _ name: String,
        until stop: @escaping @Sendable () -> Bool,
        onEntry: @Sendable (HistoryEntry) async -> Void
    ) async throws {
        var seen = try history(name).count
        while !stop() {
            let connection = try await openConnection()
            guard let frame = try await connection.next(timeout: .milliseconds(250)) else { continue }
            try await apply(frame)
            try acknowledgeAll()
            let entries = try history(name)
            for entry in entries.dropFirst(seen) { await onEntry(entry) }
            seen = entries.count
        }
    }
}
