import Foundation
import MLS
import ParleyProtocol
import Synchronization

/// Who this device is in its groups: the account name its credential carries and the
/// device's signature key pair (from the ``KeyVault``).
struct LocalIdentity: Sendable {
    var username: String
    var signatureKeys: SignatureKeyPair
    var credential: Credential { .basic(identity: Array(username.utf8)) }
}

/// The client's group engine: turns server frames into group state and history, and group
/// operations into outgoing frames. It owns no I/O of its own: a ``HomeStore`` keeps its
/// state, a ``ServerTransport`` carries its frames, so unit tests drive it with an
/// in-memory store and a scripted server in milliseconds.
///
/// Where things pass, for features that hook in (fork detection, issue 13):
/// - every accepted message, with its seq, bytes, content and authenticated sender, goes
///   through ``accepted(_:in:)`` (GroupEngine+Frames.swift);
/// - every outgoing application message gets its authenticated_data from
///   ``authenticatedData(for:)`` (GroupEngine+Sending.swift);
/// - ``warn(_:_:)`` appends a warning to a group's history and keeps it in its status;
/// - ``destroyConfirmed(_:)`` is the one place an authenticated destroy deletes a group.
actor GroupEngine {
    let store: any HomeStore
    let transport: any ServerTransport
    let identity: LocalIdentity
    let suite: CipherSuiteProvider
    var policy: GroupPolicy { Self.groupPolicy(clock) }

    /// Every group this home follows, by this device's name for it (``GroupRecord/name``):
    /// one per MLS group ID. The server's name for it is ``GroupRecord/serverName``; which
    /// local group a frame is for is decided by group ID (GroupEngine+Names, +Welcomes).
    var groups: [String: Group] = [:]
    /// Every group this home knows, by local name, including ones it can no longer follow.
    var records: [String: GroupRecord] = [:]
    var connection: (any ServerConnection)?
    /// Sends whose echo has been seen in this run: client message id → seq.
    var confirmedSends: [String: UInt64] = [:]
    /// Sends awaiting their echo: exact MLS message bytes → client message id, so an echo
    /// that comes back without its id (the server delivers the sender's copy like any
    /// other message) still confirms the send.
    var inFlight: [Data: String] = [:]

    /// How long to wait for the server's answer to one request.
    var timeout: Duration
    /// How old this device's leaf in a group may get before `sync` refreshes it with a
    /// self-update (forward secrecy and post-compromise security).
    var selfUpdateInterval: TimeInterval = 7 * 86400
    /// How often an admin's `sync` looks for revoked devices still in its groups, and when it last did.
    var deviceSweep: (interval: TimeInterval, last: TimeInterval) = (600, 0)
    /// The local clock, which tests set (``setClock(_:)``): the engine's, and its groups'.
    let clock = LocalClock()
    /// The local clock in milliseconds since 1970.
    var now: @Sendable () -> UInt64 { { [clock] in clock.milliseconds } }

    /// Failed attempts after which a queued message is parked with a notice.
    static let outboxAttempts = 3
    /// The most KeyPackages this device keeps on the server, whatever it asks.
    static let maxKeyPackageStock = 100
    /// The same for post-quantum KeyPackages (about 2.6 KB each against 0.3 KB, rarely claimed).
    static let maxPostQuantumKeyPackageStock = 10

    init(
        identity: LocalIdentity,
        store: any HomeStore,
        transport: any ServerTransport,
        suite: CipherSuiteProvider,
        timeout: Duration = .seconds(20)
    ) throws {
        self.identity = identity
        self.store = store
        self.transport = transport
        self.suite = suite
        self.timeout = timeout
        for stored in try store.groups() {
            let (record, group) = try Self.loaded(stored, policy: Self.groupPolicy(clock))
            groups[record.name] = group
            records[record.name] = record
        }
    }

    /// Parley's group rules, with this engine's clock for KeyPackage lifetimes.
    static func groupPolicy(_ clock: LocalClock) -> GroupPolicy {
        ParleyGroupPolicy.groupPolicy(now: { [clock] in clock.milliseconds / 1000 })
    }

    /// A stored group's record and MLS state, as the engine holds them.
    private static func loaded(_ stored: StoredGroup, policy: GroupPolicy) throws -> (GroupRecord, Group?) {
        var record = stored.record
        guard !stored.state.isEmpty else { return (record, nil) }
        let group = try Group(serialized: stored.state, policy: policy)
        record.server = record.server ?? Self.serverNameBeforeMovingAside(record.name, group)
        return (record, group)
    }

    /// Homes before local names moved a group the device was in aside to `NAME#<first 4
    /// bytes of its group ID in hex>` when the server gave NAME to another group, and
    /// addressed it to the server by that name, which the server does not know. Such a
    /// group is the server's NAME again (its messages are told apart by group ID).
    private static func serverNameBeforeMovingAside(_ name: String, _ group: Group) -> String? {
        guard let hash = name.lastIndex(of: "#"), hash > name.startIndex else { return nil }
        let id = Hex.encode(group.groupID.prefix(4))
        return name[name.index(after: hash)...] == id ? String(name[..<hash]) : nil
    }

    func setTimeout(_ timeout: Duration) { self.timeout = timeout }
    func setSelfUpdateInterval(_ interval: TimeInterval) { selfUpdateInterval = interval }
    func setClock(_ source: @escaping @Sendable () -> UInt64) { clock.set(source) }

    // MARK: Connection

    /// Opens the connection if none is open and processes its replay up to `replayFinished`;
    /// returns the groups the replay touched (none when it was already open).
    @discardableResult
    func connect() async throws -> Set<String> {
        // A closed connection is replaced (a lost one must not fail every later command):
        // the new one replays from the acknowledged cursors, so nothing is lost.
        if let connection, !connection.isClosed { return [] }
        let connection = try await transport.openConnection()
        self.connection = connection
        var touched = Set<String>()
        while true {
            let frame = try await nextFrame(on: connection)
            if frame == .replayFinished { return touched }
            if case .error(let error) = frame, error.error.code == .unauthorized {
                throw ClientError.server(error.error)
            }
            if let name = try await apply(frame) { touched.insert(name) }
        }
    }

    /// The open connection, opened (with its replay processed) if needed.
    func openConnection() async throws -> any ServerConnection {
        try await connect()
        guard let connection else { throw ClientError.unreachable("the connection closed") }
        return connection
    }

    func close() {
        connection?.close()
        connection = nil
    }

    /// The next frame, waiting at most ``timeout``. A server that does not answer in time is
    /// treated as lost: the connection is closed, so the next command opens a new one whose
    /// replay settles, by its bytes, whatever was sent meanwhile before anything is resent
    /// (a resend on the same connection could have the server log one message twice).
    func nextFrame(on connection: any ServerConnection) async throws -> ServerFrame {
        guard let frame = try await connection.next(timeout: timeout) else {
            connection.close()
            if self.connection === connection { self.connection = nil }
            throw ClientError.timedOut
        }
        return frame
    }

    var isConnectionClosed: Bool { connection?.isClosed ?? true }

    func acknowledgeAll() throws {
        guard let connection else { return }
        for record in records.values where record.lastSeq > 0 {
            try connection.send(.ack(.init(group: record.serverName, seq: record.lastSeq)))
        }
    }

    // MARK: Sync

    /// Brings the home up to date with the server, then does what is due: self-updates
    /// after joining, admin commits of a member's own leave, queued messages,
    /// acknowledgements, KeyPackage stock. Each group's part is isolated: one group's
    /// failure is a line in that group, not an error.
    func sync() async throws {
        // A fresh connection replays everything after the acknowledged cursor, so nothing
        // pushed to an older connection can be missed; frames seen twice are dropped by seq.
        close()
        try await connect()
        try await refreshLeaves()
        try await commitLeaveRequests()
        try await removeRevokedDevices()
        try await flushOutbox()
        try acknowledgeAll()
        try await topUpKeyPackages(minimum: 5)
    }

    private func refreshLeaves() async throws {
        let now = Date().timeIntervalSince1970
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) where group.isActive {
            guard let record = records[name], record.problem == nil,
                record.needsUpdate || now - record.updated >= selfUpdateInterval
            else { continue }
            try await isolated(name, "Refreshing your keys") {
                try await commit(in: name, .selfUpdate)
                records[name]?.needsUpdate = false
                records[name]?.updated = now
                records[name]?.reported = nil
                try persist(name)
            }
        }
    }

    private func commitLeaveRequests() async throws {
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) where group.isActive && isAdmin(group) {
            let leaving = Self.leaveRequests(in: group)
            guard !leaving.isEmpty, records[name]?.problem == nil else { continue }
            try await isolated(name, "Completing a member's leave") {
                try await commit(in: name, CommitOptions(remove: leaving, includePendingProposals: false))
            }
        }
    }

    /// Runs one group's duty; a failure becomes a system line of that group (said once)
    /// instead of failing the command. Only losing the server is everyone's problem.
    func isolated(_ name: String, _ what: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ClientError where error.isConnectionLoss {
            throw error
        } catch {
            try report(name, "\(what) failed: \(error)")
        }
    }

    /// The members asking to leave: Remove proposals whose sender is the removed leaf
    /// itself (RFC 9420 §12.1.3), naming a current member other than this one. Only these
    /// are ever committed on someone else's behalf; every other cached proposal (an Add, a
    /// Remove of someone else, a GroupContextExtensions naming a new admin) is left alone,
    /// so a member cannot make an admin's client commit a takeover or fail its commits.
    ///
    /// They are committed by value: the MLS API can include cached proposals only all
    /// together (`includePendingProposals`), not a chosen subset by reference. The removal
    /// is the same; the commit names the admin as its proposer.
    static func leaveRequests(in group: Group) -> [LeafIndex] {
        let members = Set(group.members.map(\.index))
        let leaving = group.pendingProposals.compactMap { cached -> LeafIndex? in
            guard case .remove(let leaf) = cached.proposal, cached.sender == .member(leaf),
                leaf != group.ownLeaf, members.contains(leaf)
            else { return nil }
            return leaf
        }
        return Array(Set(leaving)).sorted { $0.rawValue < $1.rawValue }
    }

    func isAdmin(_ group: Group) -> Bool {
        guard let admins = try? ParleyGroupPolicy.admins(in: group.context.extensions) else { return false }
        return admins.contains(identity.username)
    }

    // MARK: State and history

    /// Saves `name`'s record and state with the history lines its change produced; on failure
    /// throws ``HomeWriteFailure`` with the group as stored before.
    func persist(
        _ name: String,
        lines: [HistoryEntry] = [],
        confirming row: Int64? = nil,
        consuming keyPackage: [UInt8]? = nil
    ) throws {
        guard let record = records[name] else { throw ClientError.noSuchGroup(name) }
        let state = try groups[name]?.serialized() ?? []
        do {
            try store.save(
                StoredGroup(record: record, state: state),
                appending: lines,
                confirming: row,
                consuming: keyPackage
            )
        } catch {
            // Memory never runs ahead of the disk: a cursor kept here after a failed save would
            // be acknowledged, the server would prune what it covers, and the next start would
            // find those messages gone. Back to what is stored; a new connection replays the rest.
            revertToStored(name)
            connection?.close()
            throw HomeWriteFailure(underlying: "\(error)")
        }
    }

    /// Puts `name` back as the store holds it (gone, if it was never stored or cannot be read).
    private func revertToStored(_ name: String) {
        let stored = try? store.groups().first { $0.record.name == name }
        guard let stored, let loaded = try? Self.loaded(stored, policy: policy) else {
            groups.removeValue(forKey: name)
            records.removeValue(forKey: name)
            return
        }
        records[name] = loaded.0
        groups[name] = loaded.1
    }

    /// Forgets a group this device no longer holds (an admin destroyed it).
    func forget(_ name: String) throws {
        groups.removeValue(forKey: name)
        records.removeValue(forKey: name)
        try store.deleteGroup(named: name)
    }

    /// The history of the group a command calls `typed`; a forgotten (destroyed) group's
    /// history stays readable under its name.
    func history(_ typed: String) throws -> [HistoryEntry] {
        let name: String
        do { name = try resolve(typed) } catch ClientError.noSuchGroup { name = typed }
        return try store.history(of: name)
    }

    /// Writes `text` as a system line of `name` unless it is the failure already reported
    /// there last, and saves the group's record.
    func report(_ name: String, _ text: String) throws {
        guard records[name] != nil else { return }
        let line = records[name]?.reported == text ? [] : [systemLine(name, text)]
        records[name]?.reported = text
        try persist(name, lines: line)
    }

    /// Appends a warning to `name`'s history and keeps it in the group's status until the
    /// group is gone. Said once: the same warning twice is one line.
    func warn(_ name: String, _ text: String, seq: UInt64? = nil) throws {
        guard var record = records[name], !(record.warnings ?? []).contains(text) else { return }
        record.warnings = (record.warnings ?? []) + [text]
        records[name] = record
        try persist(name, lines: [systemLine(name, text, seq: seq)])
    }

    func systemLine(_ name: String, _ text: String, seq: UInt64? = nil, time: UInt64? = nil) -> HistoryEntry {
        HistoryEntry(
            seq: seq ?? records[name]?.lastSeq ?? 0,
            time: time ?? now(),
            sender: "",
            kind: .system,
            text: text
        )
    }
}

