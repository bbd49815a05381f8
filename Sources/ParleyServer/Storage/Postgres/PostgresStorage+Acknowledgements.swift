import Foundation
import PostgresNIO

/// The log writer's acknowledgements in one transaction and a fixed number of round trips.
///
/// Without this, each acknowledgement took the protocol's default path: the group and the
/// membership read on their own, then a transaction of its own (an UPDATE, a DELETE and a
/// COMMIT flushed to disk), six round trips and a WAL flush per acknowledgement, on the log
/// writer's one thread, ahead of the messages waiting to be stored. Here one statement reads
/// every acknowledgement's group and membership, each is decided in memory as the default path
/// decides it, and one UPDATE and one DELETE apply the accepted ones.
extension PostgresStorage {
    public func acknowledge(batch: [LogAcknowledgement]) throws -> [Result<Void, any Error>] {
        guard !batch.isEmpty else { return [] }
        do {
            return try write { db in
                do {
                    return try Self.acknowledgeAtOnce(batch, db)
                } catch {
                    throw AtOnceFailed(underlying: error)
                }
            }
        } catch is AtOnceFailed {
            // Rolled back, nothing applied: each acknowledgement on its own below.
        }
        return batch.map { ack in Result { try acknowledgeByName(ack) } }
    }

    /// A group an acknowledgement names, and its device's membership there.
    private struct AckTarget {
        var rank: Int
        var groupID: Int64
        var lastSeq: UInt64
        var member: Bool
        var leftSeq: UInt64?
    }

    private struct AckKey: Hashable {
        var group: Int64
        var device: Int64
    }

    private static func acknowledgeAtOnce(
        _ batch: [LogAcknowledgement],
        _ db: PostgresSession
    ) throws -> [Result<
        Void, any Error
    >] {
        let targets = try ackTargets(batch, db)
        var highest: [AckKey: Int64] = [:]
        let results = batch.indices.map { index in
            Result<Void, any Error> {
                // The first spelling that names a group, as the default path looks them up.
                guard let target = targets[index], target.member else { throw AcknowledgementRefusal.notMember }
                let (ack, last) = (batch[index], target.leftSeq ?? target.lastSeq)
                guard ack.seq <= last, let seq = Int64(exactly: ack.seq) else {
                    throw AcknowledgementRefusal.beyondLog(last: last)
                }
                let key = AckKey(group: target.groupID, device: ack.deviceID)
                highest[key] = max(highest[key] ?? seq, seq)
            }
        }
        guard !highest.isEmpty else { return results }
        let keys = highest.keys.sorted { ($0.group, $0.device) < ($1.group, $1.device) }
        let (groups, devices, seqs) = (keys.map(\.group), keys.map(\.device), keys.map { highest[$0] ?? 0 })
        // The groups' rows first, in id order as appends take them: an append holding a group's
        // row (FOR UPDATE) goes on to its memberships, so these acknowledgements wait behind it
        // rather than hold a membership row it needs (a deadlock cycle otherwise).
        let lockOrder = Array(Set(groups)).sorted()
        try db.query("SELECT 1 FROM groups WHERE id = ANY(\(lockOrder)::BIGINT[]) ORDER BY id FOR KEY SHARE")
        try db.query(
            """
            UPDATE memberships m SET acked_seq = u.s FROM UNNEST(\(groups)::BIGINT[], \(devices)::BIGINT[],
                \(seqs)::BIGINT[]) AS u(g, d, s)
            WHERE m.group_id = u.g AND m.device_id = u.d AND m.acked_seq < u.s
            """
        )
        try db.query(
            """
            DELETE FROM welcomes w USING UNNEST(\(groups)::BIGINT[], \(devices)::BIGINT[], \(seqs)::BIGINT[]) AS u(g, d, s)
            WHERE w.group_id = u.g AND w.device_id = u.d AND w.seq <= u.s
            """
        )
        return results
    }

    /// Each acknowledgement's group (by its first spelling that names one) and membership, in
    /// one statement. A spelling PostgreSQL cannot store (a NUL) names no group.
    private static func ackTargets(_ batch: [LogAcknowledgement], _ db: PostgresSession) throws -> [Int: AckTarget] {
        var (names, devices, indices, ranks) = ([String](), [Int64](), [Int64](), [Int64]())
        for (index, ack) in batch.enumerated() {
            for (rank, name) in ack.nameSpellings.enumerated() where storable(name) {
                names.append(name)
                devices.append(ack.deviceID)
                indices.append(Int64(index))
                ranks.append(Int64(rank))
            }
        }
        guard !names.isEmpty else { return [:] }
        var targets: [Int: AckTarget] = [:]
        for row in try db.rows(
            """
            SELECT k.i, k.r, g.id, g.last_seq, m.device_id IS NOT NULL AS member, m.left_seq
            FROM UNNEST(\(names)::TEXT[], \(devices)::BIGINT[], \(indices)::BIGINT[], \(ranks)::BIGINT[]) AS k(n, d, i, r)
            JOIN groups g ON g.name = k.n LEFT JOIN memberships m ON m.group_id = g.id AND m.device_id = k.d
            """
        ) {
            let (index, rank) = (Int(try row.int("i")), Int(try row.int("r")))
            let left: UInt64? = try row.optionalInt("left_seq").map { _ in try row.unsigned("left_seq") }
            let target = AckTarget(
                rank: rank,
                groupID: try row.int("id"),
                lastSeq: try row.unsigned("last_seq"),
                member: try row.bool("member"),
                leftSeq: left
            )
            if let known = targets[index], known.rank < rank { continue }
            targets[index] = target
        }
        return targets
    }
}
