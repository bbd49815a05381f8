import Foundation
import ProcessSupport
import Testing

@testable import ParleyClient

/// A real `parley` client process SIGKILL-ed while it sends and while it syncs, at moments
/// spread over its whole run; afterwards the home is opened again. Nothing it was told was
/// sent is lost, nothing is applied twice, and its MLS state, history and cursor agree with
/// the group's (ClientStore writes a group's state, cursor, new history lines and the
/// outbox row its echo confirmed in one transaction).
@Suite(.serialized) struct ClientCrashTests {
    static let binary = ChatTerminalTests.repository.appendingPathComponent(".build/debug/parley").path

    /// One run of the CLI: what it printed, and whether it ended by itself before the kill.
    struct Run {
        var output: String
        var finished: Bool
    }

    /// Runs `parley ARGUMENTS --home HOME`; kills it with SIGKILL once `limit` has passed.
    static func run(
        _ arguments: [String],
        home: String,
        password: String,
        killAfter limit: Duration
    ) async throws
        -> Run
    {
        let output = NSTemporaryDirectory() + "parley-crash-out-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try ChildProcess.spawn(
            binary,
            arguments + ["--home", home],
            output: .file(output, append: false),
            environment: ["PARLEY_PASSWORD": password]
        )
        let finished = await child.wait(atMost: limit) != nil
        if !finished { await child.stop(with: SIGKILL) }
        return Run(output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "", finished: finished)
    }

    /// How long one unhurried run of the command takes, so the kills can be spread over it.
    static func duration(of arguments: [String], home: String, password: String) async throws -> Duration {
        let start = ContinuousClock.now
        let outcome = try await run(arguments, home: home, password: password, killAfter: .seconds(120))
        try #require(outcome.finished, "parley \(arguments.joined(separator: " ")) did not finish: \(outcome.output)")
        return ContinuousClock.now - start
    }

    /// Text lines as every member must hold them.
    static func lines(_ client: ParleyClient, _ group: String) async throws -> [String] {
        try await client.history(group).filter { $0.kind == .text }.map { "#\($0.seq) \($0.sender): \($0.text)" }
    }

    /// After the kills: bob's home opens, catches up, and agrees with alice in every respect;
    /// both can still encrypt to and decrypt from each other (the MLS state matches the cursor).
    static func recover(_ harness: Harness, alice: ParleyClient) async throws -> ParleyClient {
        let bob = try harness.client("bob")
        try await bob.unlock(password: "password of bob")
        try await bob.sync()
        try await alice.sync()
        let bobView = try await lines(bob, "g")
        #expect(bobView == (try await lines(alice, "g")))
        #expect(Set(bobView).count == bobView.count)
        let (bobGroup, aliceGroup) = (await bob.groupSummaries().first, await alice.groupSummaries().first)
        #expect(bobGroup?.epoch == aliceGroup?.epoch)
        #expect(bobGroup?.lastSeq == aliceGroup?.lastSeq)
        #expect(bobGroup?.problem == nil)
        _ = try await bob.send("bob after the kills", to: "g")
        _ = try await alice.send("alice after the kills", to: "g")
        try await alice.sync()
        try await bob.sync()
        let (aliceEnd, bobEnd) = (try await lines(alice, "g").suffix(2), try await lines(bob, "g").suffix(2))
        #expect(aliceEnd.first?.hasSuffix("bob: bob after the kills") == true)
        #expect(aliceEnd.last?.hasSuffix("alice: alice after the kills") == true)
        #expect(bobEnd == aliceEnd)
        return bob
    }

    @Test func aClientKilledWhileSendingLosesNothingAndSendsNothingTwice() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build parley first (`swift build`)")
        try await Self.withHarness { harness in try await Self.killWhileSending(harness) }
    }

    static func killWhileSending(_ harness: Harness) async throws {
        let (alice, bob) = try await harness.aliceAndBob()
        await bob.close()
        let home = harness.root + "/bob"
        let full = try await duration(of: ["send", "g", "b-first"], home: home, password: "password of bob")
        let rounds = 10
        var acknowledged: [String: UInt64] = [:]
        var killed = 0
        for round in 0..<rounds {
            // Traffic bob processes before his send goes out, and a commit every third round.
            _ = try await alice.send("a\(round)", to: "g")
            if round % 3 == 1 { try await alice.update("g") }
            let text = "b\(round)"
            let outcome = try await run(
                ["send", "g", text],
                home: home,
                password: "password of bob",
                killAfter: full * (Double(round) + 0.5) / Double(rounds)
            )
            if outcome.finished, let seq = acknowledgedSeq(outcome.output) { acknowledged[text] = seq }
            if !outcome.finished { killed += 1 }
        }
        // The early kill moments land before the command could finish, even on a loaded machine.
        #expect(killed >= 3)
        let recovered = try await recover(harness, alice: alice)
        let view = try await lines(recovered, "g")
        for (text, seq) in acknowledged { #expect(view.contains("#\(seq) bob: \(text)")) }
        for round in 0..<rounds {
            #expect(view.contains { $0.hasSuffix("alice: a\(round)") })
            #expect(view.filter { $0.hasSuffix("bob: b\(round)") }.count <= 1)
        }
        await recovered.close()
        await alice.close()
    }

    @Test func aClientKilledWhileSyncingLosesNothingAndAppliesNothingTwice() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build parley first (`swift build`)")
        try await Self.withHarness { harness in try await Self.killWhileSyncing(harness) }
    }

    static func killWhileSyncing(_ harness: Harness) async throws {
        let (alice, bob) = try await harness.aliceAndBob()
        await bob.close()
        let home = harness.root + "/bob"
        var sent: [String] = []
        func traffic(_ round: Int) async throws {
            for index in 0..<20 {
                sent.append("r\(round) m\(index)")
                _ = try await alice.send(sent.last!, to: "g")
                if index == 10 { try await alice.update("g") }
            }
        }
        try await traffic(0)
        let full = try await duration(of: ["read", "g"], home: home, password: "password of bob")
        let rounds = 8
        var killed = 0
        for round in 1...rounds {
            try await traffic(round)
            let outcome = try await run(
                ["read", "g"],
                home: home,
                password: "password of bob",
                killAfter: full * (Double(round) - 0.5) / Double(rounds)
            )
            if !outcome.finished { killed += 1 }
        }
        // The early kill moments land before the command could finish, even on a loaded machine.
        #expect(killed >= 3)
        let recovered = try await recover(harness, alice: alice)
        let received = try await lines(recovered, "g").filter { $0.contains(" alice: r") }
        #expect(received.map { $0.components(separatedBy: " alice: ").last ?? "" } == sent)
        await recovered.close()
        await alice.close()
    }

    /// Runs `body` against a fresh harness and always stops its server afterwards.
    static func withHarness(_ body: (Harness) async throws -> Void) async throws {
        let harness = Harness()
        try await harness.start()
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// The seq in `parley send`'s "Sent (#N)." line.
    static func acknowledgedSeq(_ output: String) -> UInt64? {
        guard let start = output.range(of: "Sent (#"), let end = output[start.upperBound...].firstIndex(of: ")") else {
            return nil
        }
        return UInt64(output[start.upperBound..<end])
    }
}
