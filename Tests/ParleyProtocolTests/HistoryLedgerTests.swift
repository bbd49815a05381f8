import Foundation
import MLS
import ParleyProtocol
import Testing

/// The fork and drop detector, driven the way a hostile server would drive two members:
/// each member's ledger records the log the server showed *it*, and a claim from one is
/// checked against the other's.
@Suite struct HistoryLedgerTests {
    let suite = CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519
    let authenticator = [UInt8](repeating: 7, count: 32)

    func ledger(epoch: UInt64 = 0, startSeq: UInt64 = 0, authenticator: [UInt8]? = nil) throws -> HistoryLedger {
        try HistoryLedger(
            suite: suite,
            epoch: epoch,
            epochAuthenticator: authenticator ?? self.authenticator,
            startSeq: startSeq
        )
    }

    func message(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Records `messages` at consecutive seqs after the ledger's last.
    func show(_ messages: [String], to ledger: inout HistoryLedger) throws {
        for text in messages { try ledger.record(seq: ledger.lastSeq + 1, message: message(text)) }
    }

    @Test func membersShownTheSameLogAgree() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2", "m3"], to: &alice)
        try show(["m1", "m2", "m3"], to: &bob)
        let claim = alice.claimForOutgoing()
        #expect(claim.lastSeq == 3 && claim.senderIndex == 0)
        let verdict = bob.check(claim, from: 0, seq: 4)
        #expect(verdict.history == .consistent)
        #expect(!verdict.isAlarming)
        // A claim from before the latest message is checked against that point of the chain.
        var carol = try ledger()
        try show(["m1", "m2"], to: &carol)
        #expect(bob.check(carol.claimForOutgoing(), from: 2, seq: 4).history == .consistent)
    }

