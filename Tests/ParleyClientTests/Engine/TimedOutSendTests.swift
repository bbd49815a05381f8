import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// A send whose echo comes after the client stopped waiting (attacker review: "a send that
/// times out can be logged twice"; docs/SECURITY.md).
@Suite struct TimedOutSendTests {
    /// The server logs bob's message but holds its echo past his timeout. bob's next send
    /// must not resend the first on the same connection with new bytes (the server would log
    /// it twice and every member would read it twice): the timeout closed the connection, so
    /// the next one's replay settles the first copy by its bytes, and only the second goes out.
    @Test func aTimedOutSendIsSettledByTheReplayNotSentAgain() async throws {
        let scene = try await EngineScene()
        await scene.bob.setTimeout(.milliseconds(200))
        scene.server.script(.acceptSilently)
        #expect(try await scene.bob.send("once", to: "g") == .queued)
        let second = try await scene.bob.send("twice?", to: "g")
        guard case .sent = second else {
            Issue.record("the second send did not go out: \(second)")
            return
        }
        let sent = scene.server.sends.map(\.message)
        #expect(sent.count == 2, "the server was sent \(sent.count) messages for two texts")
        #expect(try await scene.texts() == ["once", "twice?"])
        #expect(scene.server.state.withLock { $0.accepted["g"]?.count } == 2)
        // The first copy, logged once, is no longer queued: nothing is left to resend.
        #expect(try scene.store.outbox().isEmpty)
    }

    /// Review s5 H2: the server has taken bob's message into its log writer but not stored it
    /// when bob times out, so the next connection's replay lacks it. The client must resend
    /// the bytes it submitted, under the same id, not a new encryption of the text: the copy
    /// the server stores later (echoed live with the id) must still confirm it, and the
    /// outbox must not wedge on a resend the server answers with that stored echo.
    @Test func aSendStoredAfterTheReplayStillConfirmsAndNothingWedges() async throws {
        let scene = try await EngineScene()
        await scene.bob.setTimeout(.milliseconds(200))
        scene.server.script(.acceptLate)
        #expect(try await scene.bob.send("late", to: "g") == .queued)
        // The new connection's replay lacks it; its resend is refused as still in flight.
        #expect(try await scene.bob.send("second", to: "g") != .queued)
        let submissions = scene.server.sends.filter { $0.id == scene.server.sends[0].id }.map(\.message)
        #expect(submissions.count == 2)
        #expect(Set(submissions).count == 1, "the text was encrypted anew while its first copy was in flight")
        scene.server.storeLate()
        _ = try await scene.bob.pump(timeout: .milliseconds(50))
        #expect(try scene.store.outbox().isEmpty)
        #expect(try await scene.bob.send("third", to: "g") != .queued)
        #expect(try await scene.texts() == ["second", "late", "third"])
        #expect(scene.server.state.withLock { $0.accepted["g"]?.count } == 3)
    }
}
