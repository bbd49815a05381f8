import Foundation
import MLS
import ParleyProtocol

/// Group work, handed to the ``GroupEngine``. Commands name a group as the user does: this
/// device's name for it, or the name its admins gave it when that is unambiguous.
extension ParleyClient {
    /// The engine and this device's name for the group a command calls `typed`.
    private func engine(for typed: String) async throws -> (GroupEngine, String) {
        let engine = try requireEngine()
        return (engine, try await engine.resolve(typed))
    }

    /// Brings the home up to date with the server, then does what is due: self-updates
    /// after joining, admin commits of a member's own leave, queued messages,
    /// acknowledgements, KeyPackage stock. One group's failure is a line in that group.
    public func sync() async throws { try await requireEngine().sync() }

    public func groupSummaries() async -> [GroupSummary] { await engine?.groupSummaries() ?? [] }

    /// The group's history, oldest first (the order it was applied in).
    public func history(_ name: String) async throws -> [HistoryEntry] { try await requireEngine().history(name) }

    public func members(_ name: String) async throws -> [String] {
        let (engine, local) = try await engine(for: name)
        return try await engine.members(local)
    }

    /// Whether this user is an admin of `name`.
    public func isAdmin(of name: String) async -> Bool {
        guard let (engine, local) = try? await engine(for: name) else { return false }
        return await engine.isAdmin(of: local)
    }

    /// Creates a group with this user as its admin.
    public func createGroup(_ name: String) async throws { try await createGroup(name, postQuantum: false) }

    /// Creates a group with this user as its admin; `postQuantum` picks ``ParleySuites/postQuantum``.
    public func createGroup(_ name: String, postQuantum: Bool) async throws {
        try await requireEngine().createGroup(name, postQuantum: postQuantum)
    }

    /// Adds users (every device of each that their signed device list names) with one commit.
    /// A device the server offered that a list does not name is left out, with a warning in
    /// the group (``addReporting(_:to:)`` also returns those sentences).
    public func add(_ users: [String], to name: String) async throws { _ = try await addReporting(users, to: name) }

    /// ``add(_:to:)``, returning a sentence for each device the server offered that was not added.
    public func addReporting(_ users: [String], to name: String) async throws -> [String] {
        let (engine, local) = try await engine(for: name)
        return try await engine.add(users, to: local)
    }

    /// Moves `name` to the post-quantum suite with a ReInit and its successor (admins only);
    /// the group keeps its name, members, admins and history (GroupEngine+Upgrade.swift).
    public func upgrade(_ name: String) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.upgrade(local)
    }

    /// Removes every device of `user`.
    public func remove(_ user: String, from name: String) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.remove(user, from: local)
    }

    /// Refreshes this device's leaf and path keys in `name` (post-compromise security).
    public func update(_ name: String) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.update(local)
    }

    /// Asks to leave: an admin's client commits the request when it next syncs.
    public func leave(_ name: String) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.leave(local)
    }

    public func destroy(_ name: String) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.destroy(local)
    }

    /// Sends a text: stored in the outbox first, so it survives being offline. `.sent`
    /// once the server's echo of this very message (by its id) has been processed.
    public func send(_ text: String, to name: String) async throws -> SendOutcome {
        let (engine, local) = try await engine(for: name)
        return try await engine.send(text, to: local)
    }

    /// Processes the frames that arrive within `timeout` and returns the names of the
    /// groups whose history changed. For interactive use.
    public func pump(timeout: Duration) async throws -> Set<String> {
        try await requireEngine().pump(timeout: timeout)
    }

    /// Keeps processing frames as they arrive and hands each new history entry of `name`
    /// to `onEntry`, until `stop` returns true.
    public func follow(
        _ name: String,
        until stop: @escaping @Sendable () -> Bool = { false },
        onEntry: @Sendable (HistoryEntry) async -> Void
    ) async throws {
        let (engine, local) = try await engine(for: name)
        try await engine.follow(local, until: stop, onEntry: onEntry)
    }

    /// A safety number for this user and `user` (60 digits, compared out of band), and
    /// whether `user`'s keys changed since last time.
    public func verify(_ user: String) async throws -> (number: String, changed: Bool) {
        try await requireEngine().verify(user)
    }

    /// The MLS group id and epoch of `name` (for the package's own load generator).
    package func wireIdentity(of name: String) async throws -> (groupID: [UInt8], epoch: UInt64) {
        let (engine, local) = try await engine(for: name)
        let group = try await engine.group(local)
        return (group.groupID, group.epoch)
    }

    // MARK: For the package's tests

    func group(_ name: String) async throws -> Group { try await requireEngine().group(name) }

    func apply(_ frame: ServerFrame) async throws { try await requireEngine().apply(frame) }

    func queue(_ item: OutboxItem) throws { try requireEngine().store.enqueue(item) }

    func outbox() throws -> [QueuedMessage] { try requireEngine().store.outbox() }

    @discardableResult
    func submit(
        in name: String,
        _ build: @escaping @Sendable (inout Group) throws -> (MLSMessage, MLSMessage?)
    ) async throws -> UInt64 {
        try await requireEngine().submit(in: name, build)
    }

    /// Whether the current connection has ended (true when none is open).
    var isConnectionClosed: Bool { get async { await engine?.isConnectionClosed ?? true } }

    /// The most frames that waited at once in the current connection's inbox.
    var peakQueuedFrames: Int? { get async { await engine?.peakQueuedFrames } }
}
