import Foundation
import ServiceLifecycle
import Synchronization

/// Re-checks each open WebSocket's session every `session_check_seconds`, so an idle socket
/// whose session ended in another process (logout, `parley admin remove-device`, expiry) is
/// closed too. One task for the whole server, waking once a second, runs the checks that are
/// due; before, each connection had a task of its own asleep for its whole life, with its frames
/// and timer (idle connections' memory, issue 15). A connection is checked `interval` after it
/// registered and every `interval` after that, as before.
final class SessionWatch: Service, Sendable {
    private struct Entry {
        var due: ContinuousClock.Instant
        let check: @Sendable () -> Void
    }

    let interval: Duration
    private let state = Mutex<(nextKey: UInt64, entries: [UInt64: Entry])>((0, [:]))

    init(interval: Duration) {
        self.interval = interval
    }

    /// Registers a connection's check; `remove` with the key returned ends it.
    func add(_ check: @escaping @Sendable () -> Void) -> UInt64 {
        let due = ContinuousClock.now + interval
        return state.withLock { state in
            state.nextKey += 1
            state.entries[state.nextKey] = Entry(due: due, check: check)
            return state.nextKey
        }
    }

    func remove(_ key: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: key) }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Runs the checks due at `now`, outside the lock (each may ask storage), and sets each
    /// one's next time; returns how many ran.
    @discardableResult
    func tick(now: ContinuousClock.Instant = .now) -> Int {
        let due = state.withLock { state -> [@Sendable () -> Void] in
            var due: [@Sendable () -> Void] = []
            // By index, in place: no copy of the table while it is updated.
            var index = state.entries.values.startIndex
            while index != state.entries.values.endIndex {
                if state.entries.values[index].due <= now {
                    state.entries.values[index].due = now + interval
                    due.append(state.entries.values[index].check)
                }
                state.entries.values.formIndex(after: &index)
            }
            return due
        }
        Self.runSideBySide(due)
        return due.count
    }

    /// At most this many checks at once: a check is a storage read, on PostgreSQL a round trip
    /// on one of the node's pooled connections (8 by default).
    static let width = 8

    /// Runs the checks on up to ``width`` threads and returns when all ran. One after another,
    /// each waiting for its database round trip, the checks of many connections took the sum of
    /// those round trips, and the last connection's revocation was late by all of it (review s9:
    /// e.g. 100,000 sockets at 0.5 ms a read, 50 s, past a 30 s interval); the per-connection
    /// tasks this service replaced ran as many at once as the cooperative pool has threads.
    private static func runSideBySide(_ checks: [@Sendable () -> Void]) {
        guard checks.count > 1 else {
            checks.first?()
            return
        }
        let next = NextIndex()
        let done = DispatchGroup()
        for _ in 0..<min(checks.count, width) {
            done.enter()
            Thread {
                defer { done.leave() }
                while case let index = next.take(), index < checks.count { checks[index]() }
            }.start()
        }
        done.wait()
    }

    /// The next check a thread takes.
    private final class NextIndex: Sendable {
        private let value = Atomic<Int>(0)
        func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                self.tick()
            }
        }
    }
}
