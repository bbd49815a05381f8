import Foundation
import Synchronization

/// Why the log writer did not store an entry (besides a storage error, passed on as is).
enum LogWriterError: Error, Hashable, Sendable {
    /// `capacity` entries are waiting already: the server is saturated.
    case full
    /// The writer was stopped (shutdown) before the entry was stored.
    case stopped
    /// An earlier entry of the same group was refused, and this one was checked against the
    /// group as if that one had been stored.
    case earlierRefused
}

/// Group commit (issue 15): the one writer of the message log. Appends that arrive while a
/// transaction is being made durable wait, and all of them go into the next transaction: one
/// fsync for many sends from many groups. It runs on its own thread, so SQLite's blocking
/// calls never hold a thread of Swift's cooperative pool.
///
/// An entry's `onCommit` runs only after the transaction that stored it committed, on the
/// writer's thread, in log order; then its ticket completes. A refused entry, or one whose
/// transaction failed, runs nothing and its ticket fails: nothing is acknowledged that is not
/// durably stored. A refused entry refuses the later entries of its incarnation too, unless
/// ``LogAppend/refusalSpares(_:)`` (a resend refused as a duplicate).
final class LogWriter: Sendable {
    struct Entry: Sendable {
        var append: LogAppend
        /// The cached group's incarnation the entry was checked against: when an entry of an
        /// incarnation is refused, later ones of it are refused too (``LogWriterError/earlierRefused``).
        var incarnation: UInt64
        var onCommit: @Sendable (UInt64) -> Void
        var ticket: Ticket
    }

    /// A device's acknowledgement: stored with others in one transaction after the messages'
    /// (acks never wait on the delivery shards, issue 15); `done` runs on the writer's thread.
    struct Acknowledgement: Sendable {
        var ack: LogAcknowledgement
        var done: @Sendable (Result<Void, any Error>) -> Void
    }

    /// One turn of the writer: messages, then acknowledgements, then chores.
    private struct Work {
        var entries: [Entry]
        var acks: [Acknowledgement]
        var chores: [@Sendable () -> Void]
    }

    private struct State {
        var queue: [Entry] = []
        var acks: [Acknowledgement] = []
        /// Work that must see no transaction in progress (recounting quotas after pruning).
        var chores: [@Sendable () -> Void] = []
        var started = false
        var stopped = false
        var refused: Set<UInt64> = []
        /// Refused incarnations the service no longer uses, forgotten once none of theirs wait.
        var released: Set<UInt64> = []

        var isIdle: Bool { queue.isEmpty && acks.isEmpty && chores.isEmpty }

        /// Forgets released incarnations of which no entry waits (review s5 L3).
        mutating func pruneReleased() {
            let waiting = Set(queue.map(\.incarnation))
            let done = released.subtracting(waiting)
            refused.subtract(done)
            released.subtract(done)
        }
    }

    let capacity: Int
    let maxBatch: Int
    private let storage: any ServerStorage
    private let state = Mutex(State())
    /// Wakes the thread when the queue fills from empty, or at stop.
    private let wakeUp = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// Transactions and entries written, for tests and metrics.
    private let counts = Mutex((transactions: 0, entries: 0))
    /// Each group's last durable seq, published before anyone is told of it (review s5 L1).
    private let durable = Mutex<[Int64: UInt64]>([:])

    /// The most entries one transaction stores; a cross-node notification never names more.
    static let defaultMaxBatch = 1024

    init(storage: any ServerStorage, capacity: Int = 8192, maxBatch: Int = LogWriter.defaultMaxBatch) {
        self.storage = storage
        self.capacity = max(1, capacity)
        self.maxBatch = max(1, maxBatch)
    }

    /// Starts the writer's thread; entries enqueued before wait for it.
    func start() {
        let first = state.withLock { state in
            defer { state.started = true }
            return !state.started && !state.stopped
        }
        guard first else { return }
        let thread = Thread { [self] in run() }
        thread.name = "parley-log-writer"
        thread.start()
    }

    /// Stops after the transaction in progress: entries still waiting are refused (``LogWriterError/stopped``).
    func stop() {
        let (wasRunning, dropped) = state.withLock { state -> (Bool, [Entry]) in
            guard !state.stopped else { return (false, []) }
            state.stopped = true
            defer {
                state.queue.removeAll()
                state.acks.removeAll()
                state.chores.removeAll()
            }
            return (state.started, state.queue)
        }
        for entry in dropped { entry.ticket.complete(.failure(LogWriterError.stopped)) }
        guard wasRunning else { return }
        wakeUp.signal()
        finished.wait()
    }

    /// Queues an entry, or throws ``LogWriterError/full`` or ``LogWriterError/stopped`` at once.
    func enqueue(_ entry: Entry) throws(LogWriterError) {
        let wasIdle = try state.withLock { state throws(LogWriterError) -> Bool in
            guard !state.stopped else { throw .stopped }
            guard state.queue.count < capacity else { throw .full }
            defer { state.queue.append(entry) }
            return state.isIdle
        }
        if wasIdle { wakeUp.signal() }
    }

