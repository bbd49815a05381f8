import Foundation
import MLS
import ParleyProtocol

extension GroupEngine {
    // MARK: What a message did, in words

    /// History lines for what a message did. Who did it comes from the MLS credential of
    /// the leaf that signed it, never from the frame's `sender`, which the server writes
    /// and could forge.
    func describe(_ processed: ProcessedMessage, in group: Group, _ frame: ServerFrame.Message) -> [HistoryEntry] {
        let actor = { (leaf: LeafIndex) in
            group.tree.leafNode(at: leaf).flatMap { ParleyGroupPolicy.username(of: $0.credential) } ?? "a member"
        }
        let line = { (text: String) in self.systemLine(frame.group, text, seq: frame.seq, time: frame.time) }
        switch processed {
        case .application(let message):
            let sender = ParleyGroupPolicy.username(of: message.credential) ?? "a member"
            return describe(message, from: sender, in: group, frame)
        case .proposal(_, let proposal):
            guard case .remove(let leaf) = proposal.proposal, proposal.sender == .member(leaf) else { return [] }
            return [line("\(actor(leaf)) asked to leave the group.")]
        case .commit(let summary):
            let committer = actor(summary.committerLeaf)
            let names = { (members: [(index: LeafIndex, credential: Credential)]) in
                Set(members.compactMap { ParleyGroupPolicy.username(of: $0.credential) }).sorted().joined(
                    separator: ", "
                )
            }
            var lines: [HistoryEntry] = []
            if !summary.added.isEmpty { lines.append(line("\(committer) added \(names(summary.added)).")) }
            if summary.reInit != nil {
                lines.append(line("\(committer) is upgrading this group to post-quantum encryption."))
            }
            if summary.removedSelf {
                lines.append(line("You were removed from the group."))
            } else if !summary.removed.isEmpty {
                lines.append(line("\(committer) removed \(names(summary.removed))."))
            }
            return lines
        }
    }

    /// Lines for application content (ApplicationContent, docs/PROTOCOL.md). A destroy
    /// notice deletes only when its MLS-signed sender is an admin in the epoch it was sent
    /// in (this one: PrivateMessages of other epochs do not decrypt); the deletion itself
    /// happens once the frame is stored (``handle``).
    private func describe(
        _ message: ApplicationMessage,
        from sender: String,
        in group: Group,
        _ frame: ServerFrame.Message
    ) -> [HistoryEntry] {
        let line = { (text: String) in self.systemLine(frame.group, text, seq: frame.seq, time: frame.time) }
        switch Result(catching: { () throws(ApplicationContentError) in try ApplicationContent(decoding: message.data) }
        ) {
        case .success(.text(let text)):
            return [HistoryEntry(seq: frame.seq, time: frame.time, sender: sender, kind: .text, text: text)]
        case .success(.destroyGroup):
            guard ParleyGroupPolicy.isAdmin(sender, in: group.context.extensions) else {
                return [line("\(sender) asked to destroy this group but is not an admin; nothing was deleted.")]
            }
            return [line("\(sender) destroyed this group.")]
        case .failure(let error):
            return [line("A message from \(sender) could not be shown: \(Self.sentence(for: error))")]
        }
    }

    static func sentence(for error: ApplicationContentError) -> String {
        switch error {
        case .unsupportedVersion, .unknownType: "it was sent by a newer version of Parley."
        case .malformed, .invalidText, .emptyText: "it is malformed."
        case .tooLarge(let limit): "it is longer than \(limit) bytes."
        }
    }

    /// Whether a processed message is an admin's signed destroy notice for this group.
    static func isAdminDestroy(_ processed: ProcessedMessage, in group: Group) -> Bool {
        guard case .application(let message) = processed,
            (try? ApplicationContent(decoding: message.data)) == .destroyGroup,
            let sender = ParleyGroupPolicy.username(of: message.credential)
        else { return false }
        return ParleyGroupPolicy.isAdmin(sender, in: group.context.extensions)
    }

    // MARK: Welcomes

    /// Joins from a Welcome with the matching stored KeyPackage, then plans a self-update;
    /// returns the local name of the group it changed. Which group a Welcome is for is
    /// decided by MLS group ID, not by the server's name:
    /// - a Welcome into the group this device already follows at that epoch or later is
    ///   stale and ignored;
    /// - one into the same group after this device was removed (or while it is still
    ///   behind the removal) rejoins it: same name, history continued;
    /// - one into a different group under a name one of this device's groups has is a
    ///   newcomer: it gets a new local name (`name#2`) and says so, while the group already
    ///   there keeps its name, history, outbox and cursor (a server colluding with a member
    ///   cannot put her group in its place).
    /// A Welcome that cannot be used (random bytes, a KeyPackage this device never made, a
    /// tree that does not match) is recorded once and acknowledged; it is never retried.
    func join(_ frame: ServerFrame.WelcomeFrame) async throws -> String? {
        guard Int64(exactly: frame.seq) != nil else {
            throw ClientError.unusableWelcome(.seqBeyondLog(frame.seq))
        }
        // No seq check against the group holding the name: a Welcome's seq is of the new
        // group's log, which may be a different group's; `place` compares it with the same
        // MLS group's cursor only.
        guard case .welcome(let welcome) = try MLSMessage(tlsEncoded: [UInt8](frame.welcome)) else {
            throw ClientError.unusableWelcome(.notAWelcome)
        }
        guard let entry = try welcome.secrets.first(where: { try store.keyPackage(reference: $0.newMember) != nil }),
            let bundle = try store.keyPackage(reference: entry.newMember)
        else {
            throw ClientError.unusableWelcome(.noKeyPackageOfThisDevice)
        }
        let joined = try await open(welcome, with: bundle, group: frame.group)
        guard let (name, rejoining) = try place(joined, calledByServer: frame.group, seq: frame.seq) else { return nil }
        groups[name] = joined
        records[name] = GroupRecord(
            name: name,
            lastSeq: frame.seq,
            needsUpdate: true,
            server: name == frame.group ? nil : frame.group
        )
        anchorHistory(name, joined, at: frame.seq)
        // The one-time KeyPackage goes in the transaction that saves the group: deleted first,
        // a crash before the save would leave the replayed Welcome nothing to open it with.
        try persist(
            name,
            lines: joinLines(name, joined, rejoining: rejoining, frame),
            consuming: bundle.keyPackage.isLastResort ? nil : entry.newMember
        )
        try connection?.send(.ack(.init(group: frame.group, seq: frame.seq)))
        return name
    }

