import Foundation
import MLS
import NIOCore
import ParleyProtocol

/// The submission pipeline: validate, apply, persist, fan out. Each step is one function;
/// refusals are ``DeliveryError`` values, turned into wire errors only at the edge.
extension DeliveryShard {
    /// A message on its way through the pipeline.
    struct Submission {
        let send: ClientFrame.Send
        let device: DeviceRecord
        let message: MLSMessage
        let senderLeaf: LeafIndex
        /// The group as it will be once the message is accepted.
        var group: CachedGroup
        /// The devices that receive it: the members before it (a removed device gets its removal).
        let recipients: Set<Int64>
        var append: LogAppend

        var size: Int64 { Int64(append.data.count) }  // Int is 64 bits on every platform Parley serves from

        /// An application message (a PrivateMessage): its checks move no group state.
        var isApplication: Bool {
            if case .privateMessage = message { true } else { false }
        }
    }

    /// A send waiting to be stored: a second send with the same id waits until it is.
    struct InFlightID: Hashable, Sendable {
        let group: Int64
        let device: Int64
        let clientID: String
    }

    /// What fan-out needs of an accepted message, carried to the log writer's thread.
    struct Accepted: Sendable {
        let groupID: Int64
        let name: String
        let append: LogAppend
        let sender: DeviceRecord
        let clientID: String
        let recipients: Set<Int64>
    }

    /// Accepts one MLS message into a group's log, or explains why not. Returns the seq it was
    /// stored under; the sender's copy (its echo, with its id) follows through the hub like every
    /// member's, only once the message is durably stored. A resend of an id this device already
    /// used in the group is answered with the stored message's echo, never stored twice.
    ///
    /// Checking, and adopting the group's next state, happen in one turn of the actor; storing is
    /// awaited, so the actor checks other messages meanwhile, and the writer stores them together.
    ///
    /// A plain application message is not looked up as a resend first: that read, one per send
    /// inside the actor, bounded every group to one message per database round trip on PostgreSQL
    /// (session 9 measurement). A resend of one is either refused by the checks (its epoch passed,
    /// its quota is spent…) and looked up then, or it passes them and the writer finds the stored
    /// id under the group's lock (`StorageError.duplicate`, ``stored(_:_:)``). Handshake messages
    /// are looked up first, as their checks move the group's state.
    @discardableResult
    func submit(_ send: ClientFrame.Send, from device: DeviceRecord) async throws -> UInt64 {
        do {
            let group = try admit(send, from: device)
            let key = InFlightID(group: group.record.id, device: device.id, clientID: send.id)
            guard !inFlight.contains(key) else { throw DeliveryError.resendInFlight }
            let queued: (submission: Submission, ticket: Ticket)
            do {
                var submission = try validate(send, in: group, from: device)
                if !submission.isApplication, let seq = try answerResend(send, in: group, from: device) { return seq }
                let ticket = try check(&submission)
                queued = (submission, ticket)
            } catch let refusal as DeliveryError {
                if let seq = try answerResend(send, in: group, from: device) { return seq }
                throw refusal
            }
            inFlight.insert(key)
            defer { inFlight.remove(key) }
            return try await stored(queued.submission, queued.ticket)
        } catch {
            if let refusal = error as? DeliveryError { metrics.rejected(refusal.errorBody.code) }
            await settled(groupNamed: send.group)
            throw error
        }
    }

    /// Reserves the message's bytes, runs the group's rules on it and queues it for the writer.
    private func check(_ submission: inout Submission) throws -> Ticket {
        try reserve(submission)
        do {
            try apply(&submission)
            return try enqueue(submission)
        } catch {
            storedBytes.released(submission.size, user: submission.device.userID, group: submission.group.record.id)
            throw error
        }
    }

    /// The message this device stored in the group under the send's id, if any: echoed to the
    /// device again, and its seq returned. A read of storage, so only on the rare paths.
    private func answerResend(
        _ send: ClientFrame.Send,
        in group: CachedGroup,
        from device: DeviceRecord
    ) throws
        -> UInt64?
    {
        guard let earlier = try storage.message(groupID: group.record.id, senderDevice: device.id, clientID: send.id)
        else { return nil }
        echo(earlier, in: group, id: send.id, to: device)
        return earlier.seq
    }

