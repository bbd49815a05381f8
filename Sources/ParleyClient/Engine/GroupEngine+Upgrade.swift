import Foundation
import MLS
import ParleyProtocol

/// Why `parley upgrade` cannot run. Nothing was sent when one of these is thrown.
public enum UpgradeProblem: Sendable, Equatable {
    case notAdmin(group: String)
    case alreadyPostQuantum(group: String)
    /// No other device is in the group: a post-quantum group of one is `parley create --post-quantum`.
    case alone(group: String)
    /// A member device has no post-quantum KeyPackage on the server (it has not synced since
    /// Parley learned post-quantum groups), or the server offered none that is that device's.
    case noPostQuantumKeyPackage(user: String)

    var sentence: String {
        switch self {
        case .notAdmin(let group): "Only an admin of \(group) can upgrade it."
        case .alreadyPostQuantum(let group): "\(group) is post-quantum already."
        case .alone(let group):
            "You are the only device in \(group); create a new group with `parley create --post-quantum` instead."
        case .noPostQuantumKeyPackage(let user):
            "A device of \(user) has no post-quantum key package yet; it gets one when it next syncs. Nothing was changed."
        }
    }
}

/// Why a member does not join a successor offered in its group's log (`followSuccessor`);
/// the group stays closed and says why in a line.
public enum SuccessorRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Its devices are not exactly the closed group's (by credential and signature key).
    case otherDevices
    /// Its GroupInfo is signed by a device of `creator`, not by the device of `committer` that
    /// committed the ReInit (the two names are equal when it is another device of that user).
    case notCreatedByCommitter(creator: String, committer: String)
    /// Its creator's device is no admin's (for a group closed before the committer was recorded).
    case notCreatedByAnAdmin(creator: String)

    public var description: String {
        switch self {
        case .otherDevices: "the new group offered does not hold exactly this group's devices; it was not joined."
        case .notCreatedByCommitter(let creator, let committer) where creator == committer:
            "the new group offered was created by another device of \(creator) than the one that closed this "
                + "group; it was not joined."
        case .notCreatedByCommitter(let creator, let committer):
            "the new group offered was created by \(creator), not by \(committer), who closed this group; it was "
                + "not joined."
        case .notCreatedByAnAdmin(let creator):
            "the new group offered was created by \(creator), who is no admin; it was not joined."
        }
    }
}

/// `parley upgrade` (RFC 9420 §11.2, §12.1.5): an admin moves a classical group to the
/// post-quantum suite. It claims a post-quantum KeyPackage of every other device in the group
/// first (so a missing one stops it before anything is sent), commits a ReInit, creates the
/// successor with the reinit PSK, and registers it with the server, which appends its Welcome
/// to the group's log. Every other device finds that Welcome in the log right after the ReInit
/// commit and joins the successor in place: same name, same history, one line saying so.
///
/// What a member accepts as the successor (``followSuccessor``): only while its group is closed
/// by a ReInit, only through `joinSuccessor` (the Welcome must carry the old group's reinit PSK,
/// which no server knows, and the ReInit's group ID, suite and extensions), holding exactly the
/// old group's devices (credential and signature key), and created by the very device that
/// committed the ReInit: the successor's GroupInfo must be signed with that device's key. A
/// member colluding with the server (it holds the reinit PSK too) can build a successor, but
/// not sign it as the admin who closed the group. A Welcome for any other group in a message
/// is never joined.
extension GroupEngine {
    func upgrade(_ name: String) async throws {
        try await sync()
        var group = try group(name)
        if let problem = records[name]?.problem { throw ClientError.groupUnusable(name, reason: problem) }
        guard isAdmin(group) else { throw ClientError.upgrade(.notAdmin(group: name)) }
        var packages: [KeyPackage]?
        if group.reInit == nil {
            guard group.suite.suite == ParleySuites.standard else {
                throw ClientError.upgrade(.alreadyPostQuantum(group: name))
            }
            // Claimed before the ReInit: a group is never closed without a way into its successor.
            packages = try await successorKeyPackages(for: group, name: name)
            let reInit = ReInit(
                groupID: suite.randomBytes(ParleyGroupPolicy.groupIDLength),
                cipherSuite: ParleySuites.postQuantum,
                extensions: group.context.extensions
            )
            try await commit(in: name, CommitOptions(includePendingProposals: false, reInit: reInit))
            group = try self.group(name)
        }
        // Also resumes an upgrade this device committed but could not finish (the successor's
        // KeyPackages are then claimed again: the first ones may have been spent).
        if packages == nil { packages = try await successorKeyPackages(for: group, name: name) }
        try await registerSuccessor(of: group, name: name, packages: packages ?? [])
    }

