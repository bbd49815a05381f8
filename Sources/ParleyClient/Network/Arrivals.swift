/// Where a client's connection stood when last looked at: which connection, and how many
/// frames had arrived on it. ``ParleyClient/waitForArrival(after:timeout:)`` waits for more,
/// so a caller that reads the mark before processing frames never misses one that arrives
/// while it does (issue 15: the chat waits on the network, it does not poll it).
public struct ArrivalMark: Sendable, Hashable {
    /// The connection's identity; nil when there was none.
    public var connection: UInt?
    public var count: UInt64

    public init(connection: UInt?, count: UInt64) {
        self.connection = connection
        self.count = count
    }
}

/// A connection that can say how many frames arrived and wait for more. Connections that
/// cannot (test doubles) wait out the timeout.
protocol ArrivalCounting: Sendable {
    var arrivals: UInt64 { get }
    func waitForArrival(after seen: UInt64, timeout: Duration) async
}

extension ServerSocket: ArrivalCounting {}

extension GroupEngine {
    func arrivalMark() -> ArrivalMark {
        guard let connection else { return ArrivalMark(connection: nil, count: 0) }
        let count = (connection as? any ArrivalCounting)?.arrivals ?? 0
        return ArrivalMark(connection: UInt(bitPattern: ObjectIdentifier(connection)), count: count)
    }

    /// Returns at once when the connection is not the marked one or is closed (the caller's
    /// next pump reconnects); else once a frame arrives after the mark, or after `timeout`.
    func waitForArrival(after mark: ArrivalMark, timeout: Duration) async {
        guard let connection, !connection.isClosed,
            UInt(bitPattern: ObjectIdentifier(connection)) == mark.connection
        else { return }
        if let counting = connection as? any ArrivalCounting {
            await counting.waitForArrival(after: mark.count, timeout: timeout)
        } else {
            try? await Task.sleep(for: timeout)
        }
    }
}

extension ParleyClient {
    /// The current connection and how many frames arrived on it; see ``ArrivalMark``.
    public func arrivalMark() async -> ArrivalMark {
        guard let engine = try? requireEngine() else { return ArrivalMark(connection: nil, count: 0) }
        return await engine.arrivalMark()
    }

    /// Returns once a frame arrived after `mark`, the connection changed or closed, `timeout`
    /// passed, or the task is cancelled. It only waits (no frame is taken), so it can be
    /// raced against other events and cancelled.
    public func waitForArrival(after mark: ArrivalMark, timeout: Duration) async {
        guard let engine = try? requireEngine() else { return }
        await engine.waitForArrival(after: mark, timeout: timeout)
    }
}
