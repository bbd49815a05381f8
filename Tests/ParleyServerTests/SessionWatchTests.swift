import Foundation
import Synchronization
import Testing

@testable import ParleyServer

/// The server's one session watch (SessionWatch): each registered connection's check runs once
/// its interval has passed and every interval after, never after it is removed.
@Suite struct SessionWatchTests {
    final class Counts: Sendable {
        let value = Mutex<[Int: Int]>([:])
        func hit(_ key: Int) { value.withLock { $0[key, default: 0] += 1 } }
        subscript(key: Int) -> Int { value.withLock { $0[key, default: 0] } }
    }

    @Test func checksRunWhenDueAndNotAfterRemoval() {
        let watch = SessionWatch(interval: .seconds(30))
        let counts = Counts()
        let start = ContinuousClock.now
        let first = watch.add { counts.hit(1) }
        _ = watch.add { counts.hit(2) }
        #expect(watch.count == 2)
        #expect(watch.tick(now: start + .seconds(10)) == 0, "nothing is due before its interval")
        #expect(watch.tick(now: start + .seconds(31)) == 2)
        #expect(counts[1] == 1 && counts[2] == 1)
        #expect(watch.tick(now: start + .seconds(40)) == 0, "the next check is an interval later")
        watch.remove(first)
        #expect(watch.count == 1)
        #expect(watch.tick(now: start + .seconds(62)) == 1)
        #expect(counts[1] == 1 && counts[2] == 2, "a removed connection is never checked again")
    }

    /// Review s9: the checks due together run side by side, not one after another: a check that
    /// waits for its database round trip does not hold back every other connection's. Each of
    /// two checks waits for the other to have started: one after another, the first times out.
    @Test func checksDueTogetherRunSideBySide() {
        let watch = SessionWatch(interval: .seconds(30))
        let started = [DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)]
        let counts = Counts()
        for key in 0..<2 {
            _ = watch.add {
                started[key].signal()
                if started[1 - key].wait(timeout: .now() + 3) == .success { counts.hit(key) }
            }
        }
        #expect(watch.tick(now: ContinuousClock.now + .seconds(31)) == 2)
        #expect(counts[0] == 1 && counts[1] == 1, "each check saw the other start while it waited")
    }
}
