import Foundation
import MLS
import ParleyProtocol

extension GroupEngine {
    // MARK: Fork and drop detection (issue 13, docs/SECURITY.md)

    /// Anchors `name`'s history ledger at `seq` in the group's current epoch: at creation
    /// (seq 0), at a join (the Welcome's seq), and at a commit that begins an epoch. A group
    /// without a ledger (a home older than the ledger) is anchored at its next commit, never
    /// mid-epoch: a chain begun mid-epoch would differ from every peer's.
    func anchorHistory(_ name: String, _ group: Group, at seq: UInt64) {
        records[name]?.history = try? HistoryLedger(
            suite: group.suite.suite,
            epoch: group.epoch,
            epochAuthenticator: group.epochAuthenticator,
            startSeq: seq
        )
    }

    /// The claim an outgoing message carries as authenticated_data: this member's view of
    /// the log. Empty (no claim) while the group's ledger is not anchored in its epoch.
    func historyClaim(for name: String) -> [UInt8] {
        guard var ledger = records[name]?.history, ledger.epoch == groups[name]?.epoch else { return [] }
        let claim = ledger.claimForOutgoing()
        records[name]?.history = ledger
        return claim.encoded()
    }

    /// The server refused the message that carried `data`: its index is given back.
    func withdrawHistoryClaim(_ data: [UInt8], in name: String) {
        guard let claim = try? HistoryClaim(authenticatedData: data) else { return }
        records[name]?.history?.withdraw(claim)
    }

    /// Checks the claim of one accepted message against this member's chain, then records
    /// the message; returns the warnings for the history. A commit this member applied
    /// begins a new epoch instead (the new epoch_authenticator covers it), after its claim,
    /// which is about the epoch it ends, is checked like any other.
    func checkHistory(_ accepted: AcceptedMessage, group: Group, in name: String) -> [HistoryEntry] {
        guard var ledger = records[name]?.history else {
            if case .commit? = accepted.content, group.isActive { anchorHistory(name, group, at: accepted.seq) }
            return []
        }
        var warnings: [String] = []
        if case .commit(let summary)? = accepted.content {
            if !summary.isOwnCommit, let sender = accepted.sender {
                warnings = verdictWarnings(accepted, from: sender, group: group, in: name, ledger: &ledger)
            }
            if group.epoch > ledger.epoch {
                do {
                    try ledger.beginEpoch(
                        group.epoch,
                        epochAuthenticator: group.epochAuthenticator,
                        startSeq: accepted.seq
                    )
                } catch {
                    anchorHistory(name, group, at: accepted.seq)
                    return []
                }
            }
        } else {
            if accepted.content != nil, let sender = accepted.sender, sender != group.ownLeaf {
                warnings = verdictWarnings(accepted, from: sender, group: group, in: name, ledger: &ledger)
            }
            try? ledger.record(seq: accepted.seq, message: accepted.message)
        }
        records[name]?.history = ledger
        return keepWarnings(warnings, in: name).map { systemLine(name, $0, seq: accepted.seq) }
    }

    /// Adds warnings to the group's status (which keeps the latest ``maxStatusWarnings``, so a
    /// server cannot grow it without bound) and returns those not already there: each is
    /// said once in the history and stays in the status line.
    private func keepWarnings(_ warnings: [String], in name: String) -> [String] {
        var status = records[name]?.warnings ?? []
        let fresh = warnings.filter { !status.contains($0) }
        guard !fresh.isEmpty else { return [] }
        status = Array((status + fresh).suffix(Self.maxStatusWarnings))
        records[name]?.warnings = status
        return fresh
    }

    /// The most warnings a group's status keeps.
    static var maxStatusWarnings: Int { 16 }

    /// Records a message this member could not process: it is part of the log the server
    /// showed, so it is in the chain (an injected message then shows as a fork to peers).
    func recordUnprocessed(seq: UInt64, message: [UInt8], in name: String) {
        try? records[name]?.history?.record(seq: seq, message: message)
    }

    private func verdictWarnings(
        _ accepted: AcceptedMessage,
        from sender: LeafIndex,
        group: Group,
        in name: String,
        ledger: inout HistoryLedger
    ) -> [String] {
        let who =
            group.tree.leafNode(at: sender).flatMap { ParleyGroupPolicy.username(of: $0.credential) } ?? "a member"
        let claim: HistoryClaim?
        do {
            claim = try HistoryClaim(authenticatedData: Self.authenticatedData(of: accepted.message))
        } catch {
            return ["Warning: a message from \(who) in \(name) carried a malformed history claim."]
        }
        let verdict = ledger.check(claim, from: sender.rawValue, seq: accepted.seq)
        return Self.sentences(verdict, who: who, group: name)
    }

    /// The authenticated_data of an MLS message (RFC 9420 §6): in the clear in both
    /// PublicMessage and PrivateMessage; read only after processing verified its signature.
    static func authenticatedData(of bytes: [UInt8]) -> [UInt8] {
        switch try? MLSMessage(tlsEncoded: bytes) {
        case .publicMessage(let message)?: message.content.authenticatedData
        case .privateMessage(let message)?: message.authenticatedData
        default: []
        }
    }

    /// What the user reads for a verdict: plain sentences, loud and specific.
    static func sentences(_ verdict: HistoryVerdict, who: String, group: String) -> [String] {
        var sentences: [String] = []
        switch verdict.history {
        case .fork(let after):
            sentences.append(
                "Warning: the server showed you and \(who) different histories of \(group) after #\(after)."
            )
        case .ahead(let seqs):
            let which = seqs.count == 1 ? "#\(seqs.lowerBound)" : "#\(seqs.lowerBound) to #\(seqs.upperBound)"
            sentences.append(
                "Warning: the server withheld from you messages of \(group) that \(who) received (\(which))."
            )
        case .consistent, .unverifiable:
            break
        }
        if verdict.previousEpochForked {
            sentences.append(
                "Warning: the server showed you and \(who) different histories of \(group) before its last change."
            )
        }
        if verdict.withheldFromSender > 0 {
            let count = verdict.withheldFromSender
            sentences.append(
                "Warning: the server withheld \(count) message\(count == 1 ? "" : "s") from \(who) in \(group)."
            )
        }
        if verdict.arrivedLate {
            sentences.append("Warning: the server delivered a message from \(who) in \(group) out of order.")
        }
        if verdict.replayed {
            sentences.append("Warning: the server replayed a message from \(who) in \(group).")
        }
        return sentences
    }
}