    /// Returns once the group's messages queued so far are settled (stored and fanned out, or
    /// refused). A refusal is sent only then (review s5 M1): a message refused as stale
    /// (`wrongEpoch`, a commit of a past epoch) reaches its sender after what made it stale.
    private func settled(groupNamed name: String) async {
        guard let id = cachedID(named: name), let ticket = lastTickets[id] else { return }
        _ = try? await ticket.value
    }

    /// The checks that need no decoding: rate, id, size and membership.
    private func admit(_ send: ClientFrame.Send, from device: DeviceRecord) throws -> CachedGroup {
        guard shared.sendLimiter.allow("device:\(device.id)") else { throw DeliveryError.rateLimited }
        // No NUL: SQLite would cut the id there (two ids would collide), PostgreSQL cannot store it.
        guard (1...DeliveryService.maxClientIDBytes).contains(send.id.utf8.count), !send.id.utf8.contains(0) else {
            throw DeliveryError.invalidClientID
        }
        guard send.message.count <= configuration.maxFrameBytes,
            (send.welcome?.count ?? 0) <= configuration.maxFrameBytes
        else {
            throw DeliveryError.tooLarge
        }
        guard let group = try lookup(send.group), group.memberDevices.contains(device.id) else {
            throw DeliveryError.notMember
        }
        return group
    }

    /// Decodes the message and checks what does not depend on its kind: the sender's leaf and quotas.
    private func validate(
        _ send: ClientFrame.Send,
        in group: CachedGroup,
        from device: DeviceRecord
    ) throws -> Submission {
        guard let senderLeaf = group.devices.first(where: { $0.value == device.id })?.key else {
            throw DeliveryError.notMember
        }
        guard let message = try? MLSMessage(tlsEncoded: [UInt8](send.message)) else {
            throw DeliveryError.undecodable
        }
        var append = LogAppend(
            groupID: group.record.id,
            time: Clock.milliseconds(),
            senderDevice: device.id,
            data: [UInt8](send.message),
            clientID: send.id
        )
        // Storage several nodes share checks it again, with the group's row locked.
        append.epoch = group.view.epoch
        return Submission(
            send: send,
            device: device,
            message: message,
            senderLeaf: senderLeaf,
            group: group,
            recipients: group.memberDevices,
            append: append
        )
    }

    /// Runs the group's rules on the message: an application message must be of the current
    /// epoch; a handshake message moves the submission's copy of the group.
    private func apply(_ submission: inout Submission) throws {
        // RFC 9420 §12.1.5: after a ReInit commit only the successor follows.
        guard submission.group.closedBy == nil, !Self.isForPredecessor(submission) else {
            throw DeliveryError.groupClosed
        }
        switch submission.message {
        case .privateMessage(let message):
            try checkApplication(message, in: submission.group, now: submission.append.time)
        case .publicMessage(let message):
            try acceptHandshake(message, &submission)
        case .welcome, .groupInfo, .keyPackage:
            throw DeliveryError.notAGroupMessage
        }
    }

    /// Queues the message, with everything that changes with it, for the log writer, and adopts
    /// the group's next state at once, so the group's next message is checked against it. Fan-out
    /// runs on the writer's thread once the message's transaction committed.
    func enqueue(_ submission: Submission) throws -> Ticket {
        let ticket = Ticket()
        let (storedBytes, size, user, groupID) = (
            storedBytes, submission.size, submission.device.userID, submission.group.record.id
        )
        let accepted = Accepted(
            groupID: submission.group.record.id,
            name: submission.group.record.name,
            append: submission.append,
            sender: submission.device,
            clientID: submission.send.id,
            recipients: submission.recipients
        )
        let entry = LogWriter.Entry(
            append: submission.append,
            incarnation: submission.group.incarnation,
            onCommit: { [self] seq in
                storedBytes.stored(size, user: user, group: groupID)
                fanOut(accepted, seq: seq)
            },
            ticket: ticket
        )
        do {
            try writer.enqueue(entry)
        } catch {
            throw error == .full ? DeliveryError.busy : DeliveryError.notStored
        }
        let group = submission.group
        cache[group.record.id] = group
        lastTickets[group.record.id] = ticket
        return ticket
    }

