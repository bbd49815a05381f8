import Foundation
import ParleyClient

/// History entries wrapped to the message pane's width, kept between frames: wrapping a
/// 64 KiB message measures every character's display width, and a frame is drawn on every
/// key, so without this typing beside long messages re-wraps them all each time (attacker
/// finding F5). Entries are kept by their place in the history and checked by value, so a
/// history that changed under the same index is wrapped again, never shown stale; a new
/// width empties the cache (a resize wraps everything anew, once).
///
/// A reference shared by copies of a ``ChatScreen`` (the screen is a value the chat copies
/// freely), guarded by a lock because the screen is `Sendable`.
final class WrapCache: @unchecked Sendable {
    private let lock = NSLock()
    private var width = 0
    private var wrapped: [Int: (entry: HistoryEntry, lines: [String])] = [:]

    /// The lines of `entry`, the history's entry at `index`, at `width` columns.
    func lines(of entry: HistoryEntry, at index: Int, width: Int, wrap: (HistoryEntry, Int) -> [String]) -> [String] {
        lock.withLock {
            if width != self.width {
                self.width = width
                wrapped.removeAll(keepingCapacity: true)
            }
            if let cached = wrapped[index], cached.entry == entry { return cached.lines }
            let lines = wrap(entry, width)
            wrapped[index] = (entry, lines)
            return lines
        }
    }

    /// The width the cached lines were wrapped at, and how many entries are cached (tests).
    var state: (width: Int, entries: Int) { lock.withLock { (width, wrapped.count) } }

    /// Forgets entries past `count` (the history got shorter: another group was opened).
    func keep(first count: Int) {
        lock.withLock { wrapped = wrapped.filter { $0.key < count } }
    }
}
