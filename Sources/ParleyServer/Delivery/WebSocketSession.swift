import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ParleyProtocol
import Synchronization

/// One device's WebSocket: first a replay from its cursors (pending
/// Welcomes, then each group's messages, then `replayFinished`), then live
/// delivery, while its frames are read and answered.
///
/// A class: its tasks (writer, reader) and their frames share one reference
/// instead of each holding a copy of every field, the whole `ServerConfiguration` included,
/// for as long as the connection lasts (idle connections' memory, issue 15).
final class WebSocketSession: Sendable {
    let device: DeviceRecord
    let storage: any ServerStorage
    let delivery: DeliveryService
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let logger: Logger
    /// The connection itself, to end it when its client stops reading.
    let channel: any Channel
    /// The session the socket was opened with: re-checked so the socket does not outlive it.
    let session: SessionCheck
    /// Re-checks `session` every `session_check_seconds` while the socket is open.
    let sessionWatch: SessionWatch

    init(
        device: DeviceRecord,
        storage: any ServerStorage,
        delivery: DeliveryService,
        hub: ConnectionHub,
        configuration: ServerConfiguration,
        logger: Logger,
        channel: any Channel,
        session: SessionCheck,
        sessionWatch: SessionWatch
    ) {
        self.device = device
        self.storage = storage
        self.delivery = delivery
        self.hub = hub
        self.configuration = configuration
        self.logger = logger
        self.channel = channel
        self.session = session
        self.sessionWatch = sessionWatch
    }

