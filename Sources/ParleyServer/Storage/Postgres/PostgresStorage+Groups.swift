import Foundation
import PostgresNIO

extension PostgresStorage {
    // MARK: Groups

    public func createGroup(_ group: GroupRecord, creatorDevice: Int64) throws -> Int64 {
        guard Self.storable(group.name) else { throw StorageError.outOfRange("name") }
        let (name, mlsID, state, created) = (
            group.name, Data(group.mlsGroupID), Data(group.state), Self.bound(group.createdAt)
        )
        do {
            return try write { db in
                if try db.row("SELECT 1 AS one FROM groups WHERE name = \(name) OR mls_group_id = \(mlsID)") != nil {
                    throw StorageError.conflict("group exists")
                }
                let row = try db.row(
                    """
                    INSERT INTO groups (name, mls_group_id, state, last_seq, created_at)
                    VALUES (\(name), \(mlsID), \(state), 0, \(created)) RETURNING id
                    """
                )
                guard let id = try row?.int("id") else { throw StorageError.corrupt("groups.id") }
                try db.query(
                    """
                    INSERT INTO memberships (group_id, device_id, joined_seq, acked_seq) VALUES (\(id), \(creatorDevice), 0, 0)
                    """
                )
                return id
            }
        } catch  where SQLState.of(error) == SQLState.uniqueViolation {
            // Another node created a group of that name or MLS group id at the same moment.
            throw StorageError.conflict("group exists")
        }
    }

    public func group(named name: String) throws -> GroupRecord? {
        guard Self.storable(name) else { return nil }
        return try read { db in try db.row("SELECT * FROM groups WHERE name = \(name)").map(Self.group) }
    }

    public func group(id: Int64) throws -> GroupRecord? {
        try read { db in try db.row("SELECT * FROM groups WHERE id = \(id)").map(Self.group) }
    }

    public func groups(ofDevice deviceID: Int64) throws -> [GroupRecord] {
        try read { db in
            try db.rows(
                """
                SELECT g.* FROM groups g JOIN memberships m ON m.group_id = g.id
                WHERE m.device_id = \(deviceID) AND m.left_seq IS NULL ORDER BY g.name COLLATE "C"
                """
            ).map(Self.group)
        }
    }

    static func group(_ row: PostgresRandomAccessRow) throws -> GroupRecord {
        GroupRecord(
            id: try row.int("id"),
            name: try row.text("name"),
            mlsGroupID: try row.bytes("mls_group_id"),
            state: try row.bytes("state"),
            lastSeq: try row.unsigned("last_seq"),
            createdAt: try row.unsigned("created_at"),
            stateSeq: try row.unsigned("state_seq")
        )
    }

    // MARK: The log

    /// A group's row as its append transaction locked it.
    struct LockedGroup {
        var lastSeq: Int64
        var epoch: UInt64
    }

    /// Locks the groups' rows with one statement, in id order so two nodes' batches never
    /// deadlock on each other. A group that is gone has no row: its entries are refused. With
    /// `skippingHeld`, a row another transaction holds is left out at once instead of waited for.
    static func lock(
        _ groupIDs: Set<Int64>,
        skippingHeld: Bool = false,
        _ db: PostgresSession
    ) throws -> [Int64: LockedGroup] {
        let ids = groupIDs.sorted()
        var locked: [Int64: LockedGroup] = [:]
        let rows =
            skippingHeld
            ? try db.rows(
                "SELECT id, last_seq, epoch FROM groups WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE SKIP LOCKED"
            )
            : try db.rows("SELECT id, last_seq, epoch FROM groups WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE")
        for row in rows {
            let lastSeq = try row.int("last_seq")
            guard lastSeq >= 0 else { throw StorageError.corrupt("last_seq") }
            locked[try row.int("id")] = LockedGroup(lastSeq: lastSeq, epoch: try row.unsigned("epoch"))
        }
        return locked
    }

