import Foundation
import Synchronization
import Testing

@testable import ParleyChat
@testable import ParleyClient

/// Issue 15: `parley chat` is driven by key and network events. While nothing happens, the
/// key reader and the network worker sleep; an event wakes them at once.
@Suite struct ChatEventTests {
    /// What the reader reported, in order.
    final class Inputs: Sendable {
        let seen = Mutex<[Terminal.Input]>([])
        func add(_ input: Terminal.Input) { seen.withLock { $0.append(input) } }
        var count: Int { seen.withLock { $0.count } }
        var kinds: [String] {
            seen.withLock { inputs in
                inputs.map { input in
                    switch input {
                    case .bytes(let bytes): "bytes \(bytes)"
                    case .quiet: "quiet"
                    case .closed: "closed"
                    }
                }
            }
        }
    }

    /// Before, the reader reported a quiet moment every 50 ms, typing or not (20 a second).
    @Test func theKeyReaderSleepsUntilAKeyAndReportsOneQuietMomentAfterIt() async throws {
        var descriptors: [Int32] = [-1, -1]
        #expect(pipe(&descriptors) == 0)
        defer { for descriptor in descriptors { close(descriptor) } }
        let reader = InputReader(input: descriptors[0])
        let inputs = Inputs()
        reader.start { inputs.add($0) }
        try await Task.sleep(for: .milliseconds(600))
        #expect(inputs.count == 0, "nothing typed, nothing reported: \(inputs.kinds)")
        var escape: UInt8 = 0x1B
        #expect(write(descriptors[1], &escape, 1) == 1)
        for _ in 0..<400 where inputs.count < 2 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(400))
        // The lone ESC, then one quiet moment that resolves it, then nothing more.
        #expect(inputs.kinds == ["bytes [27]", "quiet"])
        let stopping = ContinuousClock.now
        reader.stop()
        #expect(ContinuousClock.now - stopping < .seconds(1), "stop wakes the reader at once")
    }

    /// An idle worker waits for an event instead of pumping on a timer (10 pumps a second
    /// before); a request and an arriving frame each wake it at once.
    @Test func anIdleWorkerWaitsForEventsAndWakesForEach() async throws {
        let backend = ScriptedBackend()
        let (events, sink) = AsyncStream.makeStream(of: WorkerEvent.self)
        let requests = RequestQueue()
        let worker = ChatWorker(client: backend, requests: requests) { sink.yield($0) }
        let running = Task { await worker.run(viewing: "g") }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            sink.finish()
        }
        var log = events.makeAsyncIterator()
        while let event = await log.next() {
            if case .connection(.connected) = event { break }
        }
        try await Task.sleep(for: .seconds(1))
        let idlePumps = await backend.pumps
        #expect(idlePumps <= 2, "\(idlePumps) pumps in an idle second")

        let asked = ContinuousClock.now
        requests.push([.run(.members, group: "g")])
        while let event = await log.next() {
            if case .finished(.members, _) = event { break }
        }
        // Well under the worker's 60 s idle ceiling, with room for a loaded machine's scheduling.
        #expect(ContinuousClock.now - asked < .seconds(30), "a request wakes the worker")
        // The snapshot that follows every request; then the worker waits again.
        while let event = await log.next() {
            if case .snapshot = event { break }
        }

        // Once the worker waits for a frame (no pump in progress), a frame arrives.
        while await !backend.isWaitingForArrival { try await Task.sleep(for: .milliseconds(5)) }
        let pumpsBefore = await backend.pumps
        await backend.arrive("a frame came")
        var sawArrival = false
        while let event = await log.next() {
            // Only a pump reports a changed group: the arrival woke the worker, which pumped.
            if case .snapshot(let snapshot) = event, snapshot.changed == ["g"],
                snapshot.history.contains(where: { $0.text == "a frame came" })
            {
                sawArrival = true
                break
            }
        }
        #expect(sawArrival, "an arriving frame wakes the worker")
        #expect(await backend.pumps > pumpsBefore)
        running.cancel()
        watchdog.cancel()
        sink.finish()
        _ = await running.value
    }
}
