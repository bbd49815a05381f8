import MLS

/// One member's authenticated record of a group's log, per epoch, for fork and drop detection.
///
/// The chain is scoped to an epoch and seeded with the epoch's `epoch_authenticator`
/// (RFC 9420 §8.7), which every member in the epoch derives identically and which commits
/// to the whole history of commits through the transcript hash: a member who joined at any
/// seq can compare with any other member of the same epoch. Over the messages accepted in
/// the epoch, in seq order:
///
/// ```
/// H_0 = Hash(opaque label<V> = "parley history v1", uint64 epoch, opaque epoch_authenticator<V>)
/// H_n = Hash(opaque H_{n-1}<V>, uint64 seq, opaque message<V>)   // message: the MLSMessage bytes
/// ```
///
/// Every message a member sends carries its ``HistoryClaim``: the epoch, the last seq it
/// accepted and H there, the index of the message among its own in the epoch, and where its
/// view of the previous epoch ended. A receiver checks the claim against its own chain
/// (``check(_:from:seq:)``) before recording the message (``record(seq:message:)``).
///
/// Memory is bounded: the last ``window`` hashes of the epoch, at most ``maxTrackedSenders``
/// senders with at most ``maxMissingPerSender`` remembered gaps each.
public struct HistoryLedger: Hashable, Sendable, Codable {
    /// Claims about older positions than this many messages back are not verifiable.
    public static let window = 1024
    public static let maxTrackedSenders = 10_000
    public static let maxMissingPerSender = 32
    static let label = Array("parley history v1".utf8)

    /// The cipher suite whose hash the chain uses (its raw value keeps the ledger Codable).
    private let suiteID: UInt16
    public var suite: CipherSuite { CipherSuite(rawValue: suiteID) }
    public private(set) var epoch: UInt64
    /// The seq of the commit that began the epoch (0 for the group's first epoch).
    public private(set) var startSeq: UInt64
    /// The last seq recorded, or `startSeq`.
    public private(set) var lastSeq: UInt64
    /// H at `lastSeq`.
    public private(set) var head: [UInt8]
    /// (seq, H) for the seed and every recorded message of the epoch, oldest first, bounded.
    private var entries: [Entry]
    private var previousEnd: HistoryClaim.EpochEnd?
    private var senders: [UInt32: SenderTrack] = [:]
    private var nextOwnIndex: UInt32 = 0

    struct Entry: Hashable, Sendable, Codable {
        var seq: UInt64
        var hash: [UInt8]
    }

    /// What is known of one sender's messages in this epoch.
    struct SenderTrack: Hashable, Sendable, Codable {
        /// The index its next message should carry.
        var next: UInt32 = 0
        /// Indices skipped so far, oldest first (bounded): withheld, or late if they still come.
        var missing: [UInt32] = []
        /// The highest seq at which its claim matched this chain.
        var agreed: UInt64
    }

    /// A ledger for a member entering `epoch` at `startSeq`: at creation (epoch 0, seq 0) or
    /// from a Welcome (the seq of the commit that added it).
    public init(suite: CipherSuite, epoch: UInt64, epochAuthenticator: [UInt8], startSeq: UInt64) throws {
        suiteID = suite.rawValue
        self.epoch = epoch
        self.startSeq = startSeq
        lastSeq = startSeq
        head = try Self.seed(suite: suite, epoch: epoch, epochAuthenticator: epochAuthenticator)
        entries = [Entry(seq: startSeq, hash: head)]
    }

    /// The member applied the commit at `startSeq` and is now in `epoch`. The commit is not
    /// recorded in the old epoch's chain: the new `epoch_authenticator` covers it.
    public mutating func beginEpoch(
        _ epoch: UInt64,
        epochAuthenticator: [UInt8],
        startSeq: UInt64
    ) throws(HistoryLedgerError) {
        guard startSeq > lastSeq else { throw .seqNotIncreasing(last: lastSeq, got: startSeq) }
        guard epoch > self.epoch else { throw .epochNotIncreasing }
        let seed: [UInt8]
        do { seed = try Self.seed(suite: suite, epoch: epoch, epochAuthenticator: epochAuthenticator) } catch {
            throw .unsupportedSuite
        }
        // An end is comparable only with members who were in exactly the previous epoch.
        previousEnd = epoch == self.epoch + 1 ? HistoryClaim.EpochEnd(lastSeq: lastSeq, hash: head) : nil
        self.epoch = epoch
        self.startSeq = startSeq
        lastSeq = startSeq
        head = seed
        entries = [Entry(seq: startSeq, hash: seed)]
        senders = [:]
        nextOwnIndex = 0
    }