    /// How long a connection whose queue overflowed may still drain before it is cut.
    static let overflowGrace: Duration = .seconds(2)

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let (channel, logger, device) = (channel, logger, device)
        let (id, stream, queue) = hub.connect(deviceID: device.id) {
            // The writer may be blocked on a client that does not read; it sends close 1008 if it
            // gets to; otherwise the connection is cut after a grace period.
            logger.warning("outbound queue overflow, closing", metadata: ["device": "\(device.id)"])
            Task {
                try? await Task.sleep(for: Self.overflowGrace)
                channel.close(promise: nil)
            }
        }
        logger.info("device connected", metadata: ["user": "\(device.userName)", "device": "\(device.id)"])
        // An idle socket whose session ended in another process is closed by this check; the
        // writer then sends `unauthorized` and closes.
        let watchKey = sessionWatch.add { [self] in
            guard !session.isValid(maxAge: .zero) else { return }
            endSession(connection: id)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.write(stream, queue: queue, to: outbound) }
            group.addTask { await self.read(inbound, connection: id) }
            await group.next()
            group.cancelAll()
            sessionWatch.remove(watchKey)
            hub.disconnect(deviceID: device.id, id: id)
        }
        logger.info("device disconnected", metadata: ["device": "\(device.id)"])
    }

    // MARK: Reading

    private func read(_ inbound: WebSocketInboundStream, connection: UInt64) async {
        do {
            for try await message in inbound.messages(maxSize: configuration.maxFrameBytes * 4) {
                // A frame is handled only while its session lasts (logout, `admin remove-user`
                // or `remove-device` from another process, expiry); later ones are dropped
                // while the writer closes the socket.
                guard session.isValid(maxAge: .zero) else {
                    endSession(connection: connection)
                    continue
                }
                await handle(message)
            }
        } catch {
            logger.debug("read ended", metadata: ["device": "\(device.id)", "error": "\(error)"])
        }
    }

    private func handle(_ message: WebSocketMessage) async {
        let data: Data
        switch message {
        case .text(let text): data = Data(text.utf8)
        case .binary(let buffer): data = Data(buffer.readableBytesView)
        }
        guard data.count <= configuration.maxFrameBytes * 2 else {
            reply(nil, nil, ErrorBody(.tooLarge))
            return
        }
        let frame: ClientFrame
        do {
            frame = try WireJSON.decode(ClientFrame.self, from: data)
        } catch {
            reply(nil, nil, ErrorBody(.malformedRequest, "The frame is not a valid Parley frame."))
            return
        }
        switch frame {
        case .send(let send):
            do {
                try await delivery.submit(send, from: device)
            } catch {
                reply(send.id, send.group, WireError.body(for: error, logger: logger))
            }
        case .ack(let ack):
            // Stored by the log writer with others; a refusal is answered from its thread.
            let (hub, logger, deviceID) = (hub, logger, device.id)
            do {
                try delivery.acknowledge(ack, from: device) { error in
                    let body = WireError.body(for: error, logger: logger)
                    hub.send(.frame(.error(.init(id: nil, group: ack.group, error: body))), to: deviceID)
                }
            } catch {
                reply(nil, ack.group, WireError.body(for: error, logger: logger))
            }
        }
    }

    // MARK: Session

    /// Tells the writer to send `unauthorized` and close, unless a newer connection took over.
    private func endSession(connection: UInt64) {
        guard session.markEnded() else { return }
        logger.info("session ended, closing", metadata: ["device": "\(device.id)"])
        hub.close(deviceID: device.id, connection: connection)
    }

    private func reply(_ id: String?, _ group: String?, _ error: ErrorBody) {
        hub.send(.frame(.error(.init(id: id, group: group, error: error))), to: device.id)
    }

    // MARK: Writing

    private func write(
        _ stream: AsyncStream<Outbound>,
        queue: OutboundQueue,
        to outbound: WebSocketOutboundWriter
    ) async {
        var writer = FrameWriter(outbound: outbound)
        do {
            var lastSent = try await replay(&writer)
            try await writer.send(.replayFinished)
            for await event in stream {
                defer { queue.written(event.cost) }
                // Live delivery re-checks the session at most once a second: cheap under load,
                // and nothing more reaches a device whose session ended.
                if event.isDelivery, !session.isValid(maxAge: .seconds(1)) {
                    session.markEnded()
                    try await writer.send(.error(.init(id: nil, group: nil, error: ErrorBody(.unauthorized))))
                    try? await outbound.close(.policyViolation, reason: SessionCheck.closeReason)
                    return
                }
                switch event {
                case .message(let groupID, let frame, let encoded):
                    try await deliver(frame, groupID: groupID, lastSent: &lastSent, &writer, encoded: encoded)
                case .echo(let groupID, let frame):
                    try await deliver(frame, groupID: groupID, lastSent: &lastSent, &writer, again: true)
                case .welcome(let groupID, let frame):
                    try await writer.send(.welcome(frame))
                    lastSent[groupID] = frame.seq
                case .frame(let frame):
                    try await writer.send(frame)
                case .replaced:
                    try? await outbound.close(.goingAway, reason: "replaced by a newer connection of this device")
                    return
                case .sessionEnded:
                    try? await outbound.close(.policyViolation, reason: SessionCheck.closeReason)
                    return
                }
            }
            if queue.overflowed {
                try? await outbound.close(.policyViolation, reason: "too much unread; reconnect to catch up")
                return
            }
            // The hub finished the stream: the server is shutting down.
            try? await outbound.close(.goingAway, reason: "server shutting down")
        } catch {
            logger.debug("write ended", metadata: ["device": "\(device.id)", "error": "\(error)"])
        }
    }

    /// Sends a live message in log order: one already sent is skipped (unless `again`, for the
    /// echo of a resend), and a gap before it is filled from storage.
    private func deliver(
        _ frame: ServerFrame.Message,
        groupID: Int64,
        lastSent: inout [Int64: UInt64],
        _ writer: inout FrameWriter,
        again: Bool = false,
        encoded: ByteBuffer? = nil
    ) async throws {
        // Seqs start at 1 (the server assigns them), so frame.seq - 1 cannot wrap.
        let last = lastSent[groupID] ?? frame.seq - 1
        guard frame.seq > last else {
            if again { try await writer.send(.message(frame)) }
            return
        }
        if frame.seq - last > 1 {
            // Something was queued out of order or dropped: fill the gap from storage.
            try await sendLog(groupID: groupID, name: frame.group, after: last, through: frame.seq - 1, &writer)
        }
        if let encoded {
            try await writer.send(encoded: encoded)
        } else {
            try await writer.send(.message(frame))
        }
        lastSent[groupID] = frame.seq
    }

    /// Sends what the device missed; returns the last seq sent per group.
    private func replay(_ writer: inout FrameWriter) async throws -> [Int64: UInt64] {
        var lastSent: [Int64: UInt64] = [:]
        let notices = try storage.notices(forDevice: device.id)
        for notice in notices {
            try await writer.send(.groupDestroyed(.init(group: notice.group, notice: notice.notice)))
        }
        // Only those sent: a notice another node stored meanwhile waits for the next replay.
        try storage.clearNotices(forDevice: device.id, ids: notices.map(\.id))
        for welcome in try storage.welcomes(forDevice: device.id) {
            try await writer.send(
                .welcome(
                    .init(
                        group: welcome.groupName,
                        seq: welcome.seq,
                        time: welcome.time,
                        welcome: Data(welcome.data)
                    )
                )
            )
            lastSent[welcome.groupID] = welcome.seq
        }
        for membership in try storage.memberships(ofDevice: device.id) {
            let from = max(membership.ackedSeq, membership.joinedSeq, lastSent[membership.groupID] ?? 0)
            lastSent[membership.groupID] =
                try await sendLog(
                    groupID: membership.groupID,
                    name: membership.groupName,
                    after: from,
                    through: membership.leftSeq,
                    &writer
                ) ?? from
        }
        return lastSent
    }

    @discardableResult
    private func sendLog(
        groupID: Int64,
        name: String,
        after: UInt64,
        through: UInt64?,
        _ writer: inout FrameWriter
    ) async throws -> UInt64? {
        var cursor = after
        var last: UInt64?
        while true {
            let page = try storage.messages(groupID: groupID, after: cursor, through: through, limit: 500)
            for entry in page {
                try await writer.send(
                    .message(
                        .init(
                            group: name,
                            seq: entry.seq,
                            time: entry.time,
                            sender: entry.sender,
                            message: Data(entry.data),
                            // The device's own message carries its id, as its live echo does.
                            id: entry.senderDevice == device.id ? entry.clientID : nil
                        )
                    )
                )
                last = entry.seq
            }
            guard page.count == 500, let next = page.last?.seq else { return last }
            cursor = next
        }
    }
}

