import Synchronization
import ParleyProtocol

/// What a connected device's writer is told to send.
enum Outbound: Sendable {
    /// A message accepted in a group, with its frame; the writer fills any gap from storage.
    case message(groupID: Int64, ServerFrame.Message)
    case welcome(groupID: Int64, ServerFrame.WelcomeFrame)
    case frame(ServerFrame)
    /// Another connection of the same device took over; close this one.
    case replaced
}

/// The live connections, one per device. Fan-out only enqueues; each
/// connection's own task writes, so a slow client never holds up others.
final class ConnectionHub: Sendable {
    private struct Entry {
        let id: UInt64
        let continuation: AsyncStream<Outbound>.Continuation
    }

    private let connections = Mutex<(next: UInt64, byDevice: [Int64: Entry])>((0, [:]))

    /// Registers a device's connection; an older connection of the device is told to close.
    func connect(deviceID: Int64) -> (id: UInt64, stream: AsyncStream<Outbound>) {
        let (stream, continuation) = AsyncStream<Outbound>.makeStream()
        let (id, previous) = connections.withLock { state -> (UInt64, Entry?) in
            state.next += 1
            let previous = state.byDevice[deviceID]
            state.byDevice[deviceID] = Entry(id: state.next, continuation: continuation)
            return (state.next, previous)
        }
        previous?.continuation.yield(.replaced)
        previous?.continuation.finish()
        return (id, stream)
    }

    func disconnect(deviceID: Int64, id: UInt64) {
        let entry = connections.withLock { state -> Entry? in
            guard state.byDevice[deviceID]?.id == id else { return nil }
            return state.byDevice.removeValue(forKey: deviceID)
        }
        entry?.continuation.finish()
    }

    func send(_ event: Outbound, to deviceID: Int64) {
        let entry = connections.withLock { $0.byDevice[deviceID] }
        entry?.continuation.yield(event)
    }

    var count: Int { connections.withLock { $0.byDevice.count } }

    /// Ends every connection (shutdown).
    func closeAll() {
        let entries = connections.withLock { state -> [Entry] in
            defer { state.byDevice.removeAll() }
            return Array(state.byDevice.values)
        }
        for entry in entries { entry.continuation.finish() }
    }
}