    /// Waits until the message is durably stored and returns its seq. If it was refused, the
    /// group's state adopted with it is dropped: it is read again from storage on next use.
    func stored(_ submission: Submission, _ ticket: Ticket) async throws -> UInt64 {
        let id = submission.group.record.id
        let seq: UInt64
        do {
            seq = try await ticket.value
            if lastTickets[id] === ticket { lastTickets.removeValue(forKey: id) }
        } catch {
            if lastTickets[id] === ticket { lastTickets.removeValue(forKey: id) }
            storedBytes.released(submission.size, user: submission.device.userID, group: id)
            return try refused(submission, error)
        }
        if var group = cache[id], group.incarnation == submission.group.incarnation {
            group.record.lastSeq = max(group.record.lastSeq, seq)
            if submission.append.newState != nil { group.record.stateSeq = max(group.record.stateSeq, seq) }
            cache[id] = group
        }
        return seq
    }

    /// Answers a message storage refused. The group's state adopted with it is dropped, unless
    /// the refusal spares it (a resend of a plain application message: it changed nothing).
    private func refused(_ submission: Submission, _ error: any Error) throws -> UInt64 {
        let id = submission.group.record.id
        if !submission.append.refusalSpares(error) {
            if cache[id]?.incarnation == submission.group.incarnation { cache.removeValue(forKey: id) }
            // No later send is checked against this load of the group any more.
            writer.release(incarnation: submission.group.incarnation)
        }
        // A resend that passed the checks is answered with the stored message's echo, whatever
        // storage refused it for, as ``submit(_:from:)`` answers one the checks refuse: found as a
        // duplicate (its first copy stored by this node or another, or the same id reaching
        // another node at once), or refused as stale or from a non-member by storage several
        // nodes share, when this node's copy of the group is behind (review s9: `wrongEpoch`
        // would tell the client bytes that are stored can never be, and it would rebuild them).
        // A failed look-up leaves the refusal's own answer.
        if let seq = try? answerResend(submission.send, in: submission.group, from: submission.device) {
            return seq
        }
        if case LogWriterError.full = error { throw DeliveryError.busy }
        // Another node stored a commit of this epoch first: the sender rebuilds on the new one.
        if case StorageError.staleEpoch(let current) = error { throw DeliveryError.wrongEpoch(current: current) }
        if case StorageError.senderNotMember = error { throw DeliveryError.notMember }
        logger.warning(
            "message not stored",
            metadata: ["group": "\(submission.group.record.name)", "error": "\(error)"]
        )
        throw DeliveryError.notStored
    }

    /// Reserves the message's bytes against the sending user's and the group's storage quotas
    /// (finding 13), counting what is stored and what is queued (review s5 L2). An account not
    /// known yet is read from storage first.
    func reserve(_ submission: Submission) throws {
        let (user, group) = (submission.device.userID, submission.group.record.id)
        let limits = (
            user: Int64(configuration.maxStoredBytesPerUser), group: Int64(configuration.maxStoredBytesPerGroup)
        )
        // An account is unknown at most once between prunings; a few rounds cover a prune racing.
        for _ in 0..<4 {
            do {
                try storedBytes.reserve(
                    submission.size,
                    user: user,
                    group: group,
                    userLimit: limits.user,
                    groupLimit: limits.group
                )
                return
            } catch .over(.user) {
                throw DeliveryError.quotaExceeded(.user)
            } catch .over(.group) {
                throw DeliveryError.quotaExceeded(.group)
            } catch .unknown(let key) {
                let generation = storedBytes.known(key).generation
                let stored: Int64 =
                    switch key {
                    case .user(let id): try storage.storedBytes(userID: id)
                    case .group(let id): try storage.storedBytes(groupID: id)
                    }
                storedBytes.learn(key, stored: stored, generation: generation)
            }
        }
        throw DeliveryError.busy
    }

