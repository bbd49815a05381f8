import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Late application messages of a past epoch, on a real server (RFC 9420 §15.3): the server
/// relays them for its grace after the commit that ended the epoch, by its clock; a member
/// keeps the keys for the same grace by the same clock, the log's, however long it was away.
@Suite struct LateMessageGraceTests {
    /// bob commits and goes offline; by his clock a minute passes (injected, not slept), more
    /// than the client's 30 s grace. Meanwhile alice, who has not yet read bob's commit, sends
    /// at the old epoch, seconds after it by the server's clock, which relays it. Back, bob
    /// reads every message.
    @Test func aCommitterAwayLongerThanTheGraceReadsWhatTheServerRelayed() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        // alice reads bob's self-update on joining, so she is one epoch behind after the next.
        try await alice.sync()
        try await bob.update("g")
        await bob.close()
        let bobEngine = try #require(await bob.engine)
        await bobEngine.setClock { UInt64(Date().timeIntervalSince1970 * 1000) + 60_000 }

        // alice's connection is open, bob's commit unread in it: her sends encrypt at the old epoch.
        let aliceEngine = try #require(await alice.engine)
        let aliceEpoch = await aliceEngine.groups["g"]?.epoch
        let bobEpoch = await bobEngine.groups["g"]?.epoch
        #expect(await alice.isConnectionClosed == false)
        #expect(aliceEpoch.map { $0 + 1 } == bobEpoch)
        #expect(try await alice.send("late 0", to: "g") != .queued)
        // The echo of that send made her read bob's commit: this one is at the new epoch.
        #expect(await aliceEngine.groups["g"]?.epoch == bobEpoch)
        #expect(try await alice.send("caught up", to: "g") != .queued)

        try await bob.sync()
        let lines = try await bob.history("g")
        #expect(lines.filter { $0.kind == .text }.map(\.text) == ["late 0", "caught up"])
        #expect(!lines.contains { $0.text.contains("could not be decrypted") })
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }

    /// The engine, with a scripted server: bob's clock runs ten minutes on between alice's
    /// commit and her late message of the epoch before, which the log stamps 20 s after the
    /// commit: bob reads it.
    @Test func theEngineJudgesTheGraceByTheLogsTimes() async throws {
        let scene = try await EngineScene()
        let late = try scene.alice.encrypt(try ApplicationContent.text("late").encoded())
        let committed = try await commitByAlice(in: scene)
        await scene.bob.setClock { committed + 600_000 }
        scene.server.deliver(try scene.frame(late, time: committed + 20_000))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["late"])
        #expect(try await !scene.notices().contains { $0.contains("could not be decrypted") })
    }

    /// A hostile server stamps alice's late message a day after the commit: bob's clock says
    /// the grace is not over, and both clocks must agree, so he reads it; a time far ahead
    /// can only keep keys longer, within the count bound. The next message arrives as well.
    @Test func aServerTimeFarAheadDoesNotEndAPastEpochsGrace() async throws {
        let scene = try await EngineScene()
        let late = try scene.alice.encrypt(try ApplicationContent.text("late").encoded())
        let committed = try await commitByAlice(in: scene)
        scene.server.deliver(try scene.frame(late, time: committed + 86_400_000), try scene.fromAlice("current"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["late", "current"])
        #expect(try await !scene.notices().contains { $0.contains("could not be decrypted") })
    }

    /// alice commits a self-update and bob processes it; returns the commit's log time (ms).
    private func commitByAlice(in scene: EngineScene) async throws -> UInt64 {
        let update = try scene.alice.selfUpdate()
        _ = try scene.alice.process(update.message)
        let committed = scene.now
        scene.server.deliver(try scene.frame(update.message, time: committed))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        return committed
    }
}