    /// A post-quantum KeyPackage of every device in `group` but this one, each verified to be
    /// that very device's (same username and signature key as its leaf).
    private func successorKeyPackages(for group: Group, name: String) async throws -> [KeyPackage] {
        let own = identity.signatureKeys.publicKey.bytes
        let others = group.tree.members.map(\.leaf).filter { $0.signatureKey.bytes != own }
        guard !others.isEmpty else { throw ClientError.upgrade(.alone(group: name)) }
        var packages: [KeyPackage] = []
        for user in Set(others.compactMap { ParleyGroupPolicy.username(of: $0.credential) }).sorted() {
            let devices = others.filter { ParleyGroupPolicy.username(of: $0.credential) == user }
            let skip = user == identity.username ? [own] : []
            let offered: [Data]
            do {
                offered = try await transport.claimKeyPackages(
                    of: user,
                    skipping: skip,
                    suite: ParleySuites.postQuantum
                )
            } catch ClientError.server(let body) where body.code == .noKeyPackages {
                throw ClientError.upgrade(.noPostQuantumKeyPackage(user: user))
            }
            let decoded = offered.compactMap { data -> KeyPackage? in
                guard case .keyPackage(let package)? = try? MLSMessage(tlsEncoded: [UInt8](data)) else { return nil }
                return package
            }
            for device in devices {
                guard
                    let package = decoded.first(where: {
                        $0.leafNode.signatureKey == device.signatureKey && $0.leafNode.credential == device.credential
                    })
                else { throw ClientError.upgrade(.noPostQuantumKeyPackage(user: user)) }
                guard package.cipherSuite == ParleySuites.postQuantum else {
                    throw ClientError.wrongSuiteKeyPackage(user: user)
                }
                packages.append(package)
            }
        }
        return packages
    }

    /// Creates the successor of `group` (closed by this device's ReInit) and registers it; then
    /// this device continues in it under the same name.
    private func registerSuccessor(of group: Group, name: String, packages: [KeyPackage]) async throws {
        guard let reInit = group.reInit else { throw MLSError.notReinitialized }
        let (successor, welcome) = try group.createSuccessor(
            signatureKeys: identity.signatureKeys,
            keyPackages: packages
        )
        guard let welcome else { throw ClientError.upgrade(.alone(group: name)) }
        let request = API.Successor(
            // One id per ReInit: a retry after a lost answer gets the seq stored the first time.
            id: "upgrade-" + Hex.encode(reInit.groupID.prefix(8)),
            groupInfo: Data(try MLSMessage.groupInfo(successor.groupInfo()).tlsEncoded()),
            welcome: Data(try MLSMessage.welcome(welcome).tlsEncoded())
        )
        let seq = try await transport.registerSuccessor(of: serverName(name), request)
        try carryOutbox(of: name, from: group.groupID, to: successor.groupID)
        groups[name] = successor
        anchorHistory(name, successor, at: seq)
        try persist(name, lines: [systemLine(name, "You upgraded this group to post-quantum encryption.", seq: seq)])
    }

