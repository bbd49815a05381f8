import Foundation
import ParleyClient

/// Requests from the screen to the worker: a lock-guarded queue, so the
/// screen hands work over without awaiting anything, and the worker waits
/// for the next one on a continuation (no polling).
public final class RequestQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [WorkerRequest] = []
    private var nextWaiter: UInt64 = 0
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]

    public init() {}

    public func push(_ requests: [WorkerRequest]) {
        guard !requests.isEmpty else { return }
        let woken = lock.withLock {
            items += requests
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    func take() -> WorkerRequest? {
        lock.withLock { items.isEmpty ? nil : items.removeFirst() }
    }

    /// Returns once a request waits, or the task is cancelled.
    func waitForRequest() async {
        let id = lock.withLock {
            defer { nextWaiter += 1 }
            return nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Checked under the lock `push` and the cancellation take: no wake-up is lost.
                let ready = lock.withLock {
                    let ready = !items.isEmpty || Task.isCancelled
                    if !ready { waiters[id] = continuation }
                    return ready
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            lock.withLock { waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// All network work of the chat, in one task beside the screen (like iamb's
/// worker): it takes requests from a queue, runs them against the client one
/// at a time (the client reads one socket, so its operations must not
/// overlap), pumps arriving frames in between, reconnects with backoff, and
/// reports everything as events. The screen never waits on it, and while a
/// long command runs (an `/add` of several users), what the client receives
/// meanwhile still reaches the screen.
public struct ChatWorker: Sendable {
    let client: any ChatBackend
    let requests: RequestQueue
    let emit: @Sendable (WorkerEvent) -> Void

    public init(client: any ChatBackend, requests: RequestQueue, emit: @escaping @Sendable (WorkerEvent) -> Void) {
        self.client = client
        self.requests = requests
        self.emit = emit
    }

    /// The longest the worker waits without an event: then it pumps anyway, so the client's
    /// due work (a self-update, the outbox) runs on an idle connection too.
    static let idleWait = Duration.seconds(60)
    /// After frames arrive during a command: the moment the command's task has to apply them
    /// before the groups' positions are read (once per arrival, not a polling loop).
    static let settle = Duration.milliseconds(20)

    /// Runs until the task is cancelled. It sleeps until something happens: a request from
    /// the screen, a frame from the server, or the time to reconnect (issue 15: no polling).
    public func run(viewing group: String?) async {
        var viewed = group
        await report(viewed: viewed, changed: [])
        var connected = await connect(viewed: viewed)
        var backoff = Duration.seconds(1)
        var nextAttempt = ContinuousClock.now + backoff
        while !Task.isCancelled {
            if let request = requests.take() {
                switch request {
                case .view(let name): viewed = name
                case .run(let command, let group): await run(command, in: group, viewing: viewed)
                }
                await report(viewed: viewed, changed: [])
            } else if connected {
                // The mark is read before the pump: a frame arriving during it ends the wait at once.
                let mark = await client.arrivalMark()
                do {
                    let changed = try await client.pump(timeout: .zero)
                    if !changed.isEmpty { await report(viewed: viewed, changed: changed) }
                } catch {
                    connected = false
                    emit(.connection(.offline("\(error)")))
                    nextAttempt = .now + backoff
                    continue
                }
                await firstOf(requests.waitForRequest) { [client] in
                    await client.waitForArrival(after: mark, timeout: Self.idleWait)
                }
            } else if ContinuousClock.now >= nextAttempt {
                connected = await connect(viewed: viewed)
                backoff = connected ? .seconds(1) : min(backoff * 2, .seconds(30))
                nextAttempt = .now + backoff
            } else {
                await firstOf(requests.waitForRequest) { [nextAttempt] in try? await Task.sleep(until: nextAttempt) }
            }
        }
        await sendWhatWasTyped()
    }

    /// Waits until the first of two events; the other wait is cancelled (both only wait).
    private func firstOf(
        _ one: @escaping @Sendable () async -> Void,
        _ other: @escaping @Sendable () async -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask(operation: one)
            group.addTask(operation: other)
            await group.next()
            group.cancelAll()
        }
    }

    /// On quitting, messages typed but not yet handed to the client still
    /// are: `send` stores each in the outbox first, so none is lost, even if
    /// the network part fails now. Other commands are dropped.
    private func sendWhatWasTyped() async {
        while let request = requests.take() {
            guard case .run(let command, let group) = request, case .message = command else { continue }
            _ = try? await perform(command, in: group ?? "")
        }
    }

    private func connect(viewed: String?) async -> Bool {
        do {
            try await client.sync()
            emit(.connection(.connected))
            await report(viewed: viewed, changed: [])
            return true
        } catch {
            emit(.connection(.offline("\(error)")))
            return false
        }
    }

    private func report(viewed: String?, changed: Set<String>) async {
        var history: [HistoryEntry] = []
        if let viewed { history = (try? await client.history(viewed)) ?? [] }
        emit(
            .snapshot(
                ChatSnapshot(groups: await client.groupSummaries(), viewed: viewed, history: history, changed: changed)
            )
        )
    }

    /// Runs one command; meanwhile, what the client applies from the server (it keeps
    /// processing frames while it waits for its own answers) goes to the screen.
    private func run(_ command: ChatCommand, in group: String?, viewing viewed: String?) async {
        let outcome = await withTaskGroup(of: Result<CommandOutcome, any Error>?.self) { tasks in
            tasks.addTask {
                do { return .success(try await perform(command, in: group ?? "")) } catch { return .failure(error) }
            }
            tasks.addTask {
                await reportArrivals(viewed: viewed)
                return nil
            }
            var outcome: Result<CommandOutcome, any Error> = .success(.nothing)
            for await result in tasks {
                guard let result else { continue }
                outcome = result
                tasks.cancelAll()
            }
            return outcome
        }
        emit(.finished(command, outcome))
    }

    /// Until cancelled, reports the groups whose log moved (by their last seq) each time
    /// frames arrive. It only reads: the command's task is the one reading the socket.
    private func reportArrivals(viewed: String?) async {
        var seen = await positions()
        var mark = await client.arrivalMark()
        while !Task.isCancelled {
            await client.waitForArrival(after: mark, timeout: Self.idleWait)
            let now = await client.arrivalMark()
            // No frame came: the connection is being replaced by the command; wait a moment.
            let pause = now == mark ? Self.settle * 5 : Self.settle
            mark = now
            try? await Task.sleep(for: pause)
            let positions = await positions()
            let changed = Set(positions.filter { seen[$0.key] != $0.value }.keys)
            guard !changed.isEmpty, !Task.isCancelled else { continue }
            seen = positions
            await report(viewed: viewed, changed: changed)
        }
    }

    private func positions() async -> [String: UInt64] {
        Dictionary(await client.groupSummaries().map { ($0.name, $0.lastSeq) }, uniquingKeysWith: max)
    }

    /// One command against the client. The screen checked the open group and
    /// admin rights already; the client and server check them again.
    func perform(_ command: ChatCommand, in group: String) async throws -> CommandOutcome {
        switch command {
        case .message(let text):
            switch try await client.send(text, to: group) {
            case .sent: return .sent
            case .queued: return .queued
            }
        case .create(let name):
            try await client.createGroup(name)
            // The client stores the name in Unicode NFC, as the server takes it.
            return .created(name.precomposedStringWithCanonicalMapping)
        case .members: return .members(try await client.members(group))
        case .add(let users):
            try await client.add(users, to: group)
            return .added(users)
        case .remove(let user):
            try await client.remove(user, from: group)
            return .removed(user)
        case .leave:
            try await client.leave(group)
            return .leaveRequested(group)
        case .destroy:
            try await client.destroy(group)
            return .destroyed(group)
        case .upgrade:
            try await client.upgrade(group)
            return .upgraded(group)
        case .verify(let user):
            let (number, changed) = try await client.verify(user)
            return .safetyNumber(user: user, number: number, changed: changed)
        case .devices: return .devices(try await client.devices())
        case .approveDevice(let code):
            let approval = try await client.approveLink(
                code: code,
                deviceName: ParleyClient.localDeviceName(),
                messagesPerGroup: 1_000
            )
            return .deviceApproved(approval)
        case .switchTo, .groups, .help, .quit:
            // Local commands never reach the worker; were one sent, it does nothing here.
            return .nothing
        }
    }
}
