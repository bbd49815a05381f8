import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// This node's `LISTEN` on ``ClusterEvent/channel``: a connection of its own, reopened a second
/// after it drops; each reopening reports ``ClusterEvent/missed``, since notifications sent
/// meanwhile are lost.
final class PostgresListener: Sendable {
    private let pool: PostgresConnectionPool
    private let node: String
    private let onEvent: @Sendable (ClusterEvent) -> Void
    private let state = Mutex<(connection: PostgresConnection?, stopped: Bool, connectedBefore: Bool)>(
        (nil, false, false)
    )

    init(pool: PostgresConnectionPool, node: String, onEvent: @escaping @Sendable (ClusterEvent) -> Void) {
        self.pool = pool
        self.node = node
        self.onEvent = onEvent
    }

    func start() {
        pool.connect().whenComplete { [self] (result: Result<PostgresConnection, any Error>) in
            switch result {
            case .success(let connection): listen(on: connection)
            case .failure: retry()
            }
        }
    }

    private func listen(on connection: PostgresConnection) {
        let (node, onEvent) = (node, onEvent)
        connection.addListener(channel: ClusterEvent.channel) { _, notification in
            if let event = ClusterEvent(payload: notification.payload, ownNode: node) { onEvent(event) }
        }
        connection.closeFuture.whenComplete { [self] (_: Result<Void, any Error>) in retry() }
        let listen: PostgresQuery = "LISTEN parley_events"
        let answer: EventLoopFuture<PostgresQueryResult> = connection.query(listen, logger: pool.logger)
        answer.whenComplete { [self] (result: Result<PostgresQueryResult, any Error>) in
            if case .success = result {
                listening(on: connection)
            } else {
                let _: EventLoopFuture<Void> = connection.close()
            }
        }
    }

    /// LISTEN took effect: keep the connection, and after a reconnection say what may be missed.
    private func listening(on connection: PostgresConnection) {
        let (keep, reconnected) = state.withLock { state -> (Bool, Bool) in
            guard !state.stopped else { return (false, false) }
            defer { (state.connection, state.connectedBefore) = (connection, true) }
            return (true, state.connectedBefore)
        }
        guard keep else {
            let _: EventLoopFuture<Void> = connection.close()
            return
        }
        if reconnected { onEvent(.missed) }
    }

    private func retry() {
        let stopped = state.withLock { state in
            state.connection = nil
            return state.stopped
        }
        guard !stopped else { return }
        pool.eventLoop.scheduleTask(in: .seconds(1)) { [self] in start() }
    }

    /// Stops listening; returns once the connection is closed.
    func stop() {
        let connection = state.withLock { state in
            state.stopped = true
            return state.connection
        }
        _ = try? connection?.close().wait()
    }
}
