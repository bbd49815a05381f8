import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import ParleyProtocol

/// One device's WebSocket: first a replay from its cursors (pending
/// Welcomes, then each group's messages, then `replayFinished`), then live
/// delivery, while its frames are read and answered.
struct WebSocketSession {
    let device: DeviceRecord
    let storage: any ServerStorage
    let delivery: DeliveryService
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let logger: Logger
    /// The connection itself, to end it when its client stops reading.
    let channel: any Channel

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
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.write(stream, queue: queue, to: outbound) }
            group.addTask { await self.read(inbound) }
            await group.next()
            group.cancelAll()
            hub.disconnect(deviceID: device.id, id: id)
        }
        logger.info("device disconnected", metadata: ["device": "\(device.id)"])
    }

    // MARK: Reading

    private func read(_ inbound: WebSocketInboundStream) async {
        do {
            for try await message in inbound.messages(maxSize: configuration.maxFrameBytes * 4) {
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
            } catch let error as ErrorBody {
                reply(send.id, send.group, error)
            } catch {
                logger.error("submission failed", metadata: ["error": "\(error)"])
                reply(send.id, send.group, ErrorBody(.internalError))
            }
        case .ack(let ack):
            do {
                try await delivery.acknowledge(ack, from: device)
            } catch let error as ErrorBody {
                reply(nil, ack.group, error)
            } catch {
                reply(nil, ack.group, ErrorBody(.internalError))
            }
        }
    }

    private func reply(_ id: String?, _ group: String?, _ error: ErrorBody) {
        hub.send(.frame(.error(.init(id: id, group: group, error: error))), to: device.id)
    }

    // MARK: Writing

    private func write(
        _ stream: AsyncStream<Outbound>, queue: OutboundQueue, to outbound: WebSocketOutboundWriter
    ) async {
        var writer = FrameWriter(outbound: outbound)
        do {
            var lastSent = try await replay(&writer)
            try await writer.send(.replayFinished)
            for await event in stream {
                defer { queue.written(event.cost) }
                switch event {
                case .message(let groupID, let frame):
                    // Seqs start at 1 (the server assigns them), so frame.seq - 1 cannot wrap.
                    let last = lastSent[groupID] ?? frame.seq - 1
                    guard frame.seq > last else { continue }
                    if frame.seq - last > 1 {
                        // Something was queued out of order or dropped: fill the gap from storage.
                        try await sendLog(groupID: groupID, name: frame.group, after: last, through: frame.seq - 1, &writer)
                    }
                    try await writer.send(.message(frame))
                    lastSent[groupID] = frame.seq
                case .welcome(let groupID, let frame):
                    try await writer.send(.welcome(frame))
                    lastSent[groupID] = frame.seq
                case .frame(let frame):
                    try await writer.send(frame)
                case .replaced:
                    try? await outbound.close(.goingAway, reason: "replaced by a newer connection of this device")
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

    /// Sends what the device missed; returns the last seq sent per group.
    private func replay(_ writer: inout FrameWriter) async throws -> [Int64: UInt64] {
        var lastSent: [Int64: UInt64] = [:]
        for name in try storage.notices(forDevice: device.id) {
            try await writer.send(.groupDestroyed(.init(group: name)))
        }
        try storage.clearNotices(forDevice: device.id)
        for welcome in try storage.welcomes(forDevice: device.id) {
            try await writer.send(.welcome(.init(group: welcome.groupName, seq: welcome.seq, time: welcome.time, welcome: Data(welcome.data))))
            lastSent[welcome.groupID] = welcome.seq
        }
        for membership in try storage.memberships(ofDevice: device.id) {
            let from = max(membership.ackedSeq, membership.joinedSeq, lastSent[membership.groupID] ?? 0)
            lastSent[membership.groupID] = try await sendLog(
                groupID: membership.groupID, name: membership.groupName, after: from, through: membership.leftSeq, &writer) ?? from
        }
        return lastSent
    }

    @discardableResult
    private func sendLog(groupID: Int64, name: String, after: UInt64, through: UInt64?, _ writer: inout FrameWriter) async throws -> UInt64? {
        var cursor = after
        var last: UInt64?
        while true {
            let page = try storage.messages(groupID: groupID, after: cursor, through: through, limit: 500)
            for entry in page {
                try await writer.send(.message(.init(group: name, seq: entry.seq, time: entry.time, sender: entry.sender, message: Data(entry.data))))
                last = entry.seq
            }
            guard page.count == 500, let next = page.last?.seq else { return last }
            cursor = next
        }
    }
}

/// Encodes frames as JSON text messages.
struct FrameWriter {
    let outbound: WebSocketOutboundWriter

    func send(_ frame: ServerFrame) async throws {
        try await outbound.write(.text(String(decoding: try WireJSON.encode(frame), as: UTF8.self)))
    }
}