/// Whether the session a socket was opened with still exists and has not expired: gone
/// after logout, `parley admin remove-user` / `remove-device` (also from another process,
/// which changes the sessions table underneath this one) or at its expiry time.
final class SessionCheck: Sendable {
    static let closeReason = "session ended (logged out, removed or expired); log in again"
    private let storage: any ServerStorage
    private let tokenHash: [UInt8]
    private let state = Mutex<(checked: ContinuousClock.Instant, valid: Bool, ended: Bool)>(
        (ContinuousClock.now, true, false)
    )

    init(storage: any ServerStorage, tokenHash: [UInt8]) {
        self.storage = storage
        self.tokenHash = tokenHash
    }

    /// Asks storage unless it answered within `maxAge`. A storage failure counts as ended:
    /// a socket is not kept open on a session nobody can confirm.
    func isValid(maxAge: Duration) -> Bool {
        let now = ContinuousClock.now
        let cached = state.withLock { state -> Bool? in
            guard !state.ended, state.valid else { return false }
            return maxAge > .zero && now - state.checked < maxAge ? true : nil
        }
        if let cached { return cached }
        let valid = (try? storage.session(tokenHash: tokenHash, now: Clock.milliseconds())) != nil
        state.withLock { state in
            state.checked = now
            state.valid = state.valid && valid
        }
        return valid
    }

    /// Records that the session's end is being handled; true the first time only.
    @discardableResult
    func markEnded() -> Bool {
        state.withLock { state in
            defer { state.ended = true }
            return !state.ended
        }
    }
}

/// Encodes frames as JSON text messages.
struct FrameWriter {
    let outbound: WebSocketOutboundWriter

    func send(_ frame: ServerFrame) async throws {
        try await send(encoded: ByteBuffer(bytes: try WireJSON.encode(frame)))
    }

    /// A frame already encoded as JSON (fan-out encodes a message once for all its recipients):
    /// written as the text frame's payload as it is, where `.text(String)` would copy it again.
    func send(encoded: ByteBuffer) async throws {
        try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: encoded)))
    }
}
