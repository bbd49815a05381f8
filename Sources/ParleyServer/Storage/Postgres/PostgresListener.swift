import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// This node's `LISTEN` on ``ClusterEvent/channel``: a connection of its own, reopened a second
/// after it drops; each reopening reports ``ClusterEvent/missed``, since notifications sent
/// meanwhile are lost. A connection that stops answering is closed (and so reopened): TCP
/// keepalive on its socket, and a `SELECT 1` every ``pingInterval`` that must answer within
/// ``pingTimeout`` — a listener that hears nothing cannot tell silence from a dead peer otherwise.
final class PostgresListener: Sendable {
    static let pingInterval = TimeAmount.seconds(10)
    static let pingTimeout = TimeAmount.seconds(10)

    private let pool: PostgresConnectionPool
    private let node: String
    private let onEvent: @Sendable (ClusterEvent) -> Void
    /// Called each time LISTEN takes effect (the server serves only after the first).
    private let onListening: @Sendable () -> Void
    private let state = Mutex<(connection: PostgresConnection?, stopped: Bool, connectedBefore: Bool)>(
        (nil, false, false)
    )

    init(
        pool: PostgresConnectionPool,
        node: String,
        onEvent: @escaping @Sendable (ClusterEvent) -> Void,
        onListening: @escaping @Sendable () -> Void
    ) {
        self.pool = pool
        self.node = node
        self.onEvent = onEvent
        self.onListening = onListening
    }

    /// The listening connection's `application_name`, which names the node (operators, tests).
    var applicationName: String { "parley-listen-\(node)" }

    func start() {
        pool.connect(applicationName: applicationName).whenComplete {
            [self] (result: Result<PostgresConnection, any Error>) in
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
        keepAlive(connection)
        if reconnected { onEvent(.missed) }
        onListening()
    }

    /// Pings the connection; one that fails or does not answer in time is closed.
    private func keepAlive(_ connection: PostgresConnection) {
        let (logger, loop) = (pool.logger, connection.eventLoop)
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: Self.pingInterval, delay: Self.pingInterval) { _ in
            let deadline = loop.scheduleTask(in: Self.pingTimeout) {
                let _: EventLoopFuture<Void> = connection.close()
            }
            let answer: EventLoopFuture<PostgresQueryResult> = connection.query("SELECT 1", logger: logger)
            return answer.map { _ in deadline.cancel() }.flatMapError { _ in
                deadline.cancel()
                let closed: EventLoopFuture<Void> = connection.close()
                return closed
            }
        }
        connection.closeFuture.whenComplete { (_: Result<Void, any Error>) in task.cancel() }
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
