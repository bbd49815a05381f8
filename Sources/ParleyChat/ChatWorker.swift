import Foundation
import ParleyClient

/// Requests from the screen to the worker: a lock-guarded queue, so the
/// screen hands work over without awaiting anything.
public final class RequestQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [WorkerRequest] = []

    public init() {}

    public func push(_ requests: [WorkerRequest]) {
        lock.withLock { items += requests }
    }

    func take() -> WorkerRequest? {
        lock.withLock { items.isEmpty ? nil : items.removeFirst() }
    }
}

/// All network work of the chat, in one task beside the screen (like iamb's
/// worker): it takes requests from a queue, runs them against the client one
/// at a time (the client reads one socket, so its operations must not
/// overlap), pumps arriving frames in between, reconnects with backoff, and
/// reports everything as events. The screen never waits on it.
public struct ChatWorker: Sendable {
    let client: ParleyClient
    let requests: RequestQueue
    let emit: @Sendable (WorkerEvent) -> Void

    public init(client: ParleyClient, requests: RequestQueue, emit: @escaping @Sendable (WorkerEvent) -> Void) {
        self.client = client
        self.requests = requests
        self.emit = emit
    }

    /// How long one pump waits for frames: also how soon a new request starts.
    static let pumpWait = Duration.milliseconds(100)

    /// Runs until the task is cancelled.
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
                case .run(let command, let group): await run(command, in: group)
                }
                await report(viewed: viewed, changed: [])
            } else if connected {
                do {
                    let changed = try await client.pump(timeout: Self.pumpWait)
                    if !changed.isEmpty { await report(viewed: viewed, changed: changed) }
                } catch {
                    connected = false
                    emit(.connection(.offline("\(error)")))
                    nextAttempt = .now + backoff
                }
            } else if ContinuousClock.now >= nextAttempt {
                connected = await connect(viewed: viewed)
                backoff = connected ? .seconds(1) : min(backoff * 2, .seconds(30))
                nextAttempt = .now + backoff
            } else {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        await sendWhatWasTyped()
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

    private func run(_ command: ChatCommand, in group: String?) async {
        do {
            emit(.finished(command, .success(try await perform(command, in: group ?? ""))))
        } catch {
            emit(.finished(command, .failure(error)))
        }
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
        case .verify(let user):
            let (number, changed) = try await client.verify(user)
            return .safetyNumber(user: user, number: number, changed: changed)
        case .switchTo, .groups, .help, .quit:
            // Local commands never reach the worker; were one sent, it does nothing here.
            return .nothing
        }
    }
}
