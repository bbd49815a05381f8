import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Open connections per client address (the /64 for IPv6, as rate limits count them), so one
/// address cannot hold every file descriptor with idle or trickling connections. Loopback is
/// exempt by default: a reverse proxy on this machine carries many clients' connections.
final class ConnectionCounter: Sendable {
    let limit: Int
    let exemptsLoopback: Bool
    private let open = Mutex<[String: Int]>([:])

    init(limit: Int, exemptsLoopback: Bool) {
        self.limit = limit
        self.exemptsLoopback = exemptsLoopback
    }

    /// The key the connection was counted under, or nil when its address is at the limit.
    /// An exempt or unknown address is admitted uncounted (key "").
    func admit(_ address: SocketAddress?) -> String? {
        guard let address, !(exemptsLoopback && ClientAddress.isLoopback(address)) else { return "" }
        let key = ClientAddress.key(address)
        return open.withLock { open in
            let count = open[key, default: 0]
            guard count < limit else { return nil }
            open[key] = count + 1
            return key
        }
    }

    func release(_ key: String) {
        guard !key.isEmpty else { return }
        open.withLock { open in
            let remaining = open[key, default: 1] - 1
            open[key] = remaining > 0 ? remaining : nil
        }
    }

    func count(_ key: String) -> Int { open.withLock { $0[key, default: 0] } }
}

/// Wraps the server's child channel so that each accepted connection is counted against its
/// address for as long as it is handled; one over the limit is closed at once. The check runs
/// in `handle`, once the pipeline is set up: failing `setup` would surface as an error on the
/// listening channel itself.
struct ConnectionLimitChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let counter: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        guard let key = counter.admit(value.channel.remoteAddress) else {
            logger.info(
                "connection refused: too many from one address",
                metadata: ["address": "\(value.channel.remoteAddress.map(ClientAddress.key) ?? "unknown")"]
            )
            // Closed first, so the base handler below ends at once without reading anything.
            try? await value.channel.close()
            await base.handle(value: value, logger: logger)
            return
        }
        defer { counter.release(key) }
        await base.handle(value: value, logger: logger)
    }
}
