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
}