    /// Queues an acknowledgement, or throws ``LogWriterError/full`` (`capacity` wait already)
    /// or ``LogWriterError/stopped`` at once.
    func enqueue(_ acknowledgement: Acknowledgement) throws(LogWriterError) {
        let wasIdle = try state.withLock { state throws(LogWriterError) -> Bool in
            guard !state.stopped else { throw .stopped }
            guard state.acks.count < capacity else { throw .full }
            defer { state.acks.append(acknowledgement) }
            return state.isIdle
        }
        if wasIdle { wakeUp.signal() }
    }

    /// Runs `chore` on the writer's thread between two transactions, so no commit lands while
    /// it runs; dropped if the writer stops first.
    func betweenTransactions(_ chore: @escaping @Sendable () -> Void) {
        let wasIdle = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            defer { state.chores.append(chore) }
            return state.isIdle
        }
        if wasIdle { wakeUp.signal() }
    }

    var written: (transactions: Int, entries: Int) { counts.withLock { $0 } }

    /// Refused incarnations remembered, for tests.
    var refusedCount: Int { state.withLock { $0.refused.count } }

    /// The service no longer checks sends against `incarnation` (it dropped that load of the
    /// group): once none of its entries wait, its refusal is forgotten, so the set stays small.
    func release(incarnation: UInt64) {
        state.withLock { state in
            guard state.refused.contains(incarnation) else { return }
            state.released.insert(incarnation)
            state.pruneReleased()
        }
    }

    /// The group's last seq this writer made durable; nil if it stored none since it started.
    func durableSeq(of group: Int64) -> UInt64? { durable.withLock { $0[group] } }

    /// Forgets a destroyed group's durable seq.
    func forget(group: Int64) { durable.withLock { _ = $0.removeValue(forKey: group) } }

    private func run() {
        while true {
            wakeUp.wait()
            while let work = nextWork() {
                if !work.entries.isEmpty { write(work.entries) }
                if !work.acks.isEmpty { write(work.acks) }
                for chore in work.chores { chore() }
            }
            if state.withLock({ $0.stopped }) { break }
        }
        finished.signal()
    }

    /// Takes up to `maxBatch` waiting entries and acknowledgements, and the chores; nil when
    /// nothing waits or the writer stopped.
    private func nextWork() -> Work? {
        state.withLock { state in
            guard !state.stopped, !state.isIdle else { return nil }
            let (entries, acks) = (min(maxBatch, state.queue.count), min(maxBatch, state.acks.count))
            defer {
                state.queue.removeFirst(entries)
                state.acks.removeFirst(acks)
                state.chores.removeAll()
            }
            return Work(
                entries: Array(state.queue.prefix(entries)),
                acks: Array(state.acks.prefix(acks)),
                chores: state.chores
            )
        }
    }

    /// Stores acknowledgements in one transaction and tells each sender how it went.
    private func write(_ acks: [Acknowledgement]) {
        let results: [Result<Void, any Error>]
        do {
            results = try storage.acknowledge(batch: acks.map(\.ack))
        } catch {
            results = Array(repeating: .failure(error), count: acks.count)
        }
        for (ack, result) in zip(acks, results) { ack.done(result) }
    }

    private func write(_ batch: [Entry]) {
        var (kept, refused) = ([Entry](), [(Entry, any Error)]())
        let poisoned = state.withLock { $0.refused }
        for entry in batch {
            if poisoned.contains(entry.incarnation) {
                refused.append((entry, LogWriterError.earlierRefused))
            } else {
                kept.append(entry)
            }
        }
        let results: [Result<UInt64, any Error>]
        do {
            results = try storage.append(batch: kept.map(\.append))
        } catch {
            results = Array(repeating: .failure(error), count: kept.count)
        }
        counts.withLock {
            $0.transactions += 1
            $0.entries += kept.count
        }
        durable.withLock { durable in
            for (entry, result) in zip(kept, results) {
                if case .success(let seq) = result { durable[entry.append.groupID] = seq }
            }
        }
        var newlyRefused = Set<UInt64>()
        for (entry, result) in zip(kept, results) {
            switch result {
            case .success(let seq):
                entry.onCommit(seq)
                entry.ticket.complete(.success(seq))
            case .failure(let error):
                // A resend refused as a duplicate changed nothing later entries were checked against.
                if !entry.append.refusalSpares(error) { newlyRefused.insert(entry.incarnation) }
                refused.append((entry, error))
            }
        }
        state.withLock { state in
            state.refused.formUnion(newlyRefused)
            if !state.released.isEmpty { state.pruneReleased() }
        }
        for (entry, error) in refused { entry.ticket.complete(.failure(error)) }
    }
}

/// The answer to one queued entry: a one-shot promise, awaited by its sender and by refusals
/// of later sends to its group (which wait until it is settled, review s5 M1).
final class Ticket: Sendable {
    private let state = Mutex<(result: Result<UInt64, any Error>?, waiters: [CheckedContinuation<UInt64, any Error>])>(
        (nil, [])
    )

    init() {}

    func complete(_ result: Result<UInt64, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<UInt64, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// The seq the entry was stored under, once it is durable; throws why it was not stored.
    var value: UInt64 {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<UInt64, any Error>? in
                    if state.result == nil { state.waiters.append(continuation) }
                    return state.result
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
