import Foundation
import NIOCore
import PostgresNIO

/// Group commit in a fixed number of round trips, whatever the batch's size.
///
/// The one-by-one path (``PostgresStorage/appendOneByOne(_:)``) costs about seven sequential
/// round trips per entry (a savepoint, the membership and client-id lookups, the INSERT, the
/// UPDATE of the group's row, `pg_notify`, the release) on one connection, so the log writer
/// waited on the network, not on the disk. Here one transaction locks every group's row with one
/// statement, reads the senders' memberships and the client ids already stored with one each,
/// decides every entry in memory under those locks (the same checks, in the same order, as the
/// one-by-one path), then writes all accepted rows with one INSERT, moves every group's row with
/// one UPDATE and sends the notifications with one statement: about eight round trips a batch.
extension PostgresStorage {
    /// A batch that adds or removes members goes one by one: a later entry's sender check must
    /// see the memberships an earlier entry of the same batch changed. Such commits are rare.
    static func fitsAtOnce(_ entries: [LogAppend]) -> Bool {
        entries.allSatisfy { $0.joinedDevices.isEmpty && $0.leftDevices.isEmpty && $0.welcomes.isEmpty }
    }

    /// Any error inside the batch's transaction (a lock held past `lock_timeout`, a unique
    /// violation from a race the checks did not foresee, a lost connection): the transaction
    /// was rolled back, nothing was stored, and the batch goes one by one, where each entry is
    /// answered on its own.
    struct AtOnceFailed: Error {
        let underlying: any Error
    }

    /// What the batch at once answered, and the groups it left to wait for their locks.
    struct AtOnce {
        /// Every entry's answer; an entry of a `held` group has a placeholder, replaced by the caller.
        var results: [Result<UInt64, any Error>]
        /// Groups whose rows another transaction held: none of their entries was looked at.
        var held: Set<Int64>
    }

    /// Stores the batch in one transaction without savepoints: every entry's answer is decided
    /// before anything is written, so no statement is expected to fail. With `skippingHeld`,
    /// groups whose rows another transaction holds are skipped, not waited for (``AtOnce/held``).
    static func appendAtOnce(
        _ entries: [LogAppend],
        skippingHeld: Bool = false,
        node: String,
        _ db: PostgresSession
    ) throws -> AtOnce {
        let groups = Set(entries.map(\.groupID))
        let locked = try Self.lock(groups, skippingHeld: skippingHeld, db)
        let held = skippingHeld ? try existing(groups.subtracting(locked.keys), db) : []
        let mine = entries.filter { !held.contains($0.groupID) }
        var plan = BatchPlan(
            locked: locked,
            members: try currentMembers(mine, db),
            clientSeqs: try storedClientIDs(mine, db)
        )
        let results = entries.map { entry -> Result<UInt64, any Error> in
            held.contains(entry.groupID) ? .failure(StorageError.earlierRefused) : plan.admit(entry)
        }
        try plan.store(node: node, db)
        return AtOnce(results: results, held: held)
    }

    /// Of groups the batch did not lock, those whose row exists: another transaction holds it.
    /// (A group that is gone has no row, and its entries are refused as the batch's.)
    private static func existing(_ groupIDs: Set<Int64>, _ db: PostgresSession) throws -> Set<Int64> {
        guard !groupIDs.isEmpty else { return [] }
        let ids = groupIDs.sorted()
        return Set(try db.rows("SELECT id FROM groups WHERE id = ANY(\(ids))").map { try $0.int("id") })
    }

    /// The (group, device) pairs of the batch's senders that hold a current membership, read
    /// under the groups' row locks (a commit that removes a member locks the same row).
    private static func currentMembers(_ entries: [LogAppend], _ db: PostgresSession) throws -> Set<BatchPlan.Member> {
        let groups = Set(entries.map(\.groupID)).sorted()
        let devices = Set(entries.map(\.senderDevice)).sorted()
        var members = Set<BatchPlan.Member>()
        for row in try db.rows(
            """
            SELECT group_id, device_id FROM memberships
            WHERE group_id = ANY(\(groups)) AND device_id = ANY(\(devices)) AND left_seq IS NULL
            """
        ) {
            members.insert(BatchPlan.Member(group: try row.int("group_id"), device: try row.int("device_id")))
        }
        return members
    }

