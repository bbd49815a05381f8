import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Commits and proposals carry the sender's history claim too (docs/SECURITY.md, "The
/// fork-consistency guarantee, exactly"), so a fork the server shows before a change to
/// the group is revealed by the change itself, not only by a later application message.
@Suite struct HandshakeClaimTests {
    /// alice's record of g's log from the epoch bob joined in (the test plays her client).
    static func alicesLedger(_ scene: EngineScene) throws -> HistoryLedger {
        try HistoryLedger(
            suite: scene.alice.suite.suite,
            epoch: scene.alice.epoch,
            epochAuthenticator: scene.alice.epochAuthenticator,
            startSeq: scene.seq
        )
    }

    /// alice self-updates with her claim from `ledger`; bob receives the commit.
    static func aliceCommits(_ scene: EngineScene, claiming ledger: inout HistoryLedger) async throws {
        var options = CommitOptions.selfUpdate
        options.authenticatedData = ledger.claimForOutgoing().encoded()
        let commit = try scene.alice.commit(options)
        _ = try scene.alice.process(commit.message)
        scene.server.deliver(try scene.frame(commit.message))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
    }

    /// bob's self-update commit and his leave proposal each carry his claim in their signed
    /// authenticated_data, about the epoch they were sent in.
    @Test func bobsCommitsAndProposalsCarryHisClaim() async throws {
        let scene = try await EngineScene()
        try await scene.bob.update("g")
        try await scene.bob.leave("g")
        let sent = try scene.server.sends.map { try MLSMessage(tlsEncoded: [UInt8]($0.message)) }
        var kinds: [String] = []
        for case .publicMessage(let message) in sent {
            let claim = try #require(try HistoryClaim(authenticatedData: message.content.authenticatedData))
            #expect(claim.epoch == message.content.epoch)
            if case .commit = message.content.body { kinds.append("commit") }
            if case .proposal = message.content.body { kinds.append("proposal") }
        }
        // The self-update sync does after joining, the one asked for, then the leave.
        #expect(kinds == ["commit", "commit", "proposal"])
    }

    /// The server shows bob one message at #2 and alice another; alice's next message is
    /// a commit. Its claim names her chain at #2, which bob's does not match: bob is told,
    /// the commit still applies, and the group carries on in the new epoch.
    @Test func aForkBeforeACommitIsRevealedByTheCommit() async throws {
        let scene = try await EngineScene()
        var ledger = try Self.alicesLedger(scene)
        scene.server.deliver(try scene.fromAlice("shown to bob at #2"))
        try ledger.record(seq: scene.seq, message: Array("another message, shown to alice at #2".utf8))
        try await Self.aliceCommits(scene, claiming: &ledger)
        #expect(
            try await scene.notices().contains(
                "Warning: the server showed you and alice different histories of g after #1."
            )
        )
        #expect(await scene.summary()?.epoch == scene.alice.epoch)
        scene.server.deliver(try scene.fromAlice("after the change"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["shown to bob at #2", "after the change"])
    }

    /// The same commit with a claim that matches what bob was shown: no warning.
    @Test func aCommitWhoseClaimMatchesWarnsOfNothing() async throws {
        let scene = try await EngineScene()
        var ledger = try Self.alicesLedger(scene)
        let shown = try scene.fromAlice("shown to both at #2")
        guard case .message(let frame) = shown else { return }
        scene.server.deliver(shown)
        try ledger.record(seq: frame.seq, message: [UInt8](frame.message))
        try await Self.aliceCommits(scene, claiming: &ledger)
        #expect(try await scene.notices().allSatisfy { !$0.hasPrefix("Warning") })
        #expect(await scene.summary()?.epoch == scene.alice.epoch)
    }
}