extension ServerFrame {
    /// The group whose history a frame changes, if any.
    var changedGroup: String? {
        switch self {
        case .message(let message): message.group
        case .welcome(let welcome): welcome.group
        case .groupDestroyed(let destroyed): destroyed.group
        case .error, .replayFinished: nil
        }
    }
}

extension GroupEngine {
    /// The most frames that waited at once in the live connection's inbox (tests of flow control).
    var peakQueuedFrames: Int? { (connection as? ServerSocket)?.peakQueuedFrames }
}

/// This device's store refused a write: nothing of the change was kept, and the connection
/// was closed, so nothing past the stored cursor is acknowledged and the next connection
/// replays it. Never recorded as a frame's failure (that would skip the frame for good).
struct HomeWriteFailure: Error, CustomStringConvertible {
    var underlying: String

    var description: String {
        "This device's store could not be written (\(underlying)). Nothing was lost; run the command again."
    }
}

/// The local clock in milliseconds since 1970, shared by an engine and the policy of its groups
/// (KeyPackage lifetimes), so that a test setting it moves both.
final class LocalClock: Sendable {
    private let source = Mutex<@Sendable () -> UInt64>({ UInt64(max(0, Date().timeIntervalSince1970 * 1000)) })

    var milliseconds: UInt64 { source.withLock { $0 }() }

    func set(_ source: @escaping @Sendable () -> UInt64) { self.source.withLock { $0 = source } }
}