    /// The seqs of messages already stored under the batch's client ids. Under the row locks, a
    /// node that stored the same id first has committed: it is found here (as one by one).
    private static func storedClientIDs(
        _ entries: [LogAppend],
        _ db: PostgresSession
    ) throws -> [BatchPlan.ClientKey:
        UInt64]
    {
        let keyed = entries.compactMap { entry in
            entry.clientID.flatMap { storable($0) ? (entry.groupID, entry.senderDevice, $0) : nil }
        }
        guard !keyed.isEmpty else { return [:] }
        let (groups, devices, ids) = (keyed.map(\.0), keyed.map(\.1), keyed.map(\.2))
        var seqs: [BatchPlan.ClientKey: UInt64] = [:]
        for row in try db.rows(
            """
            SELECT m.group_id, m.sender_device, m.client_id, m.seq FROM messages m
            JOIN UNNEST(\(groups)::BIGINT[], \(devices)::BIGINT[], \(ids)::TEXT[]) AS k(g, d, c)
            ON m.group_id = k.g AND m.sender_device = k.d AND m.client_id = k.c
            """
        ) {
            let key = BatchPlan.ClientKey(
                group: try row.int("group_id"),
                device: try row.int("sender_device"),
                clientID: Array(try row.text("client_id").utf8)
            )
            seqs[key] = try row.unsigned("seq")
        }
        return seqs
    }
}

/// One batch's decisions, made in memory under the groups' row locks, and the rows they write.
struct BatchPlan {
    struct Member: Hashable {
        var group: Int64
        var device: Int64
    }

    struct ClientKey: Hashable {
        var group: Int64
        var device: Int64
        /// The bytes, as PostgreSQL compares them: Swift's String equality would take two
        /// spellings of "é" for one id where the database stores both.
        var clientID: [UInt8]
    }

    /// The message rows to insert, column by column (UNNEST's arrays).
    struct Rows {
        var groups: [Int64] = []
        var seqs: [Int64] = []
        var times: [Int64] = []
        var senders: [Int64] = []
        var data: [ByteBuffer] = []
        var proposals: [Bool] = []
        /// Text arrays carry no NULL here: "" with `hasClientID` false stands for none.
        var clientIDs: [String] = []
        var hasClientID: [Bool] = []
    }

    /// A commit's effect on its group's row: the last one of the batch is what stays.
    struct NewState {
        var seq: Int64
        var state: ByteBuffer
        var epoch: Int64
    }

    /// Consecutive seqs of one group and kind from this batch: one notification names them all.
    struct Run {
        var group: Int64
        var last: Int64
        var count: UInt64
        var kind: ClusterEvent.Kind
        var size: Int64
    }

    var locked: [Int64: PostgresStorage.LockedGroup]
    let members: Set<Member>
    var clientSeqs: [ClientKey: UInt64]
    private var failedGroups = Set<Int64>()
    private var rows = Rows()
    private var newStates: [Int64: NewState] = [:]
    private var openRuns: [Int64: Run] = [:]
    private var runs: [Run] = []

    init(locked: [Int64: PostgresStorage.LockedGroup], members: Set<Member>, clientSeqs: [ClientKey: UInt64]) {
        (self.locked, self.members, self.clientSeqs) = (locked, members, clientSeqs)
    }

    /// One entry's answer, as the one-by-one path gives it: an entry refused refuses its
    /// group's later entries of the batch (`earlierRefused`, unless ``LogAppend/refusalSpares(_:)``),
    /// and stores nothing.
    mutating func admit(_ entry: LogAppend) -> Result<UInt64, any Error> {
        guard !failedGroups.contains(entry.groupID) else { return .failure(StorageError.earlierRefused) }
        let result = Result<UInt64, any Error> { try place(entry) }
        if case .failure(let error) = result, !entry.refusalSpares(error) { failedGroups.insert(entry.groupID) }
        return result
    }