    /// Appends a message accepted at `seq` (any message of the epoch, decryptable or not, the
    /// member's own echo included; not a commit the member applies: see ``beginEpoch``).
    public mutating func record(seq: UInt64, message: [UInt8]) throws(HistoryLedgerError) {
        guard seq > lastSeq else { throw .seqNotIncreasing(last: lastSeq, got: seq) }
        var writer = TLSWriter(reservingCapacity: head.count + message.count + 16)
        do {
            try writer.writeOpaque(head)
            writer.write(seq)
            try writer.writeOpaque(message)
        } catch {
            throw .messageTooLarge
        }
        head = try Self.hash(suite, writer.bytes)
        lastSeq = seq
        entries.append(Entry(seq: seq, hash: head))
        if entries.count > Self.window { entries.removeFirst(entries.count - Self.window) }
    }

    /// The claim for a message this member is about to send in the current epoch.
    public mutating func claimForOutgoing() -> HistoryClaim {
        let claim = HistoryClaim(
            epoch: epoch,
            lastSeq: lastSeq,
            hash: head,
            senderIndex: nextOwnIndex,
            previousEpoch: previousEnd
        )
        if nextOwnIndex < .max { nextOwnIndex += 1 }
        return claim
    }

    /// The server refused the message that carried `claim`: its index is given back if no
    /// later message took one, so receivers see no gap. (A refusal after a later send leaves
    /// a gap that receivers report as withheld; see docs/SECURITY.md.)
    public mutating func withdraw(_ claim: HistoryClaim) {
        guard claim.epoch == epoch, claim.senderIndex < .max, claim.senderIndex + 1 == nextOwnIndex else { return }
        nextOwnIndex = claim.senderIndex
    }

    static func seed(suite: CipherSuite, epoch: UInt64, epochAuthenticator: [UInt8]) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(label)
        writer.write(epoch)
        try writer.writeOpaque(epochAuthenticator)
        return try hash(suite, writer.bytes)
    }

    static func hash(_ suite: CipherSuite, _ bytes: [UInt8]) throws(HistoryLedgerError) -> [UInt8] {
        do { return try suite.provider().hash(bytes) } catch { throw .unsupportedSuite }
    }
}

extension HistoryLedger {
    /// Checks the claim that the message at `seq` from the member at leaf `sender` carries,
    /// before the message is recorded. `claim` is nil when the message carried none.
    public mutating func check(_ claim: HistoryClaim?, from sender: UInt32, seq: UInt64) -> HistoryVerdict {
        guard let claim else { return HistoryVerdict(history: .unverifiable(.noClaim)) }
        guard claim.epoch == epoch else { return HistoryVerdict(history: .unverifiable(.otherEpoch)) }
        var verdict = HistoryVerdict(history: compareHistory(claim, from: sender, seq: seq))
        verdict.previousEpochForked = comparePreviousEpoch(claim)
        trackIndex(claim.senderIndex, from: sender, into: &verdict)
        return verdict
    }