    /// An application message: opaque to the server, but its group and epoch must be current
    /// (or the previous epoch, briefly after a commit).
    private func checkApplication(_ message: PrivateMessage, in group: CachedGroup, now: UInt64) throws {
        guard message.contentType == .application else { throw DeliveryError.handshakeNotPublic }
        guard message.groupID == group.view.groupID else { throw DeliveryError.otherGroup }
        let current = group.view.epoch
        // The epoch is from the wire and may be anything, 2^64-1 included (finding 2): compare, never add.
        let inGrace = current > 0 && message.epoch == current - 1 && now <= group.previousEpochUntil
        guard message.epoch == current || inGrace else { throw DeliveryError.wrongEpoch(current: current) }
    }

    /// A proposal or commit, checked by the public view; a commit moves the group to its next epoch.
    private func acceptHandshake(_ message: PublicMessage, _ submission: inout Submission) throws {
        guard case .member(let leaf) = message.content.sender, leaf == submission.senderLeaf else {
            throw DeliveryError.notOwnHandshake
        }
        try checkLeafIndices(message.content.body, in: submission.group.view)
        let size = submission.append.data.count
        if case .proposal = message.content.body {
            // The server's own bound, before the view does any work (finding 8).
            guard submission.group.pendingProposals < configuration.maxProposalsPerEpoch,
                submission.group.pendingProposalBytes + size <= configuration.maxProposalBytesPerEpoch
            else {
                throw DeliveryError.tooManyProposals
            }
        }
        var view = submission.group.view
        let event: PublicGroupEvent
        do {
            event = try view.process(.publicMessage(message))
        } catch let error as MLSError {
            throw DeliveryError.rejected(error)
        } catch {
            throw DeliveryError.unprocessable
        }
        switch event {
        case .proposal:
            // Proposals are not written into the stored state: on restart they are re-derived from the log.
            submission.append.isProposal = true
            submission.group.pendingProposals += 1
            submission.group.pendingProposalBytes += size
        case .commit(let summary):
            try applyCommit(message, view: view, &submission)
            submission.group.closedBy = try Self.closure(summary, message, by: submission.device.id)
            if let closure = submission.group.closedBy {
                submission.append.newState = try Self.storedState(view, closedBy: closure)
            }
        }
        submission.group.view = view
    }

    /// The membership change a commit makes. Who joined and who left comes from the rosters
    /// before and after, never from indices in the message (finding 10): a removed device
    /// always stops receiving.
    private func applyCommit(_ message: PublicMessage, view: PublicGroup, _ submission: inout Submission) throws {
        guard view.members.count <= configuration.maxMembers else { throw DeliveryError.tooManyMembers }
        let newDevices = try deviceMap(view)
        let before = submission.group.memberDevices
        let after = Set(newDevices.values)
        let joined = after.subtracting(before)
        submission.append.leftDevices = before.subtracting(after).sorted()
        submission.append.joinedDevices = joined.sorted()
        submission.append.welcomes = try welcomes(
            submission.send.welcome,
            for: joined,
            commit: message.content.body,
            suite: view.suite
        )
        submission.append.newState = try view.serialized()
        submission.group.devices = newDevices
        let (until, overflow) = submission.append.time.addingReportingOverflow(graceMilliseconds)
        submission.group.previousEpochUntil = overflow ? .max : until
        submission.group.pendingProposals = 0
        submission.group.pendingProposalBytes = 0
    }

    /// Leaf indices a proposal or commit names must lie inside the group's tree; they are never
    /// wrapped onto a real leaf (finding 10). Proposals by reference were checked on arrival.
    private func checkLeafIndices(_ body: FramedContent.Body, in view: PublicGroup) throws {
        let proposals: [Proposal] =
            switch body {
            case .proposal(let proposal): [proposal]
            case .commit(let commit):
                commit.proposals.compactMap { if case .proposal(let proposal) = $0 { proposal } else { nil } }
            case .application: []
            }
        for case .remove(let leaf) in proposals where leaf.rawValue >= view.tree.leafCount.rawValue {
            throw DeliveryError.leafOutsideTree(leaf)
        }
    }