    /// The checks of ``PostgresStorage`` `insert`, in its order, against the locked rows.
    private mutating func place(_ entry: LogAppend) throws -> UInt64 {
        guard var group = locked[entry.groupID] else { throw StorageError.conflict("no such group") }
        try PostgresStorage.checkEpoch(entry, group)
        guard members.contains(Member(group: entry.groupID, device: entry.senderDevice)) else {
            throw StorageError.senderNotMember
        }
        try PostgresStorage.checkApplicationEpoch(entry, group)
        let (seq, overflow) = group.lastSeq.addingReportingOverflow(1)
        guard !overflow else { throw StorageError.corrupt("last_seq") }
        if let clientID = entry.clientID, !PostgresStorage.storable(clientID) {
            throw StorageError.outOfRange("client id")
        }
        let key = entry.clientID.map {
            ClientKey(group: entry.groupID, device: entry.senderDevice, clientID: Array($0.utf8))
        }
        if let key, let earlier = clientSeqs[key] { throw StorageError.duplicate(seq: earlier) }
        if let state = entry.newState {
            let (epoch, next) = try PostgresStorage.epochAfter(entry, group)
            newStates[entry.groupID] = NewState(seq: seq, state: ByteBuffer(bytes: state), epoch: epoch)
            group.epoch = next
        }
        group.lastSeq = seq
        locked[entry.groupID] = group
        if let key { clientSeqs[key] = UInt64(seq) }
        add(entry, seq: seq)
        return UInt64(seq)  // seq > lastSeq >= 0, so exact
    }

    private mutating func add(_ entry: LogAppend, seq: Int64) {
        rows.groups.append(entry.groupID)
        rows.seqs.append(seq)
        rows.times.append(PostgresStorage.bound(entry.time))
        rows.senders.append(entry.senderDevice)
        rows.data.append(ByteBuffer(bytes: entry.data))
        rows.proposals.append(entry.isProposal)
        rows.clientIDs.append(entry.clientID ?? "")
        rows.hasClientID.append(entry.clientID != nil)
        let kind: ClusterEvent.Kind = entry.newState != nil ? .commit : entry.isProposal ? .proposal : .application
        let size = Int64(entry.data.count)
        // A commit is told alone: the receiving node reads its time and its Welcomes.
        if var run = openRuns[entry.groupID], run.kind == kind, kind != .commit, run.last + 1 == seq {
            (run.last, run.count, run.size) = (seq, run.count + 1, run.size &+ size)
            openRuns[entry.groupID] = run
            return
        }
        if let run = openRuns[entry.groupID] { runs.append(run) }
        openRuns[entry.groupID] = Run(group: entry.groupID, last: seq, count: 1, kind: kind, size: size)
    }

    /// Writes what was admitted: one INSERT for every message, one UPDATE for every group's
    /// last seq, one per group a commit moved, and one statement for the notifications.
    func store(node: String, _ db: PostgresSession) throws {
        guard !rows.seqs.isEmpty else { return }
        let r = rows
        try db.query(
            """
            INSERT INTO messages (group_id, seq, time, sender_device, data, is_proposal, client_id)
            SELECT g, s, t, d, b, p, CASE WHEN h THEN c END FROM UNNEST(\(r.groups)::BIGINT[], \(r.seqs)::BIGINT[],
                \(r.times)::BIGINT[], \(r.senders)::BIGINT[], \(r.data)::BYTEA[], \(r.proposals)::BOOLEAN[],
                \(r.clientIDs)::TEXT[], \(r.hasClientID)::BOOLEAN[]) AS r(g, s, t, d, b, p, c, h)
            """
        )
        let touched = Set(rows.groups)
        let moved = locked.filter { id, _ in touched.contains(id) }.sorted { $0.key < $1.key }
        let (ids, lastSeqs) = (moved.map(\.key), moved.map(\.value.lastSeq))
        try db.query(
            """
            UPDATE groups SET last_seq = u.s FROM UNNEST(\(ids)::BIGINT[], \(lastSeqs)::BIGINT[]) AS u(id, s)
            WHERE groups.id = u.id
            """
        )
        for (id, new) in newStates.sorted(by: { $0.key < $1.key }) {
            try db.query(
                "UPDATE groups SET state = \(new.state), state_seq = \(new.seq), epoch = \(new.epoch) WHERE id = \(id)"
            )
        }
        let payloads = (runs + openRuns.values.sorted { $0.group < $1.group }).map { run in
            ClusterEvent.appended(
                group: run.group,
                seq: UInt64(run.last),
                kind: run.kind,
                size: run.size,
                count: run.count
            )
            .payload(node: node)
        }
        try db.query("SELECT pg_notify(\(ClusterEvent.channel), p) FROM UNNEST(\(payloads)::TEXT[]) AS p")
    }
}