    public func append(_ entry: LogAppend) throws -> UInt64 {
        try write { db in
            var locked = try Self.lock([entry.groupID], db)
            return try Self.insert(entry, &locked, node: node, db)
        }
    }

    /// Group commit: every entry in one transaction (one WAL flush). At once when it can
    /// (``appendAtOnce(_:skippingHeld:node:_:)``: a fixed number of round trips); one by one
    /// when the batch changes memberships, or when the transaction at once failed before its
    /// COMMIT (rolled back, nothing stored). An error of the COMMIT itself is not retried:
    /// whether it was stored is unknown, as for any write.
    ///
    /// A group whose row another node's transaction holds is skipped by the batch at once
    /// (`SKIP LOCKED`), which commits the other groups' entries without waiting for it; only the
    /// skipped groups' entries then wait for their locks, in a second batch.
    public func append(batch entries: [LogAppend]) throws -> [Result<UInt64, any Error>] {
        guard !entries.isEmpty else { return [] }
        return try store(entries, skippingHeld: true)
    }

    private func store(_ entries: [LogAppend], skippingHeld: Bool) throws -> [Result<UInt64, any Error>] {
        guard Self.fitsAtOnce(entries) else { return try appendOneByOne(entries) }
        let atOnce: AtOnce
        do {
            atOnce = try write { db in
                do {
                    return try Self.appendAtOnce(entries, skippingHeld: skippingHeld, node: node, db)
                } catch {
                    throw AtOnceFailed(underlying: error)
                }
            }
        } catch is AtOnceFailed {
            // Rolled back: each entry gets its own answer.
            return try appendOneByOne(entries)
        }
        let waiting = entries.indices.filter { atOnce.held.contains(entries[$0].groupID) }
        var results = atOnce.results
        guard !waiting.isEmpty else { return results }
        // The rest is committed: a failure now is the waiting entries' answer, not a throw
        // (which would say that none of the batch was stored).
        let late: [Result<UInt64, any Error>]
        do {
            late = try store(waiting.map { entries[$0] }, skippingHeld: false)
        } catch {
            late = Array(repeating: .failure(error), count: waiting.count)
        }
        for (index, result) in zip(waiting, late) { results[index] = result }
        return results
    }

    /// Each entry in its own savepoint, so one that is refused is rolled back alone, with the
    /// later entries of its group. Each group's row is locked in its own savepoint (in id order,
    /// so two nodes' batches never deadlock): a lock another transaction holds past
    /// `lock_timeout` refuses that group's entries only.
    func appendOneByOne(_ entries: [LogAppend]) throws -> [Result<UInt64, any Error>] {
        try write { db in
            var locked: [Int64: LockedGroup] = [:]
            var lockFailures: [Int64: any Error] = [:]
            for id in Set(entries.map(\.groupID)).sorted() {
                do {
                    locked.merge(try db.savepoint { try Self.lock([id], db) }) { _, new in new }
                } catch {
                    lockFailures[id] = error
                }
            }
            var failedGroups = Set<Int64>()
            return entries.map { entry in
                if let error = lockFailures[entry.groupID] { return .failure(error) }
                guard !failedGroups.contains(entry.groupID) else { return .failure(StorageError.earlierRefused) }
                let result = Result<UInt64, any Error> {
                    var attempt = locked
                    let seq = try db.savepoint { try Self.insert(entry, &attempt, node: node, db) }
                    locked = attempt
                    return seq
                }
                if case .failure(let error) = result, !entry.refusalSpares(error) { failedGroups.insert(entry.groupID) }
                return result
            }
        }
    }

