import NIOCore
import ParleyProtocol
import Synchronization

/// What a connected device's writer is told to send.
enum Outbound: Sendable {
    /// A message accepted in a group, with its frame; the writer fills any gap from storage.
    /// `encoded` is the frame as JSON text when fan-out encoded it once for many members: one
    /// buffer, shared by every recipient's WebSocket frame, not copied (ByteBuffer is copy-on-write).
    case message(groupID: Int64, ServerFrame.Message, encoded: ByteBuffer? = nil)
    /// The sender's copy again, for a resend of a stored id: written even if this connection
    /// already sent that seq (in order, filling any gap, if it did not).
    case echo(groupID: Int64, ServerFrame.Message)
    case welcome(groupID: Int64, ServerFrame.WelcomeFrame)
    case frame(ServerFrame)
    /// Another connection of the same device took over; close this one.
    case replaced
    /// The connection's session ended (logout, removal, expiry); close it, saying so.
    case sessionEnded

    /// Whether this is live delivery of group content, before which the session is re-checked.
    var isDelivery: Bool {
        switch self {
        case .message, .echo, .welcome: true
        case .frame, .replaced, .sessionEnded: false
        }
    }

    /// What the event holds in memory until written, for the per-connection bound:
    /// its payload plus a fixed allowance for the frame around it.
    var cost: Int {
        switch self {
        case .message(_, let frame, _), .echo(_, let frame): frame.message.count + 256
        case .welcome(_, let frame): frame.welcome.count + 256
        case .frame: 256
        case .replaced, .sessionEnded: 0
        }
    }
}

/// The bytes queued for one connection and not yet written (finding 13). A client that
/// does not read would otherwise make the server keep everything sent to it.
final class OutboundQueue: Sendable {
    let limit: Int
    private let state = Mutex<(bytes: Int, overflowed: Bool)>((0, false))
    private let onOverflow: @Sendable () -> Void

    init(limit: Int, onOverflow: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.onOverflow = onOverflow
    }

    /// Counts an event in; false (once, with `onOverflow` called) when it would pass the limit.
    func enqueue(_ cost: Int) -> Bool {
        let (accepted, firstOverflow) = state.withLock { state -> (Bool, Bool) in
            guard !state.overflowed else { return (false, false) }
            let (total, overflow) = state.bytes.addingReportingOverflow(cost)
            guard !overflow, total <= limit else {
                state.overflowed = true
                return (false, true)
            }
            state.bytes = total
            return (true, false)
        }
        if firstOverflow { onOverflow() }
        return accepted
    }

    /// The writer wrote an event out.
    func written(_ cost: Int) {
        state.withLock { $0.bytes = max(0, $0.bytes - cost) }
    }

    var overflowed: Bool { state.withLock { $0.overflowed } }
}

/// The live connections, one per device. Fan-out only enqueues; each
/// connection's own task writes, so a slow client never holds up others,
/// and each connection's queue is bounded, so it cannot hold server memory either.
final class ConnectionHub: Sendable {
    private struct Entry {
        let id: UInt64
        let continuation: AsyncStream<Outbound>.Continuation
        let queue: OutboundQueue
    }

    private let connections = Mutex<(next: UInt64, byDevice: [Int64: Entry])>((0, [:]))
    let maxQueuedBytes: Int

    init(maxQueuedBytes: Int = ServerConfiguration().maxQueuedBytesPerConnection) {
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// Registers a device's connection; an older connection of the device is told to close.
    /// `onOverflow` is called once if the connection's queue passes the limit; the stream then ends.
    func connect(
        deviceID: Int64,
        onOverflow: @escaping @Sendable () -> Void = {}
    )
        -> (id: UInt64, stream: AsyncStream<Outbound>, queue: OutboundQueue)
    {
        let (stream, continuation) = AsyncStream<Outbound>.makeStream()
        let queue = OutboundQueue(limit: maxQueuedBytes, onOverflow: onOverflow)
        let (id, previous) = connections.withLock { state -> (UInt64, Entry?) in
            state.next += 1
            let previous = state.byDevice[deviceID]
            state.byDevice[deviceID] = Entry(id: state.next, continuation: continuation, queue: queue)
            return (state.next, previous)
        }
        previous?.continuation.yield(.replaced)
        previous?.continuation.finish()
        return (id, stream, queue)
    }

    func disconnect(deviceID: Int64, id: UInt64) {
        let entry = connections.withLock { state -> Entry? in
            guard state.byDevice[deviceID]?.id == id else { return nil }
            return state.byDevice.removeValue(forKey: deviceID)
        }
        entry?.continuation.finish()
    }

    func send(_ event: Outbound, to deviceID: Int64) {
        guard let entry = connections.withLock({ $0.byDevice[deviceID] }) else { return }
        guard entry.queue.enqueue(event.cost) else {
            // Overflow: the device stops receiving live events; it catches up from storage on reconnect.
            disconnect(deviceID: deviceID, id: entry.id)
            return
        }
        entry.continuation.yield(event)
    }

    var count: Int { connections.withLock { $0.byDevice.count } }

    /// Whether the device has a WebSocket open now (`parley devices` shows it as online).
    func isConnected(deviceID: Int64) -> Bool { connections.withLock { $0.byDevice[deviceID] != nil } }

    /// Ends the device's connection (logout, account removal): it is told it is no longer
    /// logged in, then closed; it cannot reconnect without a valid session.
    /// With `connection`, only that connection, so a stale one cannot end its device's newer one.
    func close(deviceID: Int64, connection: UInt64? = nil) {
        let entry = connections.withLock { state -> Entry? in
            guard connection == nil || state.byDevice[deviceID]?.id == connection else { return nil }
            return state.byDevice.removeValue(forKey: deviceID)
        }
        entry?.continuation.yield(.frame(.error(.init(id: nil, group: nil, error: ErrorBody(.unauthorized)))))
        entry?.continuation.yield(.sessionEnded)
        entry?.continuation.finish()
    }

    /// Ends every connection (shutdown).
    func closeAll() {
        let entries = connections.withLock { state -> [Entry] in
            defer { state.byDevice.removeAll() }
            return Array(state.byDevice.values)
        }
        for entry in entries { entry.continuation.finish() }
    }
}