    /// A Welcome in a group's log: the successor of this member's group when a ReInit closed
    /// it (see the type's comment for what is checked). Anything else (this device's own
    /// successor's Welcome, coming back; one without a KeyPackage of this device) changes
    /// nothing but the cursor. A Welcome that fails the checks throws: a line in the group,
    /// which stays closed, and a genuine successor later in the log is still joined.
    func followSuccessor(
        _ welcome: Welcome,
        _ frame: ServerFrame.Message,
        from group: Group,
        lines: [HistoryEntry]
    )
        throws
    {
        guard group.reInit != nil,
            let entry = try welcome.secrets.first(where: { try store.keyPackage(reference: $0.newMember) != nil }),
            let bundle = try store.keyPackage(reference: entry.newMember)
        else { return try persist(frame.group, lines: lines) }
        let (successor, creator) = try group.joinSuccessorNamingCreator(welcome: welcome, keyPackage: bundle)
        let upgrader = try Self.checkSuccessor(successor, createdBy: creator, as: group)
        try carryOutbox(of: frame.group, from: group.groupID, to: successor.groupID)
        groups[frame.group] = successor
        records[frame.group]?.needsUpdate = true
        anchorHistory(frame.group, successor, at: frame.seq)
        let line = systemLine(
            frame.group,
            "\(upgrader) upgraded this group to post-quantum encryption (the new group is signed by the device "
                + "of \(upgrader) that closed the old one).",
            seq: frame.seq,
            time: frame.time
        )
        try persist(
            frame.group,
            lines: lines + [line],
            consuming: bundle.keyPackage.isLastResort ? nil : entry.newMember
        )
    }

    /// Messages typed in the group before it moved go to its successor: it is the same
    /// conversation (the outbox otherwise parks a message whose group changed under its name).
    func carryOutbox(of name: String, from old: [UInt8], to new: [UInt8]) throws {
        for var queued in try store.outbox() where queued.item.group == name && queued.item.groupID == Data(old) {
            queued.item.groupID = Data(new)
            queued.item.submitted = nil
            try store.update(queued)
        }
    }

    /// Checks `successor` against the closed `group`; returns the username of its creator (the
    /// leaf `creator`, which signed its GroupInfo). It holds exactly the old group's devices, by
    /// credential and signature key (Parley's two suites share Ed25519 device keys), so no one
    /// joins under another's name. Its creator is the device that committed the ReInit, by
    /// signature key in the closed group's last tree: RFC 9420 §11.2 lets any member create the
    /// successor, Parley's server adopts only the committer's, and so do members, so a member
    /// and a hostile server together cannot substitute their own. A group closed before its
    /// committer was recorded (state format 3) needs an admin's device as the creator.
    static func checkSuccessor(_ successor: Group, createdBy creator: LeafIndex, as group: Group) throws -> String {
        let devices = { (group: Group) in
            Set(group.tree.members.map { [$0.leaf.signatureKey.bytes, (try? $0.leaf.credential.tlsEncoded()) ?? []] })
        }
        guard devices(successor) == devices(group), successor.tree.members.count == group.tree.members.count,
            let signer = successor.tree.leafNode(at: creator),
            group.tree.leaf(withSignatureKey: signer.signatureKey) != nil
        else { throw SuccessorRefusal.otherDevices }
        let name = ParleyGroupPolicy.username(of: signer.credential) ?? "an unknown user"
        if let leaf = group.reInitCommitter {
            let committer = group.tree.leafNode(at: leaf)
            guard let committer, committer.signatureKey == signer.signatureKey else {
                let committerName = committer.flatMap { ParleyGroupPolicy.username(of: $0.credential) }
                throw SuccessorRefusal.notCreatedByCommitter(
                    creator: name,
                    committer: committerName ?? "a removed device"
                )
            }
        }
        let admins = (try? ParleyGroupPolicy.admins(in: group.context.extensions)) ?? []
        guard admins.contains(name) else { throw SuccessorRefusal.notCreatedByAnAdmin(creator: name) }
        return name
    }
}