    /// Stores one entry in a group whose row this transaction holds locked: the next seq, the
    /// epoch check, the message, the state, memberships and Welcomes.
    private static func insert(
        _ entry: LogAppend,
        _ locked: inout [Int64: LockedGroup],
        node: String,
        _ db: PostgresSession
    ) throws
        -> UInt64
    {
        guard var group = locked[entry.groupID] else { throw StorageError.conflict("no such group") }
        try checkEpoch(entry, group)
        try checkSender(entry, group, db)
        let (seq, overflow) = group.lastSeq.addingReportingOverflow(1)
        guard !overflow else { throw StorageError.corrupt("last_seq") }
        if let clientID = entry.clientID, !storable(clientID) { throw StorageError.outOfRange("client id") }
        let (groupID, time, data) = (entry.groupID, bound(entry.time), Data(entry.data))
        let (sender, isProposal, clientID) = (entry.senderDevice, entry.isProposal, entry.clientID)
        // The same id through two nodes at once: the group's row lock orders them, so the second
        // finds the first here (no unique violation) and is answered with its seq.
        if let clientID,
            let earlier = try db.row(
                """
                SELECT seq FROM messages WHERE group_id = \(groupID) AND sender_device = \(sender) AND client_id = \(clientID)
                """
            )
        {
            throw StorageError.duplicate(seq: try earlier.unsigned("seq"))
        }
        try db.query(
            """
            INSERT INTO messages (group_id, seq, time, sender_device, data, is_proposal, client_id)
            VALUES (\(groupID), \(seq), \(time), \(sender), \(data), \(isProposal), \(clientID))
            """
        )
        if let state = entry.newState {
            let (epoch, next) = try epochAfter(entry, group)
            let state = Data(state)
            try db.query(
                """
                UPDATE groups SET last_seq = \(seq), state = \(state), state_seq = \(seq), epoch = \(epoch)
                WHERE id = \(groupID)
                """
            )
            group.epoch = next
        } else {
            try db.query("UPDATE groups SET last_seq = \(seq) WHERE id = \(groupID)")
        }
        group.lastSeq = seq
        try storeMembershipChanges(entry, seq: seq, db)
        let kind: ClusterEvent.Kind = entry.newState != nil ? .commit : entry.isProposal ? .proposal : .application
        let size = Int64(entry.data.count)
        let event = ClusterEvent.appended(group: groupID, seq: UInt64(seq), kind: kind, size: size, count: 1)
        try notify(event, node: node, db)
        locked[entry.groupID] = group
        return UInt64(seq)  // seq > lastSeq >= 0, so exact
    }

    /// The first commit of an epoch wins, across nodes: a proposal or commit checked against an
    /// epoch the stored group has left is refused. Application messages are not checked here:
    /// the previous epoch's are still accepted for a grace period after a commit.
    static func checkEpoch(_ entry: LogAppend, _ group: LockedGroup) throws {
        guard let epoch = entry.epoch, entry.newState != nil || entry.isProposal else { return }
        guard epoch == group.epoch else { throw StorageError.staleEpoch(current: group.epoch) }
    }

    /// A commit's stored epoch afterwards, as the column's value and as the group's epoch.
    static func epochAfter(_ entry: LogAppend, _ group: LockedGroup) throws -> (column: Int64, epoch: UInt64) {
        let (plusOne, overflow) = (entry.epoch ?? group.epoch).addingReportingOverflow(1)
        let next = entry.epochAfter ?? plusOne
        guard entry.epochAfter != nil || !overflow, let column = Int64(exactly: next) else {
            throw StorageError.outOfRange("epoch")
        }
        return (column, next)
    }

    /// A device removed from the group posts nothing more, through any node: the node's own
    /// membership check may run on a cache another node's commit has not reached yet, so the
    /// sender must hold a current membership here, under the group's row lock. An application
    /// message's epoch must be the stored one or the one before (whose grace period the node
    /// bounds): never one the group left two commits ago.
    private static func checkSender(_ entry: LogAppend, _ group: LockedGroup, _ db: PostgresSession) throws {
        let (groupID, device) = (entry.groupID, entry.senderDevice)
        let current = try db.row(
            """
            SELECT 1 AS one FROM memberships
            WHERE group_id = \(groupID) AND device_id = \(device) AND left_seq IS NULL
            """
        )
        guard current != nil else { throw StorageError.senderNotMember }
        try checkApplicationEpoch(entry, group)
    }