    /// Where a group just opened from a Welcome goes: its local name and whether this device
    /// is rejoining it; nil for a stale Welcome, which moves nothing, not even the cursor
    /// (see `refuse`). One MLS group is held under one name.
    private func place(
        _ joined: Group,
        calledByServer server: String,
        seq: UInt64
    ) throws -> (name: String, rejoining: Bool)? {
        let followed = { (name: String) in self.groups[name]?.isActive == true && self.records[name]?.problem == nil }
        let same = groups.filter { $0.value.groupID == joined.groupID }.keys.sorted()
        // The same group under another server name (e.g. an old Welcome replayed) would
        // become a second copy of it.
        if let other = same.first(where: { serverName($0) != server }), followed(other) {
            throw ClientError.unusableWelcome(.groupAlreadyFollowed(other))
        }
        if let current = same.first {
            if followed(current), let group = groups[current], group.epoch >= joined.epoch { return nil }
            guard seq > records[current]?.lastSeq ?? 0 else { return nil }
            return (current, true)
        }
        // A different group never takes a name one of this device's groups holds, followed or
        // not: a server that makes a group unfollowable (a forged commit) must not be able to
        // put its own group in that name's place, where the outbox and history of the old one
        // would follow it. A name held by no group (only a refused invitation's line) is free.
        return groups[server] == nil ? (server, false) : (newLocalName(for: server), false)
    }

    private func joinLines(
        _ name: String,
        _ joined: Group,
        rejoining: Bool,
        _ frame: ServerFrame.WelcomeFrame
    ) throws -> [HistoryEntry] {
        let title = Self.title(of: joined, calledByServer: frame.group)
        let text = rejoining ? "You were added to \(title) again." : "You joined \(title)."
        var lines = [systemLine(name, text, seq: frame.seq, time: frame.time)]
        var warnings: [String] = []
        if name != frame.group {
            warnings.append(
                "Warning: the server gave this group the name \(frame.group), which a group you are in already has; "
                    + "it is shown as \(name) here, and \(frame.group) is still the group you were in."
            )
            try store.appendHistory(
                systemLine(
                    frame.group,
                    "You were invited to a different group also called \(frame.group); it is \(name). "
                        + "This group is unchanged."
                ),
                to: frame.group
            )
        }
        if title != frame.group {
            warnings.append(
                "Warning: the server calls this group \(frame.group), but its admins named it \(title)."
            )
        }
        records[name]?.warnings = warnings.isEmpty ? nil : warnings
        lines += warnings.map { systemLine(name, $0, seq: frame.seq, time: frame.time) }
        return lines
    }

    /// The name a group's admins gave it (`parley_group_name` in its GroupContext, which
    /// the server cannot change); the server's name for groups made before the extension.
    static func title(of group: Group, calledByServer name: String) -> String {
        ((try? ParleyGroupPolicy.groupName(in: group.context.extensions)) ?? nil) ?? name
    }

    /// The group a Welcome opens; the tree is fetched from the server when it is not inline
    /// (RFC 9420 §12.4.3.1 leaves that to the application).
    private func open(_ welcome: Welcome, with bundle: KeyPackageBundle, group name: String) async throws -> Group {
        do {
            return try Group.join(welcome: welcome, keyPackage: bundle, policy: policy)
        } catch MLSError.ratchetTreeNotFound {
            let encoded = try await transport.ratchetTree(of: name)
            let tree = try RatchetTree(try welcome.cipherSuite.provider(), encoded: encoded)
            return try Group.join(welcome: welcome, keyPackage: bundle, ratchetTree: tree, policy: policy)
        }
    }

    /// Records an unusable Welcome: a group entry without state that says why, so its
    /// frames are acknowledged and ignored, and the user sees it once.
    func refuse(_ frame: ServerFrame.WelcomeFrame, because reason: String) throws {
        guard frame.seq > records[frame.group]?.lastSeq ?? 0 else { return }
        if records[frame.group] == nil { records[frame.group] = GroupRecord(name: frame.group) }
        // A Welcome's seq is that of the commit that added this device, a message of the log
        // of a group it already holds: it never moves such a group's cursor (nor is it acked),
        // or a junk one numbered far ahead would silently turn every later message into a replay.
        let moves = groups[frame.group] == nil && Int64(exactly: frame.seq) != nil
        if moves { records[frame.group]?.lastSeq = frame.seq }
        let problem = "an invitation to it could not be opened (\(reason))."
        if groups[frame.group] == nil { records[frame.group]?.problem = problem }
        try report(
            frame.group,
            "You were invited to \(frame.group), but the invitation could not be opened: \(reason). It was ignored."
        )
        if moves { try connection?.send(.ack(.init(group: frame.group, seq: frame.seq))) }
    }
}
