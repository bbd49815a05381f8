import Synchronization

/// What the load clients did, as they saw it: every text they asked to send, and the seq of
/// each one the server acknowledged (its echo arrived before `send` returned).
final class CrashLedger: Sendable {
    struct Submitted: Sendable, Hashable {
        var client: Int
        var group: String
        var text: String
    }

    struct Acknowledged: Sendable, Hashable {
        var client: Int
        var group: String
        var text: String
        var seq: UInt64
    }

    private let state = Mutex((submitted: [Submitted](), acknowledged: [Acknowledged](), failures: 0))

    func submitted(_ entry: Submitted) { state.withLock { $0.submitted.append(entry) } }
    func acknowledged(_ entry: Acknowledged) { state.withLock { $0.acknowledged.append(entry) } }
    /// A send or sync that failed: expected while the server is down, counted for the report.
    func failed() { state.withLock { $0.failures += 1 } }

    var snapshot: (submitted: [Submitted], acknowledged: [Acknowledged], failures: Int) {
        state.withLock { $0 }
    }
}