    /// An application message's epoch is the stored one or the one before, never older.
    static func checkApplicationEpoch(_ entry: LogAppend, _ group: LockedGroup) throws {
        guard let epoch = entry.epoch, entry.newState == nil, !entry.isProposal else { return }
        guard epoch == group.epoch || (epoch < UInt64.max && epoch + 1 == group.epoch) else {
            throw StorageError.staleEpoch(current: group.epoch)
        }
    }

    private static func storeMembershipChanges(_ entry: LogAppend, seq: Int64, _ db: PostgresSession) throws {
        let (groupID, time) = (entry.groupID, bound(entry.time))
        for device in entry.leftDevices {
            try db.query(
                """
                UPDATE memberships SET left_seq = \(seq)
                WHERE group_id = \(groupID) AND device_id = \(device) AND left_seq IS NULL
                """
            )
        }
        for device in entry.joinedDevices {
            try db.query(
                """
                INSERT INTO memberships (group_id, device_id, joined_seq, acked_seq) VALUES (\(groupID), \(device), \(seq), \(seq))
                ON CONFLICT (group_id, device_id) DO UPDATE
                SET joined_seq = excluded.joined_seq, left_seq = NULL, acked_seq = excluded.acked_seq
                """
            )
        }
        for welcome in entry.welcomes {
            let data = Data(welcome.data)
            try db.query(
                """
                INSERT INTO welcomes (group_id, device_id, seq, time, data)
                VALUES (\(groupID), \(welcome.deviceID), \(seq), \(time), \(data))
                """
            )
        }
    }

    public func messages(groupID: Int64, after seq: UInt64, through last: UInt64?, limit: Int) throws -> [LogEntry] {
        let (after, through, limit) = (Self.bound(seq), Self.bound(last ?? UInt64(Int64.max)), Int64(max(0, limit)))
        return try read { db in
            try db.rows(
                """
                SELECT m.seq, m.time, m.sender_device, m.data, m.client_id, u.name FROM messages m
                LEFT JOIN devices d ON d.id = m.sender_device LEFT JOIN users u ON u.id = d.user_id
                WHERE m.group_id = \(groupID) AND m.seq > \(after) AND m.seq <= \(through) ORDER BY m.seq LIMIT \(limit)
                """
            ).map(Self.logEntry)
        }
    }

    public func message(groupID: Int64, senderDevice: Int64, clientID: String) throws -> LogEntry? {
        guard Self.storable(clientID) else { return nil }
        return try read { db in
            try db.row(
                """
                SELECT m.seq, m.time, m.sender_device, m.data, m.client_id, u.name FROM messages m
                LEFT JOIN devices d ON d.id = m.sender_device LEFT JOIN users u ON u.id = d.user_id
                WHERE m.group_id = \(groupID) AND m.sender_device = \(senderDevice) AND m.client_id = \(clientID)
                """
            ).map(Self.logEntry)
        }
    }

    static func logEntry(_ row: PostgresRandomAccessRow) throws -> LogEntry {
        LogEntry(
            seq: try row.unsigned("seq"),
            time: try row.unsigned("time"),
            sender: try row["name"].decode(String?.self) ?? "(deleted)",
            senderDevice: try row.int("sender_device"),
            data: try row.bytes("data"),
            clientID: try row["client_id"].decode(String?.self)
        )
    }

    public func memberships(ofDevice deviceID: Int64) throws -> [MembershipRecord] {
        try read { db in
            try db.rows(
                """
                SELECT m.*, g.name FROM memberships m JOIN groups g ON g.id = m.group_id
                WHERE m.device_id = \(deviceID) AND (m.left_seq IS NULL OR m.acked_seq < m.left_seq)
                ORDER BY g.name COLLATE "C"
                """
            ).map(Self.membership)
        }
    }

