import Foundation
import Synchronization
import Testing

@testable import ParleyServer

/// PostgreSQL's session checks share queries when they arrive together (SessionReads): each
/// still gets its own exact answer, and a deletion committed before a check is always seen.
@Suite(.storageThreads) struct SessionReadsTests {
    @Test func checksThatArriveTogetherEachGetTheirOwnExactAnswer() throws {
        let fixture = try StorageContractTests.Fixture(.postgres)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        let now = Clock.milliseconds()
        let (alive, expired, deleted) = (
            [UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32), [UInt8](repeating: 3, count: 32)
        )
        try storage.createSession(tokenHash: alive, deviceID: fixture.aliceDevice, expiresAt: now + 3_600_000)
        try storage.createSession(tokenHash: expired, deviceID: fixture.bobDevice, expiresAt: now - 1)
        try storage.createSession(tokenHash: deleted, deviceID: fixture.bobDevice, expiresAt: now + 3_600_000)
        try storage.deleteSession(tokenHash: deleted)
        let wrong = Mutex(0)
        let group = DispatchGroup()
        for thread in 0..<24 {
            group.enter()
            Thread {
                defer { group.leave() }
                for round in 0..<20 {
                    // The device the check found, nil for none, -1 for a failed check.
                    func device(_ hash: [UInt8], at time: UInt64) -> Int64? {
                        do { return try storage.session(tokenHash: hash, now: time)?.device.id } catch { return -1 }
                    }
                    let clock = Clock.milliseconds()
                    let right =
                        device(alive, at: clock) == fixture.aliceDevice && device(expired, at: clock) == nil
                        && device(deleted, at: clock) == nil
                        // The same token at a time past its expiry: expired for this check only.
                        && device(alive, at: now + 3_600_000 + UInt64(thread + round)) == nil
                    if !right { wrong.withLock { $0 += 1 } }
                }
            }.start()
        }
        group.wait()
        #expect(wrong.withLock { $0 } == 0)
    }

    /// A deletion that committed before a check is seen by it, however many checks share its
    /// query: the check after each deletion finds the session gone.
    @Test func aCheckAfterADeletionNeverFindsTheSession() throws {
        let fixture = try StorageContractTests.Fixture(.postgres)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        let stop = Mutex(false)
        let group = DispatchGroup()
        let alive = [UInt8](repeating: 9, count: 32)
        try storage.createSession(tokenHash: alive, deviceID: fixture.aliceDevice, expiresAt: .max / 2)
        for _ in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                while !stop.withLock({ $0 }) { _ = try? storage.session(tokenHash: alive, now: 1) }
            }.start()
        }
        var seenAfterDeletion = 0
        for round in 0..<50 {
            let hash = [UInt8](repeating: UInt8(round), count: 31) + [0xAA]
            try storage.createSession(tokenHash: hash, deviceID: fixture.bobDevice, expiresAt: .max / 2)
            #expect(try storage.session(tokenHash: hash, now: 1) != nil)
            try storage.deleteSession(tokenHash: hash)
            if try storage.session(tokenHash: hash, now: 1) != nil { seenAfterDeletion += 1 }
        }
        stop.withLock { $0 = true }
        group.wait()
        #expect(seenAfterDeletion == 0)
    }
}
