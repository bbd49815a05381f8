/// Where a server `seq` falls in a group's log, given the last seq this device applied.
/// The server numbers each group's messages from 1 without gaps (docs/PROTOCOL.md), so
/// anything but the next number says something: a replay, a gap, or a number no log
/// reaches. Seqs travel as JSON integers; one that does not fit an `Int64` (what the
/// server and SQLite store) is refused rather than trusted or converted lossily.
enum LogPosition: Equatable, Sendable {
    /// Exactly the next message.
    case next
    /// Already applied (a replay after a reconnect, or a duplicate): ignored.
    case replay
    /// Messages `from` through `to` were skipped; this one is applied after saying so.
    case gap(from: UInt64, to: UInt64)
    /// Not a seq any log reaches (≥ 2^63): refused.
    case refused

    init(seq: UInt64, after last: UInt64) {
        guard Int64(exactly: seq) != nil else {
            self = .refused
            return
        }
        if seq <= last {
            self = .replay
        } else if seq - last == 1 {
            self = .next
        } else {
            // last < seq, so last + 1 and seq - 1 cannot overflow.
            self = .gap(from: last + 1, to: seq - 1)
        }
    }

    /// How far a server's time may be from this device's clock before a line is flagged.
    static let clockTolerance: UInt64 = 10 * 60 * 1000

    /// A note for a line whose server time is far from the local clock; nil when close.
    static func timeNote(serverTime: UInt64, localTime: UInt64) -> String? {
        let distance = serverTime > localTime ? serverTime - localTime : localTime - serverTime
        guard distance > clockTolerance else { return nil }
        let minutes = distance / 60_000
        let direction = serverTime > localTime ? "ahead of" : "behind"
        let amount = minutes < 600 ? "\(minutes) minutes" : "\(minutes / 1440) days"
        return "the server's time for this message is \(amount) \(direction) your clock; it may be wrong"
    }
}
