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
}