    /// The Welcome of a commit that adds devices (finding 4): size-bounded, it must parse as a
    /// Welcome whose secrets name exactly the added devices' KeyPackages, one each.
    ///
    /// Consent rule: a user is added to a group only with a KeyPackage one of their devices
    /// uploaded for that purpose. An Add must carry a KeyPackage signed by the device's own
    /// key (the policy checks the key is that user's registered device), the Welcome must be
    /// addressed to a KeyPackage that device uploaded, and the server hands each one-time
    /// KeyPackage out once (the accounts service limits claims per target). No further
    /// consent is asked: uploading KeyPackages is the user's consent to be added by someone
    /// who can claim one; a user leaves a group they do not want by proposing their own Remove.
    private func welcomes(
        _ data: Data?,
        for joined: Set<Int64>,
        commit: FramedContent.Body,
        suite: CipherSuiteProvider
    ) throws -> [(deviceID: Int64, data: [UInt8])] {
        guard !joined.isEmpty else { return [] }
        guard let data, data.count <= configuration.maxFrameBytes,
            case .welcome(let welcome) = try? MLSMessage(tlsEncoded: [UInt8](data))
        else {
            throw DeliveryError.missingWelcome
        }
        if case .commit(let body) = commit {
            for case .proposal(.add(let keyPackage)) in body.proposals {
                guard let owner = try storage.keyPackageOwner(reference: keyPackage.reference(suite)),
                    joined.contains(owner)
                else {
                    throw DeliveryError.foreignKeyPackage
                }
            }
        }
        var recipients = Set<Int64>()
        for entry in welcome.secrets {
            guard let owner = try storage.keyPackageOwner(reference: entry.newMember), joined.contains(owner),
                recipients.insert(owner).inserted
            else {
                throw DeliveryError.misaddressedWelcome
            }
        }
        guard recipients == joined else { throw DeliveryError.incompleteWelcome }
        return recipients.sorted().map { ($0, [UInt8](data)) }
    }

    /// Enqueues the stored message for every member device (the sender's copy carries its id)
    /// and the Welcome for every added one. Called by the log writer once the message is durable.
    private nonisolated func fanOut(_ accepted: Accepted, seq: UInt64) {
        let (append, sender, name, groupID) = (accepted.append, accepted.sender, accepted.name, accepted.groupID)
        metrics.accepted.increment()
        logger.debug(
            "message accepted",
            metadata: [
                "group": "\(name)", "seq": "\(seq)", "size": "\(append.data.count)",
                "kind": "\(append.newState == nil ? "application or proposal" : "commit")",
            ]
        )
        let frame = ServerFrame.Message(
            group: name,
            seq: seq,
            time: append.time,
            sender: sender.userName,
            message: Data(append.data)
        )
        // Encoded once for every member but the sender, whose copy carries its id (issue 15).
        let encoded = (try? WireJSON.encode(ServerFrame.message(frame))).map { ByteBuffer(bytes: $0) }
        for recipient in accepted.recipients {
            if recipient == sender.id {
                var copy = frame
                copy.id = accepted.clientID
                hub.send(.message(groupID: groupID, copy), to: recipient)
            } else {
                hub.send(.message(groupID: groupID, frame, encoded: encoded), to: recipient)
            }
            metrics.deliveries.increment()
        }
        for welcome in append.welcomes {
            let welcomeFrame = ServerFrame.WelcomeFrame(
                group: name,
                seq: seq,
                time: append.time,
                welcome: Data(welcome.data)
            )
            hub.send(.welcome(groupID: groupID, welcomeFrame), to: welcome.deviceID)
        }
        for added in append.joinedDevices {
            logger.info("member added", metadata: ["group": "\(name)", "device": "\(added)"])
        }
        for removed in append.leftDevices {
            logger.info("member removed", metadata: ["group": "\(name)", "device": "\(removed)"])
        }
    }

    /// The echo of a message stored earlier under the same id: sent again even when this
    /// connection already delivered it, since the client resent because it missed it.
    private func echo(_ entry: LogEntry, in group: CachedGroup, id: String, to device: DeviceRecord) {
        let frame = ServerFrame.Message(
            group: group.record.name,
            seq: entry.seq,
            time: entry.time,
            sender: entry.sender,
            message: Data(entry.data),
            id: id
        )
        hub.send(.echo(groupID: group.record.id, frame), to: device.id)
        metrics.duplicateSubmissions.increment()
        logger.debug(
            "resend answered with its echo",
            metadata: ["group": "\(group.record.name)", "seq": "\(entry.seq)"]
        )
    }
}
