import Foundation
import Synchronization

/// Session checks that arrive together share one query.
///
/// Every WebSocket frame re-checks its session first, so that a frame is handled only while
/// its session lasts, exactly: a deletion committed (by any node or process) before the frame
/// was read is seen. On PostgreSQL that was a round trip on one of the node's pooled
/// connections per frame, 1.8 per accepted message in the session-9 statement log, more than
/// any other statement. Here a check that arrives while another's query runs waits for the next
/// query, which reads the sessions of every check waiting by then at once. Still exact: each
/// check is answered by a query that started after the check arrived. The query runs on the
/// thread of one waiting check (the leader), which hands the next batch to the next check
/// waiting, so no caller serves others for longer than one query.
final class SessionReads: Sendable {
    /// One check, answered through `done`: its fields are written before the signal and read
    /// after the wait (the semaphore orders them), so the class is safe to share.
    private final class Request: @unchecked Sendable {
        let tokenHash: [UInt8]
        let now: UInt64
        let done = DispatchSemaphore(value: 0)
        var answer: Result<SessionRecord?, any Error> = .success(nil)
        /// Woken to run the next query rather than with its answer.
        var leads = false

        init(tokenHash: [UInt8], now: UInt64) {
            (self.tokenHash, self.now) = (tokenHash, now)
        }
    }

    private let state = Mutex<(pending: [Request], running: Bool)>(([], false))

    /// The session of `tokenHash` unless it is gone or expired at `now`. `fetch` reads the
    /// sessions of several token hashes, expired or not, in one query.
    func read(
        tokenHash: [UInt8],
        now: UInt64,
        fetch: ([[UInt8]]) throws -> [[UInt8]: SessionRecord]
    ) throws -> SessionRecord? {
        let request = Request(tokenHash: tokenHash, now: now)
        let leads = state.withLock { state in
            state.pending.append(request)
            defer { state.running = true }
            return !state.running
        }
        if !leads {
            request.done.wait()
            guard request.leads else { return try request.answer.get() }
        }
        lead(request, fetch: fetch)
        return try request.answer.get()
    }

    /// Answers every check waiting now with one query, then wakes the next waiting check to
    /// run the following one, or marks none running.
    private func lead(_ leader: Request, fetch: ([[UInt8]]) throws -> [[UInt8]: SessionRecord]) {
        let batch = state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending
        }
        let fetched = Result { try fetch(Array(Set(batch.map(\.tokenHash)))) }
        let next = state.withLock { state -> Request? in
            if state.pending.isEmpty { state.running = false }
            return state.pending.first
        }
        for request in batch {
            request.answer = fetched.map { sessions in
                // As the one-by-one query did: `expires_at > now`, each check at its own time.
                sessions[request.tokenHash].flatMap { $0.expiresAt > request.now ? $0 : nil }
            }
            if request !== leader { request.done.signal() }
        }
        if let next {
            next.leads = true
            next.done.signal()
        }
    }
}