    public func membership(groupID: Int64, deviceID: Int64) throws -> MembershipRecord? {
        try read { db in
            try db.row(
                """
                SELECT m.*, g.name FROM memberships m JOIN groups g ON g.id = m.group_id
                WHERE m.group_id = \(groupID) AND m.device_id = \(deviceID)
                """
            ).map(Self.membership)
        }
    }

    static func membership(_ row: PostgresRandomAccessRow) throws -> MembershipRecord {
        let left: UInt64? = try row.optionalInt("left_seq").map { _ in try row.unsigned("left_seq") }
        return MembershipRecord(
            groupID: try row.int("group_id"),
            groupName: try row.text("name"),
            deviceID: try row.int("device_id"),
            joinedSeq: try row.unsigned("joined_seq"),
            leftSeq: left,
            ackedSeq: try row.unsigned("acked_seq")
        )
    }

    public func storedBytes(groupID: Int64) throws -> Int64 {
        try read { db in
            try db.row(
                "SELECT COALESCE(SUM(octet_length(data)), 0)::BIGINT AS bytes FROM messages WHERE group_id = \(groupID)"
            )?.int("bytes") ?? 0
        }
    }

    public func storedBytes(userID: Int64) throws -> Int64 {
        try read { db in
            try db.row(
                """
                SELECT COALESCE(SUM(octet_length(m.data)), 0)::BIGINT AS bytes FROM messages m
                JOIN devices d ON d.id = m.sender_device WHERE d.user_id = \(userID)
                """
            )?.int("bytes") ?? 0
        }
    }

    public func welcomes(forDevice deviceID: Int64) throws -> [WelcomeRecord] {
        try read { db in
            try db.rows(
                """
                SELECT w.*, g.name FROM welcomes w JOIN groups g ON g.id = w.group_id
                WHERE w.device_id = \(deviceID) ORDER BY w.id
                """
            ).map { row in
                WelcomeRecord(
                    groupID: try row.int("group_id"),
                    groupName: try row.text("name"),
                    seq: try row.unsigned("seq"),
                    time: try row.unsigned("time"),
                    data: try row.bytes("data")
                )
            }
        }
    }

    public func acknowledge(deviceID: Int64, groupID: Int64, seq: UInt64) throws {
        // The service range-checks seq against the group's log; a value no log can reach is refused here too.
        guard let seq = Int64(exactly: seq) else { throw StorageError.outOfRange("seq") }
        try write { db in
            try db.query(
                """
                UPDATE memberships SET acked_seq = \(seq)
                WHERE group_id = \(groupID) AND device_id = \(deviceID) AND acked_seq < \(seq)
                """
            )
            try db.query(
                "DELETE FROM welcomes WHERE group_id = \(groupID) AND device_id = \(deviceID) AND seq <= \(seq)"
            )
        }
    }

    public func destroyGroup(id: Int64, notify devices: [Int64], notice: Data?) throws {
        try write { db in
            guard let name = try db.row("SELECT name FROM groups WHERE id = \(id) FOR UPDATE")?.text("name") else {
                return
            }
            var noticeID: Int64?
            if let notice {
                noticeID = try db.row("INSERT INTO destroy_notices (message) VALUES (\(notice)) RETURNING id")?.int(
                    "id"
                )
            }
            for device in devices {
                try db.query(
                    """
                    INSERT INTO notices (device_id, group_name, notice_id, group_id)
                    VALUES (\(device), \(name), \(noticeID), \(id))
                    """
                )
            }
            try db.query("DELETE FROM groups WHERE id = \(id)")
            try Self.notify(.destroyed(group: id), node: node, db)
        }
    }

