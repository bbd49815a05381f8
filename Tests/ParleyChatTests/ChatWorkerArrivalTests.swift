import Foundation
import Synchronization
import Testing

@testable import ParleyChat
@testable import ParleyClient

/// A client the worker drives without a server: `add` waits until the test lets it finish,
/// and messages "arrive" (as the engine applies them during a command) when the test says.
actor ScriptedBackend: ChatBackend {
    var entries: [HistoryEntry] = []
    var lastSeq: UInt64 = 0
    private var addGate: CheckedContinuation<Void, Never>?
    private(set) var addStarted = false
    /// Frames "arrived" so far, and the worker's waits for more.
    private var arrivals: UInt64 = 0
    private var arrivalWaiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var cancelledWaits: Set<UUID> = []
    /// How often the worker pumped: an idle worker must not (issue 15).
    private(set) var pumps = 0
    private var pumped: UInt64 = 0

    func arrive(_ text: String) {
        lastSeq += 1
        entries.append(HistoryEntry(seq: lastSeq, time: 0, sender: "alice", kind: .text, text: text))
        arrivals += 1
        for waiter in arrivalWaiters.values { waiter.resume() }
        arrivalWaiters = [:]
    }

    var isWaitingForArrival: Bool { !arrivalWaiters.isEmpty }

    func arrivalMark() -> ArrivalMark { ArrivalMark(connection: 1, count: arrivals) }

    /// Waits for `arrive` or cancellation; the timeout is not needed by these tests.
    func waitForArrival(after mark: ArrivalMark, timeout: Duration) async {
        guard arrivals <= mark.count else { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if cancelledWaits.remove(id) != nil {
                    continuation.resume()
                } else {
                    arrivalWaiters[id] = continuation
                }
            }
        } onCancel: {
            Task { await self.cancelWait(id) }
        }
    }

    private func cancelWait(_ id: UUID) {
        if let waiter = arrivalWaiters.removeValue(forKey: id) { waiter.resume() } else { cancelledWaits.insert(id) }
    }

    func finishAdd() {
        addGate?.resume()
        addGate = nil
    }

    func sync() async throws {}
    func pump(timeout: Duration) async throws -> Set<String> {
        pumps += 1
        try await Task.sleep(for: timeout)
        defer { pumped = arrivals }
        return arrivals > pumped ? ["g"] : []
    }
    func history(_ name: String) async throws -> [HistoryEntry] { entries }
    func groupSummaries() async -> [GroupSummary] {
        [GroupSummary(name: "g", members: ["alice", "bob"], admins: ["bob"], epoch: 1, lastSeq: lastSeq, active: true)]
    }
    func send(_ text: String, to name: String) async throws -> SendOutcome { .queued }
    func createGroup(_ name: String) async throws {}
    func members(_ name: String) async throws -> [String] { ["alice", "bob"] }
    func add(_ users: [String], to name: String) async throws {
        addStarted = true
        await withCheckedContinuation { addGate = $0 }
    }
    func remove(_ user: String, from name: String) async throws {}
    func leave(_ name: String) async throws {}
    func destroy(_ name: String) async throws {}
    func upgrade(_ name: String) async throws {}
    func verify(_ user: String) async throws -> (number: String, changed: Bool) { ("", false) }
    func devices() async throws -> [DeviceInfo] { [] }
    func approveLink(code: String, deviceName: String, messagesPerGroup: Int) async throws -> LinkApproval {
        LinkApproval(deviceName: "laptop", addedTo: [], notAddedTo: [:], messages: 0)
    }
}

@Suite struct ChatWorkerArrivalTests {
    /// A long `/add` is running; a message arrives meanwhile. The screen gets it while the
    /// command still runs, not only once it is done.
    @Test func arrivalsReachTheScreenWhileACommandRuns() async throws {
        let backend = ScriptedBackend()
        let (events, sink) = AsyncStream.makeStream(of: WorkerEvent.self)
        let requests = RequestQueue()
        let worker = ChatWorker(client: backend, requests: requests) { sink.yield($0) }
        let running = Task { await worker.run(viewing: "g") }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            sink.finish()
        }
        requests.push([.run(.add(users: ["carol", "dave"]), group: "g")])
        while await !backend.addStarted { try await Task.sleep(for: .milliseconds(5)) }
        await backend.arrive("hello while you add")

        var sawArrival = false
        for await event in events {
            if case .snapshot(let snapshot) = event,
                snapshot.history.contains(where: { $0.text == "hello while you add" })
            {
                sawArrival = true
                #expect(snapshot.changed == ["g"])
                await backend.finishAdd()
            }
            if case .finished(.add, let result) = event {
                #expect(sawArrival, "the arrival reached the screen only after the command finished")
                if case .failure(let error) = result { Issue.record("the add failed: \(error)") }
                break
            }
        }
        #expect(sawArrival)
        running.cancel()
        watchdog.cancel()
        sink.finish()
        _ = await running.value
    }
}