    /// The server shows bob another message at seq 3 than alice: alice's next claim reveals it,
    /// and the warning names the last seq alice and bob are known to agree on.
    @Test func aForkAtOneSeqIsReportedAfterTheLastAgreedSeq() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2"], to: &alice)
        try show(["m1", "m2"], to: &bob)
        #expect(bob.check(alice.claimForOutgoing(), from: 0, seq: 3).history == .consistent)
        try alice.record(seq: 3, message: message("alice's m2 claim"))
        try bob.record(seq: 3, message: message("alice's m2 claim"))
        try alice.record(seq: 4, message: message("for alice"))
        try bob.record(seq: 4, message: message("for bob"))
        let verdict = bob.check(alice.claimForOutgoing(), from: 0, seq: 5)
        #expect(verdict.history == .fork(after: 2))
        #expect(verdict.isAlarming)
    }

    /// The same messages in another order are another history.
    @Test func aReorderIsAFork() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2"], to: &alice)
        try show(["m2", "m1"], to: &bob)
        #expect(bob.check(alice.claimForOutgoing(), from: 0, seq: 3).history == .fork(after: 0))
        #expect(alice.check(bob.claimForOutgoing(), from: 1, seq: 3).history == .fork(after: 0))
    }

    /// The server drops m2 for bob and renumbers the rest so bob sees no gap: alice's claim
    /// is ahead of everything bob was shown.
    @Test func aDropHiddenByRenumberingIsReportedAsWithheld() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2", "m3"], to: &alice)
        try show(["m1", "m3"], to: &bob)
        let verdict = bob.check(alice.claimForOutgoing(), from: 0, seq: 3)
        #expect(verdict.history == .ahead(seqs: 3...3))
        #expect(verdict.isAlarming)
    }

    /// The server drops m2 for bob and leaves the gap: a claim at the missing seq points at
    /// nothing bob has; a later claim disagrees with bob's chain.
    @Test func aDropLeavingAGapIsReported() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2"], to: &alice)
        try bob.record(seq: 1, message: message("m1"))
        let claimAt2 = alice.claimForOutgoing()
        try alice.record(seq: 3, message: message("m3"))
        try bob.record(seq: 3, message: message("m3"))
        #expect(bob.check(claimAt2, from: 0, seq: 4).history == .ahead(seqs: 2...2))
        #expect(bob.check(alice.claimForOutgoing(), from: 0, seq: 5).history == .fork(after: 0))
    }

    /// A claim that puts the sender's view at or after the message's own seq fits no single order.
    @Test func aClaimAtOrAfterItsOwnSeqIsAFork() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "m2", "m3"], to: &alice)
        try show(["m1", "m2", "m3"], to: &bob)
        #expect(bob.check(alice.claimForOutgoing(), from: 0, seq: 3).history == .fork(after: 0))
    }

    /// Carol's messages carry indices 0, 1, 2, 3: the server withholds 1 from bob, delivers it
    /// late, then replays 3.
    @Test func senderIndicesRevealWithheldLateAndReplayedMessages() throws {
        var carol = try ledger()
        var bob = try ledger()
        let claims = (0..<4).map { _ in carol.claimForOutgoing() }
        #expect(claims.map(\.senderIndex) == [0, 1, 2, 3])
        #expect(!bob.check(claims[0], from: 2, seq: 1).isAlarming)
        let gap = bob.check(claims[2], from: 2, seq: 2)
        #expect(gap.withheldFromSender == 1 && gap.isAlarming)
        let late = bob.check(claims[1], from: 2, seq: 3)
        #expect(late.arrivedLate && late.withheldFromSender == 0 && late.isAlarming)
        #expect(!bob.check(claims[3], from: 2, seq: 4).isAlarming)
        let replay = bob.check(claims[3], from: 2, seq: 5)
        #expect(replay.replayed && replay.isAlarming)
        // Another sender's indices are their own.
        #expect(!bob.check(claims[0], from: 3, seq: 6).isAlarming)
    }

    /// A message the server refused gives its index back, so receivers see no gap.
    @Test func aRefusedMessageLeavesNoGap() throws {
        var alice = try ledger()
        var bob = try ledger()
        let refused = alice.claimForOutgoing()
        alice.withdraw(refused)
        let next = alice.claimForOutgoing()
        #expect(next.senderIndex == 0)
        #expect(!bob.check(next, from: 0, seq: 1).isAlarming)
        // Withdrawing a claim that is not the latest changes nothing.
        _ = alice.claimForOutgoing()
        alice.withdraw(next)
        #expect(alice.claimForOutgoing().senderIndex == 2)
    }

    /// A member who joins at seq 10 compares with one who was there from the start: the chain
    /// is per epoch, seeded with the epoch authenticator both derive.
    @Test func membersWhoJoinedAtDifferentSeqsCompareWithinTheEpoch() throws {
        var alice = try ledger()
        try show(Array(repeating: "before dave", count: 9), to: &alice)
        let end = HistoryClaim.EpochEnd(lastSeq: alice.lastSeq, hash: alice.head)
        let epoch1 = [UInt8](repeating: 9, count: 32)
        try alice.beginEpoch(1, epochAuthenticator: epoch1, startSeq: 10)
        var dave = try ledger(epoch: 1, startSeq: 10, authenticator: epoch1)
        #expect(dave.check(alice.claimForOutgoing(), from: 0, seq: 11).history == .consistent)
        try show(["hi dave"], to: &alice)
        try show(["hi dave"], to: &dave)
        #expect(alice.check(dave.claimForOutgoing(), from: 3, seq: 12).history == .consistent)
        // dave was not in epoch 0, so alice's view of it is not his to compare.
        let claim = alice.claimForOutgoing()
        #expect(claim.previousEpoch == end && end.lastSeq == 9)
        #expect(!dave.check(claim, from: 0, seq: 13).previousEpochForked)
    }

    /// Bob and alice agree on epoch 1 (the commit binds it), but the server showed them
    /// different messages at the end of epoch 0, after their last claims there.
    @Test func aForkAtTheEndOfAnEpochIsRevealedInTheNext() throws {
        var alice = try ledger()
        var bob = try ledger()
        try show(["m1", "for alice"], to: &alice)
        try show(["m1", "for bob"], to: &bob)
        let epoch1 = [UInt8](repeating: 1, count: 32)
        try alice.beginEpoch(1, epochAuthenticator: epoch1, startSeq: 3)
        try bob.beginEpoch(1, epochAuthenticator: epoch1, startSeq: 3)
        let verdict = bob.check(alice.claimForOutgoing(), from: 0, seq: 4)
        #expect(verdict.history == .consistent)
        #expect(verdict.previousEpochForked && verdict.isAlarming)
    }

    @Test func claimsFromAnotherEpochOrWithoutOneAreUnverifiable() throws {
        var alice = try ledger()
        var bob = try ledger()
        try bob.beginEpoch(1, epochAuthenticator: authenticator, startSeq: 1)
        #expect(bob.check(alice.claimForOutgoing(), from: 0, seq: 2).history == .unverifiable(.otherEpoch))
        #expect(bob.check(nil, from: 0, seq: 2).history == .unverifiable(.noClaim))
        #expect(!bob.check(nil, from: 0, seq: 2).isAlarming)
    }

    /// Memory stays bounded however long the epoch; claims older than the window are
    /// unverifiable, not alarms, and the ledger survives being stored.
    @Test func theLedgerIsBoundedAndPersists() throws {
        var alice = try ledger()
        var bob = try ledger()
        let early = alice.claimForOutgoing()
        for seq in 1...UInt64(HistoryLedger.window + 500) {
            try alice.record(seq: seq, message: [UInt8(truncatingIfNeeded: seq)])
            try bob.record(seq: seq, message: [UInt8(truncatingIfNeeded: seq)])
        }
        #expect(bob.check(early, from: 0, seq: bob.lastSeq + 1).history == .unverifiable(.beyondWindow))
        for leaf in 0..<UInt32(HistoryLedger.maxTrackedSenders + 10) {
            _ = bob.check(HistoryClaim(epoch: 0, lastSeq: 1, hash: [1], senderIndex: 1000), from: leaf, seq: .max)
        }
        let stored = try JSONEncoder().encode(bob)
        #expect(stored.count < 4 << 20)
        var restored = try JSONDecoder().decode(HistoryLedger.self, from: stored)
        #expect(restored == bob)
        #expect(restored.check(alice.claimForOutgoing(), from: 0, seq: restored.lastSeq + 1).history == .consistent)
    }

    /// Seqs must increase; extreme values from a hostile server neither trap nor wrap.
    @Test func seqsIncreaseAndExtremesDoNotTrap() throws {
        var bob = try ledger()
        try bob.record(seq: 5, message: [])
        #expect(throws: HistoryLedgerError.seqNotIncreasing(last: 5, got: 5)) { try bob.record(seq: 5, message: []) }
        #expect(throws: HistoryLedgerError.seqNotIncreasing(last: 5, got: 3)) {
            try bob.beginEpoch(1, epochAuthenticator: authenticator, startSeq: 3)
        }
        #expect(throws: HistoryLedgerError.epochNotIncreasing) {
            try bob.beginEpoch(0, epochAuthenticator: authenticator, startSeq: 6)
        }
        let far = HistoryClaim(epoch: 0, lastSeq: .max, hash: [0], senderIndex: .max)
        let verdict = bob.check(far, from: .max, seq: .max)
        #expect(verdict.history == .ahead(seqs: 6...UInt64.max))
        #expect(verdict.withheldFromSender == Int(UInt32.max))
        try bob.record(seq: .max, message: [])
        #expect(throws: HistoryLedgerError.self) { try bob.record(seq: .max, message: []) }
        #expect(bob.check(far, from: 1, seq: .max).history == .fork(after: 0))
    }

    @Test func claimsRoundTripAndDecodeStrictly() throws {
        let claim = HistoryClaim(
            epoch: 3,
            lastSeq: 41,
            hash: [UInt8](repeating: 0xAB, count: 32),
            senderIndex: 7,
            previousEpoch: .init(lastSeq: 30, hash: [UInt8](repeating: 1, count: 32))
        )
        #expect(try HistoryClaim(authenticatedData: claim.encoded()) == claim)
        var plain = claim
        plain.previousEpoch = nil
        #expect(try HistoryClaim(authenticatedData: plain.encoded()) == plain)
        #expect(try HistoryClaim(authenticatedData: []) == nil)
        let bytes = claim.encoded()
        #expect(throws: HistoryClaimError.malformed) { try HistoryClaim(authenticatedData: bytes + [0]) }
        #expect(throws: HistoryClaimError.malformed) { try HistoryClaim(authenticatedData: Array(bytes.dropLast())) }
        #expect(throws: HistoryClaimError.unsupportedVersion(2)) {
            try HistoryClaim(authenticatedData: [2] + bytes.dropFirst())
        }
        for badHash in [[UInt8](), [UInt8](repeating: 0, count: 65)] {
            let bad = HistoryClaim(epoch: 0, lastSeq: 0, hash: badHash, senderIndex: 0)
            #expect(throws: HistoryClaimError.malformed) { try HistoryClaim(authenticatedData: bad.encoded()) }
        }
        var presence = plain.encoded()
        presence[presence.count - 1] = 2
        #expect(throws: HistoryClaimError.malformed) { try HistoryClaim(authenticatedData: presence) }
        #expect(throws: HistoryClaimError.malformed) {
            try HistoryClaim(authenticatedData: [1] + [UInt8](repeating: 0, count: 1 << 16))
        }
    }
}