    public func notices(forDevice deviceID: Int64) throws -> [DestroyNotice] {
        try read { db in
            try db.rows(
                """
                SELECT n.id, n.group_name, COALESCE(d.message, n.message) AS message FROM notices n
                LEFT JOIN destroy_notices d ON d.id = n.notice_id WHERE n.device_id = \(deviceID) ORDER BY n.id
                """
            ).map(Self.notice)
        }
    }

    static func notice(_ row: PostgresRandomAccessRow) throws -> DestroyNotice {
        DestroyNotice(
            group: try row.text("group_name"),
            notice: try row["message"].decode(Data?.self),
            id: try row.int("id")
        )
    }

    /// Each device told of the group's destruction, with its notice: another node destroyed it,
    /// and this node tells those of them connected here (``ClusterEvent/destroyed(group:)``).
    func notices(ofDestroyedGroup groupID: Int64) throws -> [(device: Int64, notice: DestroyNotice)] {
        try read { db in
            try db.rows(
                """
                SELECT n.id, n.device_id, n.group_name, COALESCE(d.message, n.message) AS message FROM notices n
                LEFT JOIN destroy_notices d ON d.id = n.notice_id WHERE n.group_id = \(groupID) ORDER BY n.id
                """
            ).map { (try $0.int("device_id"), try Self.notice($0)) }
        }
    }

    public func clearNotices(forDevice deviceID: Int64, ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try write { db in
            try db.query("DELETE FROM notices WHERE device_id = \(deviceID) AND id = ANY(\(ids))")
            try Self.deleteUnreferencedDestroyNotices(db)
        }
    }

    /// A destroy message no device's notice refers to any more (all fetched, or their devices removed).
    private static func deleteUnreferencedDestroyNotices(_ db: PostgresSession) throws {
        try db.query(
            """
            DELETE FROM destroy_notices
            WHERE id NOT IN (SELECT notice_id FROM notices WHERE notice_id IS NOT NULL)
            """
        )
    }

    public func prune(olderThan cutoff: UInt64) throws -> Int {
        let cutoff = Self.bound(cutoff)
        return try write { db in
            try Self.deleteUnreferencedDestroyNotices(db)
            return try db.execute(
                """
                DELETE FROM messages WHERE time < \(cutoff) OR (seq <= (
                    SELECT COALESCE(MIN(CASE WHEN ms.left_seq IS NULL THEN ms.acked_seq
                        ELSE LEAST(ms.acked_seq, ms.left_seq) END), 0)
                    FROM memberships ms WHERE ms.group_id = messages.group_id
                    AND (ms.left_seq IS NULL OR ms.acked_seq < ms.left_seq))
                  -- Proposals after the stored state are re-derived from the log on restart: keep them.
                  AND (NOT is_proposal OR seq <= (SELECT g.state_seq FROM groups g WHERE g.id = messages.group_id)))
                """
            )
        }
    }
}

extension PostgresStorage {
    /// Who a message of the group's log is for, as of its seq.
    struct Recipients: Sendable, Equatable {
        /// The members when it was stored: joined before it, and not removed before it (a device
        /// it removes gets it, its removal).
        var members: Set<Int64>
        /// The devices it added (a commit's), whose Welcomes were stored with it.
        var joined: Set<Int64>
    }

    /// The message at `seq`'s recipients, from the memberships as stored (a device removed and
    /// added again since counts from its latest joining only).
    func recipients(groupID: Int64, seq: UInt64) throws -> Recipients {
        let seq = Self.bound(seq)
        return try read { db in
            var recipients = Recipients(members: [], joined: [])
            for row in try db.rows(
                """
                SELECT device_id, joined_seq FROM memberships
                WHERE group_id = \(groupID) AND joined_seq <= \(seq) AND (left_seq IS NULL OR left_seq >= \(seq))
                """
            ) {
                let device = try row.int("device_id")
                if try row.int("joined_seq") < seq {
                    recipients.members.insert(device)
                } else {
                    recipients.joined.insert(device)
                }
            }
            return recipients
        }
    }
}