    private mutating func compareHistory(
        _ claim: HistoryClaim,
        from sender: UInt32,
        seq: UInt64
    )
        -> HistoryVerdict.History
    {
        let agreed = senders[sender]?.agreed ?? startSeq
        // The sender saw messages past everything this member was shown before `seq`.
        if claim.lastSeq > lastSeq { return .ahead(seqs: (lastSeq + 1)...claim.lastSeq) }
        // A claim at or after the message's own position, or before the epoch began, fits no
        // single order of the log: the two were shown it in different orders.
        if claim.lastSeq >= seq || claim.lastSeq < startSeq { return .fork(after: agreed) }
        guard let oldest = entries.first, claim.lastSeq >= oldest.seq else { return .unverifiable(.beyondWindow) }
        guard let entry = entry(at: claim.lastSeq) else {
            // This member was shown no message at that seq: the server skipped it here.
            return .ahead(seqs: claim.lastSeq...claim.lastSeq)
        }
        guard entry.hash == claim.hash else { return .fork(after: agreed) }
        if senders[sender] != nil || senders.count < Self.maxTrackedSenders {
            senders[sender, default: SenderTrack(agreed: startSeq)].agreed = max(agreed, claim.lastSeq)
        }
        return .consistent
    }

    private func comparePreviousEpoch(_ claim: HistoryClaim) -> Bool {
        guard let mine = previousEnd, let theirs = claim.previousEpoch else { return false }
        return mine != theirs
    }

    /// Follows the sender's message indices: a jump is messages withheld from this member,
    /// an index filling an earlier gap arrived late (reordered), any other repeat is a replay.
    private mutating func trackIndex(_ index: UInt32, from sender: UInt32, into verdict: inout HistoryVerdict) {
        guard senders[sender] != nil || senders.count < Self.maxTrackedSenders else { return }
        var track = senders[sender, default: SenderTrack(agreed: startSeq)]
        defer { senders[sender] = track }
        if index >= track.next {
            verdict.withheldFromSender = Int(index - track.next)
            var skipped = track.next
            while skipped < index, track.missing.count < Self.maxMissingPerSender {
                track.missing.append(skipped)
                skipped += 1
            }
            track.next = index == .max ? index : index + 1
        } else if let position = track.missing.firstIndex(of: index) {
            track.missing.remove(at: position)
            verdict.arrivedLate = true
        } else {
            verdict.replayed = true
        }
    }

    private func entry(at seq: UInt64) -> Entry? {
        var low = 0
        var high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if entries[middle].seq == seq { return entries[middle] }
            if entries[middle].seq < seq { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }
}

/// What a peer's claim says about what the server showed this member.
public struct HistoryVerdict: Hashable, Sendable {
    public enum History: Hashable, Sendable {
        /// The sender was shown exactly this member's history up to its claimed seq.
        case consistent
        /// The server showed the sender and this member different histories after `after`,
        /// the highest seq known to agree with that sender (the epoch's commit if none).
        case fork(after: UInt64)
        /// The sender was shown messages that this member was not: at these seqs in this
        /// member's numbering (withheld, or renumbered away).
        case ahead(seqs: ClosedRange<UInt64>)
        /// Nothing to compare against.
        case unverifiable(Unverifiable)
    }

    public enum Unverifiable: Hashable, Sendable {
        /// The message carried no claim.
        case noClaim
        /// The claim is about another epoch than this member's.
        case otherEpoch
        /// The claimed seq is older than the ledger's window.
        case beyondWindow
    }

    public var history: History
    /// The sender ended the previous epoch on another history than this member.
    public var previousEpochForked = false
    /// How many of the sender's messages in this epoch, before this one, were never delivered.
    public var withheldFromSender = 0
    /// This message was one earlier reported withheld: the server reordered it.
    public var arrivedLate = false
    /// This message's index was already seen from the sender: the server replayed it.
    public var replayed = false

    public init(history: History) { self.history = history }

    /// Whether the member should be warned.
    public var isAlarming: Bool {
        switch history {
        case .fork, .ahead: return true
        case .consistent, .unverifiable: return previousEpochForked || withheldFromSender > 0 || arrivedLate || replayed
        }
    }
}

/// Why the ledger refused to record.
public enum HistoryLedgerError: Error, Hashable, Sendable {
    /// Seqs must increase strictly within a group.
    case seqNotIncreasing(last: UInt64, got: UInt64)
    /// A new epoch must be later than the current one.
    case epochNotIncreasing
    /// The message does not fit a TLS vector.
    case messageTooLarge
    /// The ledger's cipher suite is not one this build implements.
    case unsupportedSuite
}
