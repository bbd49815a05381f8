import NIOPosix
import ParleyProtocol
import Synchronization

/// Where password hashing runs: scrypt needs 32 MiB and tens of milliseconds of one core,
/// so it runs on its own threads, never on an event loop or Swift's cooperative pool
/// (where it would stall every other request), at most `threads` at once, with at most
/// `waiting` more queued. Past that a request is refused with `rateLimited` at once
/// instead of queueing without bound (finding 11).
final class PasswordWork: Sendable {
    let threads: Int
    let waiting: Int
    private let pool: NIOThreadPool
    private let admitted = Mutex(0)

    init(threads: Int, waiting: Int) {
        self.threads = threads
        self.waiting = waiting
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    deinit {
        // Queued work has finished (each `run` holds this object); the threads just end.
        pool.shutdownGracefully { _ in }
    }

    /// Runs `body` on a hashing thread, or throws `rateLimited` when too much is in line already.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let admittedNow = admitted.withLock { count -> Bool in
            guard count < threads + waiting else { return false }
            count += 1
            return true
        }
        guard admittedNow else { throw ErrorBody(.rateLimited) }
        defer { admitted.withLock { $0 -= 1 } }
        return try await pool.runIfActive(body)
    }
}
