import Foundation
import Testing

@testable import MLS

/// Finding 21 (library part): past epochs' keys serve late messages only
/// from members still in the group, and only for a grace period.
@Suite struct PastEpochTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// A clock the test moves by hand.
    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var seconds: UInt64 = 1_800_000_000
        var now: UInt64 { lock.withLock { seconds } }
        func advance(_ delta: UInt64) { lock.withLock { seconds += delta } }
    }

    func threeMembers(policy: GroupPolicy) throws -> (alice: Group, bob: Group, charlie: Group) {
        var alice = try TestClient("alice", suite).createGroup(policy: policy)
        var nobody: [Group] = []
        let clients = [TestClient("bob", suite), TestClient("charlie", suite)]
        let joined = try add(clients, to: &alice, others: &nobody, policy: policy)
        return (alice, joined[0], joined[1])
    }

    @Test func lateMessagesFromARemovedMemberAreRefused() throws {
        var (alice, bob, charlie) = try threeMembers(policy: GroupPolicy(retainedPastEpochs: 2))
        let fromCharlie = try charlie.encrypt(Array("sent before my removal".utf8))
        let fromAlice = try alice.encrypt(Array("still welcome".utf8))
        let removal = try alice.removeMembers([charlie.ownLeaf])
        _ = try alice.process(removal.message)
        _ = try bob.process(removal.message)
        #expect(throws: MLSError.senderRemoved(charlie.ownLeaf)) { try bob.process(fromCharlie) }
        #expect(try bob.process(fromAlice).applicationText == "still welcome")

        // Two commits later, the epoch before the removal is still guarded.
        let earlier = try charlie.encrypt(Array("again".utf8))
        let update = try alice.selfUpdate()
        _ = try alice.process(update.message)
        _ = try bob.process(update.message)
        #expect(bob.pastEpochs.count == 2)
        #expect(bob.pastEpochs.allSatisfy { $0.context.epoch == 2 || $0.removedLater.contains(charlie.ownLeaf) })
        #expect(throws: MLSError.senderRemoved(charlie.ownLeaf)) { try bob.process(earlier) }
        // The guard survives a restore.
        var restored = try Group(serialized: bob.serialized(), policy: bob.policy)
        #expect(restored.pastEpochs.map(\.removedLater) == bob.pastEpochs.map(\.removedLater))
        #expect(throws: MLSError.senderRemoved(charlie.ownLeaf)) { try restored.process(earlier) }
    }

    @Test func pastEpochKeysExpireAfterTheGrace() throws {
        let clock = Clock()
        let policy = GroupPolicy(pastEpochGrace: 30, now: { clock.now })
        var (alice, bob, _) = try threeMembers(policy: policy)
        let first = try alice.encrypt(Array("one".utf8))
        let second = try alice.encrypt(Array("two".utf8))
        let update = try alice.selfUpdate()
        _ = try alice.process(update.message)
        _ = try bob.process(update.message)
        #expect(bob.pastEpochs.first?.endedAt == clock.now)

        clock.advance(10)
        #expect(try bob.process(first).applicationText == "one")
        // The end time survives a restore.
        let restored = try Group(serialized: bob.serialized(), policy: policy)
        #expect(restored.pastEpochs.first?.endedAt == bob.pastEpochs.first?.endedAt)

        clock.advance(21)
        #expect(throws: MLSError.wrongEpoch(message: 1, group: 2)) { try bob.process(second) }
        #expect(bob.pastEpochs.isEmpty)
        // The current epoch is unaffected.
        #expect(try bob.process(alice.encrypt(Array("three".utf8))).applicationText == "three")
    }

    @Test func withoutAClockOnlyTheCountBoundsPastEpochs() throws {
        var (alice, bob, _) = try threeMembers(policy: GroupPolicy())
        let late = try alice.encrypt(Array("late".utf8))
        let update = try alice.selfUpdate()
        _ = try alice.process(update.message)
        _ = try bob.process(update.message)
        bob.expirePastEpochs()
        #expect(try bob.process(late).applicationText == "late")
    }

    /// The grace runs on the delivery service's clock (§15.3): charlie commits, bob and
    /// charlie get to a late message ten minutes later by their own clocks, but it was
    /// accepted 20 s after the commit by the log's, so they read it. A later entry more
    /// than the grace after the commit deletes the keys, by the log's clock alone.
    @Test func theGraceRunsOnTheLogsClockNotOnTheTimeOfProcessing() throws {
        let wall = Clock()
        let policy = GroupPolicy(pastEpochGrace: 30, now: { wall.now })
        var (alice, bob, charlie) = try threeMembers(policy: policy)
        let old = bob.epoch
        let late = try alice.encrypt(Array("one".utf8))
        let later = try alice.encrypt(Array("two".utf8))
        let last = try alice.encrypt(Array("three".utf8))
        let committed: UInt64 = 1_700_000_000
        let update = try charlie.selfUpdate()
        for index in 0..<3 {
            var member = [alice, bob, charlie][index]
            _ = try member.process(update.message, deliveredAt: committed)
            #expect(member.pastEpochs.last?.endedAt == committed)
            if index == 0 { alice = member } else if index == 1 { bob = member } else { charlie = member }
        }

        wall.advance(600)
        #expect(try bob.process(late, deliveredAt: committed + 20).applicationText == "one")
        #expect(try charlie.process(late, deliveredAt: committed + 20).applicationText == "one")
        // The stamp survives a restore; the server relays up to the grace itself, and so do members.
        var restored = try Group(serialized: charlie.serialized(), policy: policy)
        #expect(restored.pastEpochs.last?.endedAt == committed)
        #expect(try restored.process(later, deliveredAt: committed + 30).applicationText == "two")

        // An entry 31 s after the commit by the log's clock: the past epoch's keys go.
        #expect(try bob.process(alice.encrypt(Array("now".utf8)), deliveredAt: committed + 31).applicationText == "now")
        #expect(bob.pastEpochs.isEmpty)
        #expect(throws: MLSError.wrongEpoch(message: old, group: old + 1)) {
            try bob.process(last, deliveredAt: committed + 31)
        }
    }

    /// A hostile delivery service's times: none traps (the largest, the smallest, going back),
    /// and none keeps keys beyond the count bound, ``GroupPolicy/retainedPastEpochs``.
    @Test func hostileLogTimesNeitherTrapNorOutliveTheCountBound() throws {
        let policy = GroupPolicy(retainedPastEpochs: 2, pastEpochGrace: 30, now: { 1_700_000_000 })
        var (alice, bob, _) = try threeMembers(policy: policy)
        for time in [UInt64.max, 0, UInt64.max - 1, 5, UInt64.max] {
            let update = try alice.selfUpdate()
            _ = try alice.process(update.message, deliveredAt: time)
            _ = try bob.process(update.message, deliveredAt: time)
            #expect(bob.pastEpochs.count <= 2)
            #expect(bob.pastEpochs.last?.endedAt == (time == 0 ? nil : time))
        }
        let late = try alice.encrypt(Array("late".utf8))
        let update = try alice.selfUpdate()
        _ = try alice.process(update.message, deliveredAt: 7)
        _ = try bob.process(update.message, deliveredAt: 7)
        // Earlier than the end it follows: kept, the count still bounding it.
        #expect(try bob.process(late, deliveredAt: 3).applicationText == "late")
        #expect(bob.pastEpochs.count == 2)
        _ = try bob.process(alice.encrypt(Array("x".utf8)), deliveredAt: .max)
        // The epoch that ended at 2^64-1 stays (not more than the grace before); the one at 7 goes.
        #expect(bob.pastEpochs.map(\.endedAt) == [UInt64.max])
        let restored = try Group(serialized: bob.serialized(), policy: policy)
        #expect(restored.pastEpochs.map(\.endedAt) == [UInt64.max])
    }

    /// A delivery time far ahead of the local clock cannot end the grace early: the local
    /// clock must agree it is over, so a faulty or hostile service's times only keep keys longer.
    @Test func aDeliveryTimeFarAheadOfTheLocalClockDoesNotEndTheGrace() throws {
        let wall = Clock()
        let policy = GroupPolicy(pastEpochGrace: 30, now: { wall.now })
        var (alice, bob, _) = try threeMembers(policy: policy)
        let late = try alice.encrypt(Array("late".utf8))
        let update = try alice.selfUpdate()
        _ = try alice.process(update.message, deliveredAt: wall.now)
        _ = try bob.process(update.message, deliveredAt: wall.now)
        #expect(try bob.process(late, deliveredAt: .max).applicationText == "late")
        // Once the local clock is past the grace too, the next entry ends it.
        wall.advance(31)
        _ = try bob.process(alice.encrypt(Array("now".utf8)), deliveredAt: .max)
        #expect(bob.pastEpochs.isEmpty)
    }
}
