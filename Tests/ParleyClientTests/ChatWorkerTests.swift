import Foundation
import ParleyChat
import Testing

@testable import ParleyClient

/// The chat's network worker against a real server: commands handed over
/// without waiting come back as events, arriving messages as snapshots.
@Suite(.serialized) struct ChatWorkerTests {
    /// The worker's events in order; gives up (nil) after `seconds`.
    struct EventLog {
        var iterator: AsyncStream<WorkerEvent>.Iterator

        mutating func first(where match: (WorkerEvent) -> Bool) async -> WorkerEvent? {
            while let event = await iterator.next() {
                if match(event) { return event }
            }
            return nil
        }
    }

    @Test func commandsGoOutAndComeBackAsEvents() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        try await alice.createGroup("group1")

        let (events, sink) = AsyncStream.makeStream(of: WorkerEvent.self)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(120))
            sink.finish()
        }
        let requests = RequestQueue()
        let worker = ChatWorker(client: alice, requests: requests) { sink.yield($0) }
        let running = Task { await worker.run(viewing: "group1") }
        var log = EventLog(iterator: events.makeAsyncIterator())

        let connected = await log.first {
            if case .connection(.connected) = $0 { true } else { false }
        }
        #expect(connected != nil)

        requests.push([.run(.add(users: ["bob"]), group: "group1")])
        let added = await log.first {
            if case .finished(.add, _) = $0 { true } else { false }
        }
        guard case .finished(_, .success(.added(let users))) = added else {
            Issue.record("the add did not succeed: \(String(describing: added))")
            return
        }
        #expect(users == ["bob"])
        let members = await log.first {
            if case .snapshot(let snapshot) = $0 {
                snapshot.groups.first?.members.contains("bob") == true
            } else {
                false
            }
        }
        #expect(members != nil)

        requests.push([.run(.message("hi from the chat"), group: "group1")])
        let sent = await log.first {
            if case .finished(.message, _) = $0 { true } else { false }
        }
        guard case .finished(_, .success(.sent)) = sent else {
            Issue.record("the message was not sent: \(String(describing: sent))")
            return
        }
        try await bob.sync()
        #expect(try await bob.history("group1").contains { $0.text == "hi from the chat" && $0.sender == "alice" })

        // A message that arrives is a snapshot naming its group, with the text in the history.
        _ = try await bob.send("hello alice", to: "group1")
        let arrived = await log.first {
            if case .snapshot(let snapshot) = $0 {
                snapshot.changed.contains("group1") && snapshot.history.contains { $0.text == "hello alice" }
            } else {
                false
            }
        }
        #expect(arrived != nil)

        // A failure is an event carrying the client's typed error.
        requests.push([.run(.remove(user: "nobody"), group: "group1")])
        let refused = await log.first {
            if case .finished(.remove, _) = $0 { true } else { false }
        }
        guard case .finished(_, .failure(let error)) = refused else {
            Issue.record("removing a non-member did not fail: \(String(describing: refused))")
            return
        }
        #expect(error as? ClientError == .noSuchMember("nobody", group: "group1"))

        // A message typed just before quitting is not lost with the worker.
        requests.push([.run(.message("typed before quitting"), group: "group1")])
        running.cancel()
        await running.value
        try await alice.sync()
        try await bob.sync()
        #expect(try await bob.history("group1").contains { $0.text == "typed before quitting" })

        // Losing the server is reported, not thrown.
        let again = Task { await worker.run(viewing: "group1") }
        _ = await log.first {
            if case .connection(.connected) = $0 { true } else { false }
        }
        await harness.stop()
        let offline = await log.first {
            if case .connection(.offline) = $0 { true } else { false }
        }
        #expect(offline != nil)

        again.cancel()
        await again.value
        watchdog.cancel()
        await bob.close()
        await alice.close()
    }
}
