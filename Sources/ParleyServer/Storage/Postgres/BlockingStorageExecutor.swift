import Foundation
import Synchronization

/// Threads of its own for the work of a server whose storage blocks on the network.
///
/// `ServerStorage` is synchronous. SQLite answers in microseconds from the page cache, so its
/// calls run on Swift's cooperative pool like any other code. PostgreSQL answers over a socket:
/// each call waits a round trip, and a row lock held by another node can make it wait seconds
/// (`lock_timeout`). The cooperative pool has one thread per core (two here), so two such waits
/// would stall every connection, route and delivery shard of the node. A server on PostgreSQL
/// therefore runs all its tasks with this executor as their preference (SE-0417): child tasks
/// inherit it, and default actors (the delivery shards) run their turns on it, so a blocked call
/// holds one of ``threadCount`` threads and the others go on.
final class BlockingStorageExecutor: TaskExecutor {
    /// One process-wide pool: servers come and go (tests start hundreds), its threads never do,
    /// so no job can be enqueued on an executor that stopped and never run.
    static let shared = BlockingStorageExecutor(threadCount: 32)

    /// More than PostgreSQL connections a node opens (8 by default) plus the waits for them, so
    /// a node whose connections are all busy still has threads for work that needs no database.
    let threadCount: Int
    private let queue = Mutex(JobQueue())
    private let available = DispatchSemaphore(value: 0)

    private init(threadCount: Int) {
        self.threadCount = threadCount
        for index in 0..<threadCount {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "parley-storage-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.push(job) }
        available.signal()
    }

    private func work() {
        while true {
            available.wait()
            guard let job = queue.withLock({ $0.pop() }) else { continue }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// First in, first out, amortised O(1): jobs are taken from `front` (reversed), refilled from `back`.
private struct JobQueue: ~Copyable {
    private var back: [UnownedJob] = []
    private var front: [UnownedJob] = []

    mutating func push(_ job: UnownedJob) { back.append(job) }

    mutating func pop() -> UnownedJob? {
        if front.isEmpty {
            front = back.reversed()
            back.removeAll(keepingCapacity: true)
        }
        return front.popLast()
    }
}
