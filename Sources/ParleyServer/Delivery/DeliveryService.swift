import Foundation
import Logging
import MLS
import ParleyProtocol

/// The delivery service (RFC 9750 §5): orders each group's messages, checks
/// every handshake message with MLS's secret-free `PublicGroup`, stores
/// before acknowledging, and fans out to member devices.
///
/// One actor serialises all groups' state changes; each change is one
/// SQLite transaction of a few hundred microseconds. Work whose cost an
/// attacker chooses (parsing a creation GroupInfo and its tree) runs outside
/// the actor, with bounded concurrency, after a size check.
///
/// Non-members get `notMember` for every group route and frame, whether or not the
/// group exists, so names cannot be probed (finding 18). Creation is the exception
/// names being global: a taken name answers `groupNameInUse`.
actor DeliveryService {
    struct CachedGroup {
        var record: GroupRecord
        var view: PublicGroup
        /// The device at each member leaf.
        var devices: [LeafIndex: Int64]
        /// Until when application messages of the previous epoch are accepted.
        var previousEpochUntil: UInt64 = 0
        /// Proposals accepted since the last commit, and their bytes: the server's own bound (finding 8).
        var pendingProposals = 0
        var pendingProposalBytes = 0
        /// Bytes of message data this group keeps in storage (quota, finding 13).
        var storedBytes: Int64 = 0

        var memberDevices: Set<Int64> { Set(devices.values) }
    }

    let storage: any ServerStorage
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    private var cache: [Int64: CachedGroup] = [:]
    /// Group ids by name, so a submission finds its cached group without a database read. Keyed
    /// by the name's UTF-8 bytes, as storage compares them: Swift's `String ==` is canonical
    /// equivalence, and would let "e\u{301}" answer for "\u{E9}" (a lookalike group's hijack).
    private var idsByName: [[UInt8]: Int64] = [:]
    /// Bytes of message data each user's devices sent and storage still keeps, by user id.
    private var userBytes: [Int64: Int64] = [:]
    private let sendLimiter: RateLimiter
    private let creationLimiter: RateLimiter
    /// Creation GroupInfos are parsed and validated outside the actor, a few at a time.
    private let parsing = ConcurrencyLimit(permits: 2, maxWaiting: 32)
    private let graceMilliseconds: UInt64

    init(
        storage: any ServerStorage,
        hub: ConnectionHub,
        configuration: ServerConfiguration,
        metrics: ServerMetrics,
        logger: Logger
    ) {
        self.storage = storage
        self.hub = hub
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        sendLimiter = RateLimiter(
            capacity: configuration.messagesPerSecond * 4,
            perMinute: configuration.messagesPerSecond * 60
        )
        let creations = max(1, configuration.groupCreationsPerHour)
        creationLimiter = RateLimiter(capacity: creations, perHour: creations)
        let (grace, overflow) = UInt64(max(0, configuration.epochGraceSeconds)).multipliedReportingOverflow(by: 1000)
        graceMilliseconds = overflow ? .max : grace
    }

    /// The group policy the server enforces: Parley's admin rule, and
    /// credentials that name a registered user on one of that user's devices.
    nonisolated var policy: GroupPolicy {
        ParleyGroupPolicy.groupPolicy(credentialValidator: RegisteredDevices(storage: storage))
    }

    struct RegisteredDevices: CredentialValidator {
        let storage: any ServerStorage
        func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            try ParleyGroupPolicy.CredentialRule().validate(credential, signatureKey: signatureKey)
            guard let device = try storage.device(withSignatureKey: signatureKey.bytes),
                device.userName == ParleyGroupPolicy.username(of: credential)
            else {
                throw ErrorBody(
                    .invalidMessage,
                    "a member's signature key is not a registered device of the user it names"
                )
            }
        }
    }

    // MARK: Groups

    /// Registers a new group from the creator's epoch-0 GroupInfo (finding 7). The size is
    /// checked before anything is parsed, and parsing runs off the actor, so a hostile
    /// creation costs little and never stalls delivery.
    nonisolated func createGroup(_ request: API.CreateGroup, by device: DeviceRecord) async throws -> API.Group {
        guard GroupName.isValid(request.name) else {
            throw ErrorBody(
                .malformedRequest,
                "Group names are 1 to 64 bytes of printable text in Unicode NFC, "
                    + "without '/', and not '.' or '..'."
            )
        }
        guard request.groupInfo.count <= configuration.maxGroupInfoBytes else {
            let limit = configuration.maxGroupInfoBytes
            throw ErrorBody(.tooLarge, "A new group's GroupInfo may be at most \(limit) bytes.")
        }
        guard creationLimiter.allow("device:\(device.id)") else {
            throw ErrorBody(.rateLimited, "This device created too many groups recently; wait and try again.")
        }
        let (policy, groupInfo) = (policy, [UInt8](request.groupInfo))
        let view = try await parsing.run { try Self.creationView(groupInfo, creator: device, policy: policy) }
        return try await register(view, name: request.name, creator: device)
    }

    /// The public view of a new group: it must be epoch 0 with the creator alone, as its one admin.
    private static func creationView(
        _ bytes: [UInt8],
        creator device: DeviceRecord,
        policy: GroupPolicy
    ) throws -> PublicGroup {
        guard case .groupInfo(let info) = try? MLSMessage(tlsEncoded: bytes) else {
            throw ErrorBody(.invalidGroupInfo, "The group info could not be decoded.")
        }
        guard info.groupContext.epoch == 0 else {
            throw ErrorBody(.invalidGroupInfo, "A new group starts at epoch 0.")
        }
        let view: PublicGroup
        do {
            view = try PublicGroup(groupInfo: info, policy: policy)
        } catch {
            throw ErrorBody(.invalidGroupInfo, "The group info is invalid: \(error).")
        }
        let admins = (try? ParleyGroupPolicy.admins(in: view.context.extensions)) ?? []
        guard view.tree.leafCount.rawValue == 1, view.members.count == 1,
            let creator = view.tree.leafNode(at: LeafIndex(0)),
            creator.signatureKey.bytes == device.signatureKey, admins == [device.userName]
        else {
            throw ErrorBody(.invalidGroupInfo, "A new group must have only its creator, at epoch 0, as its one admin.")
        }
        return view
    }

    private func register(_ view: PublicGroup, name: String, creator device: DeviceRecord) throws -> API.Group {
        let record = GroupRecord(
            id: 0,
            name: name,
            mlsGroupID: view.groupID,
            state: try view.serialized(),
            lastSeq: 0,
            createdAt: Clock.milliseconds()
        )
        let id: Int64
        do {
            id = try storage.createGroup(record, creatorDevice: device.id)
        } catch StorageError.conflict {
            throw ErrorBody(.groupNameInUse)
        }
        var stored = record
        stored.id = id
        let cached = CachedGroup(record: stored, view: view, devices: [LeafIndex(0): device.id])
        cache[id] = cached
        idsByName[Array(name.utf8)] = id
        logger.info("group created", metadata: ["group": "\(name)", "creator": "\(device.userName)"])
        metrics.groupsCreated.increment()
        return try describe(cached)
    }

    /// The group, or nil when there is none by that name. New names are NFC (``GroupName``), so
    /// a name typed decomposed (as macOS input does) is looked up by its exact bytes, then by its
    /// NFC form, which names at most one group. Only stored names are cached.
    private func lookup(_ name: String) throws -> CachedGroup? {
        let composed = name.precomposedStringWithCanonicalMapping
        let spellings = Array(name.utf8) == Array(composed.utf8) ? [name] : [name, composed]
        for spelling in spellings {
            if let id = idsByName[Array(spelling.utf8)], let cached = cache[id] { return cached }
        }
        for spelling in spellings {
            guard let record = try storage.group(named: spelling) else { continue }
            idsByName[Array(record.name.utf8)] = record.id
            return try load(record)
        }
        return nil
    }

    /// The group when `device` is a member; `notMember` otherwise, whether or not it exists.
    func group(named name: String, for device: DeviceRecord) throws -> CachedGroup {
        guard let group = try lookup(name), group.memberDevices.contains(device.id) else { throw ErrorBody(.notMember) }
        return group
    }

    func describe(named name: String, for device: DeviceRecord) throws -> API.Group {
        try describe(try group(named: name, for: device))
    }

    private func load(_ record: GroupRecord) throws -> CachedGroup {
        if let cached = cache[record.id] { return cached }
        let view = try PublicGroup(serialized: record.state, policy: policy)
        var cached = CachedGroup(record: record, view: view, devices: try deviceMap(view))
        try replayProposals(into: &cached)
        cached.storedBytes = try storage.storedBytes(groupID: record.id)
        cache[record.id] = cached
        return cached
    }

    /// The stored state is written on commits only; proposals accepted after the last
    /// commit are re-derived from the log (which keeps them until the next commit).
    private func replayProposals(into group: inout CachedGroup) throws {
        var cursor = group.record.stateSeq
        while true {
            let page = try storage.messages(
                groupID: group.record.id,
                after: cursor,
                through: group.record.lastSeq,
                limit: 500
            )
            for entry in page {
                guard case .publicMessage(let message)? = try? MLSMessage(tlsEncoded: entry.data),
                    case .proposal = message.content.body,
                    (try? group.view.process(.publicMessage(message))) != nil
                else { continue }
                group.pendingProposals += 1
                group.pendingProposalBytes += entry.data.count
            }
            guard page.count == 500, let next = page.last?.seq else { return }
            cursor = next
        }
    }

    private func deviceMap(_ view: PublicGroup) throws -> [LeafIndex: Int64] {
        var map: [LeafIndex: Int64] = [:]
        for (index, leaf) in view.tree.members {
            if let device = try storage.device(withSignatureKey: leaf.signatureKey.bytes) { map[index] = device.id }
        }
        return map
    }

    func describe(_ group: CachedGroup) throws -> API.Group {
        API.Group(
            name: group.record.name,
            epoch: group.view.epoch,
            members: Array(Set(group.view.members.compactMap { ParleyGroupPolicy.username(of: $0.credential) }))
                .sorted(),
            admins: try ParleyGroupPolicy.admins(in: group.view.context.extensions),
            lastSeq: group.record.lastSeq
        )
    }

    func groups(of device: DeviceRecord) throws -> [API.Group] {
        try storage.groups(ofDevice: device.id).map { try describe(try load($0)) }
    }

    func ratchetTree(of name: String, for device: DeviceRecord) throws -> API.RatchetTree {
        guard let group = try lookup(name),
            group.memberDevices.contains(device.id) || isInvited(device, to: group)
        else {
            throw ErrorBody(.notMember)
        }
        return API.RatchetTree(epoch: group.view.epoch, tree: Data(try group.view.tree.encoded()))
    }

    private func isInvited(_ device: DeviceRecord, to group: CachedGroup) -> Bool {
        (try? storage.welcomes(forDevice: device.id).contains { $0.groupID == group.record.id }) ?? false
    }

    /// Destroys a group: only an admin may; members are told, the log is deleted.
    func destroy(name: String, by device: DeviceRecord) throws {
        let group = try group(named: name, for: device)
        guard try ParleyGroupPolicy.admins(in: group.view.context.extensions).contains(device.userName) else {
            throw ErrorBody(.notPermitted)
        }
        let members = Array(group.memberDevices)
        try storage.destroyGroup(id: group.record.id, notify: members)
        cache.removeValue(forKey: group.record.id)
        idsByName.removeValue(forKey: Array(name.utf8))
        for member in members { hub.send(.frame(.groupDestroyed(.init(group: name))), to: member) }
        logger.info("group destroyed", metadata: ["group": "\(name)", "by": "\(device.userName)"])
    }

    /// Quotas count what storage keeps; after pruning, counts are taken again.
    func forgetStoredBytes() {
        userBytes.removeAll()
        for id in cache.keys {
            cache[id]?.storedBytes = (try? storage.storedBytes(groupID: id)) ?? cache[id]?.storedBytes ?? 0
        }
    }

    // MARK: Messages

    /// Accepts one MLS message into a group's log, or explains why not.
    /// Returns the seq it was stored under; the echo to the sender follows through the hub.
    @discardableResult
    func submit(_ send: ClientFrame.Send, from device: DeviceRecord) throws -> UInt64 {
        do {
            return try accept(send, from: device)
        } catch let error as ErrorBody {
            metrics.rejected(error.code)
            throw error
        }
    }

    private func accept(_ send: ClientFrame.Send, from device: DeviceRecord) throws -> UInt64 {
        guard sendLimiter.allow("device:\(device.id)") else { throw ErrorBody(.rateLimited) }
        guard send.message.count <= configuration.maxFrameBytes,
            (send.welcome?.count ?? 0) <= configuration.maxFrameBytes
        else {
            throw ErrorBody(.tooLarge)
        }
        var group = try group(named: send.group, for: device)
        guard let senderLeaf = group.devices.first(where: { $0.value == device.id })?.key else {
            throw ErrorBody(.notMember)
        }
        let message: MLSMessage
        do {
            message = try MLSMessage(tlsEncoded: [UInt8](send.message))
        } catch {
            throw ErrorBody(.invalidMessage, "The message could not be decoded: \(error).")
        }
        let size = Int64(send.message.count)  // Int is 64 bits on every platform Parley serves from
        let userTotal = try checkQuota(group, user: device.userID, adding: size)
        let now = Clock.milliseconds()
        var append = LogAppend(
            groupID: group.record.id,
            time: now,
            senderDevice: device.id,
            data: [UInt8](send.message)
        )
        let recipients = group.memberDevices

        switch message {
        case .privateMessage(let privateMessage):
            try checkApplication(privateMessage, in: group, now: now)
        case .publicMessage(let publicMessage):
            try acceptHandshake(publicMessage, send, leaf: senderLeaf, group: &group, append: &append, now: now)
        case .welcome, .groupInfo, .keyPackage:
            throw ErrorBody(.invalidMessage, "Only PublicMessage and PrivateMessage can be sent to a group.")
        }

        let seq = try storage.append(append)
        group.record.lastSeq = seq
        if append.newState != nil { group.record.stateSeq = seq }
        group.storedBytes += size
        userBytes[device.userID] = userTotal
        cache[group.record.id] = group
        metrics.accepted.increment()
        logger.debug(
            "message accepted",
            metadata: [
                "group": "\(group.record.name)", "seq": "\(seq)", "size": "\(send.message.count)",
                "kind": "\(append.newState == nil ? "application or proposal" : "commit")",
            ]
        )
        fanOut(append, seq: seq, group: group, id: send.id, sender: device, to: recipients)
        return seq
    }

    /// Storage quotas per group and per sending user (finding 13); returns the user's new total.
    private func checkQuota(_ group: CachedGroup, user: Int64, adding size: Int64) throws -> Int64 {
        let current: Int64
        if let known = userBytes[user] {
            current = known
        } else {
            current = try storage.storedBytes(userID: user)
            userBytes[user] = current
        }
        let (userTotal, userOverflow) = current.addingReportingOverflow(size)
        let (groupTotal, groupOverflow) = group.storedBytes.addingReportingOverflow(size)
        guard !userOverflow, userTotal <= Int64(configuration.maxStoredBytesPerUser) else {
            throw ErrorBody(
                .quotaExceeded,
                "Your account stores as much as this server allows; wait until your messages are read."
            )
        }
        guard !groupOverflow, groupTotal <= Int64(configuration.maxStoredBytesPerGroup) else {
            throw ErrorBody(
                .quotaExceeded,
                "This group stores as much as this server allows; wait until members catch up."
            )
        }
        return userTotal
    }

    /// An application message: opaque to the server, but its group and epoch must be current
    /// (or the previous epoch, briefly after a commit).
    private func checkApplication(_ message: PrivateMessage, in group: CachedGroup, now: UInt64) throws {
        guard message.contentType == .application else {
            throw ErrorBody(
                .invalidMessage,
                "Proposals and commits must be sent as PublicMessage so the server can check them."
            )
        }
        guard message.groupID == group.view.groupID else {
            throw ErrorBody(.invalidMessage, "The message is for another group.")
        }
        let current = group.view.epoch
        // The epoch is from the wire and may be anything, 2^64-1 included (finding 2): compare, never add.
        let inGrace = current > 0 && message.epoch == current - 1 && now <= group.previousEpochUntil
        guard message.epoch == current || inGrace else { throw ErrorBody(.wrongEpoch, epoch: current) }
    }

    /// A proposal or commit, checked by the public view; a commit moves the group to its next epoch.
    private func acceptHandshake(
        _ message: PublicMessage,
        _ send: ClientFrame.Send,
        leaf senderLeaf: LeafIndex,
        group: inout CachedGroup,
        append: inout LogAppend,
        now: UInt64
    ) throws {
        guard case .member(let leaf) = message.content.sender, leaf == senderLeaf else {
            throw ErrorBody(.invalidMessage, "A device may only submit handshake messages it signed itself.")
        }
        try checkLeafIndices(message.content.body, in: group.view)
        if case .proposal = message.content.body {
            // The server's own bound, before the view does any work (finding 8).
            guard group.pendingProposals < configuration.maxProposalsPerEpoch,
                group.pendingProposalBytes + send.message.count <= configuration.maxProposalBytesPerEpoch
            else {
                throw ErrorBody(.tooManyProposals)
            }
        }
        var view = group.view
        switch try process(.publicMessage(message), in: &view) {
        case .proposal:
            // Proposals are not written into the stored state: on restart they are re-derived from the log.
            append.isProposal = true
            group.pendingProposals += 1
            group.pendingProposalBytes += send.message.count
        case .commit:
            guard view.members.count <= configuration.maxMembers else { throw ErrorBody(.tooManyMembers) }
            let newDevices = try deviceMap(view)
            // Who joined and who left comes from the rosters before and after, never from
            // indices in the message (finding 10): a removed device always stops receiving.
            let before = group.memberDevices
            let after = Set(newDevices.values)
            let joined = after.subtracting(before)
            append.leftDevices = before.subtracting(after).sorted()
            append.joinedDevices = joined.sorted()
            append.welcomes = try welcomes(send.welcome, for: joined, commit: message.content.body, suite: view.suite)
            append.newState = try view.serialized()
            group.devices = newDevices
            let (until, overflow) = now.addingReportingOverflow(graceMilliseconds)
            group.previousEpochUntil = overflow ? .max : until
            group.pendingProposals = 0
            group.pendingProposalBytes = 0
        }
        group.view = view
    }

    /// Runs the public view on a handshake message, mapping its errors to the wire's.
    private func process(_ message: MLSMessage, in view: inout PublicGroup) throws -> PublicGroupEvent {
        do {
            return try view.process(message)
        } catch MLSError.wrongEpoch(_, let current) {
            throw ErrorBody(.wrongEpoch, epoch: current)
        } catch MLSError.rejectedByPolicy(let rejection) {
            throw ParleyPolicyError.errorBody(for: rejection)
        } catch let error as ErrorBody {
            throw error
        } catch {
            throw ErrorBody(.invalidMessage, "The server rejected the message: \(error).")
        }
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
            throw ErrorBody(.invalidMessage, "A Remove names \(leaf), outside the group's tree.")
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
    )
        throws -> [(deviceID: Int64, data: [UInt8])]
    {
        guard !joined.isEmpty else { return [] }
        guard let data, data.count <= configuration.maxFrameBytes,
            case .welcome(let welcome) = try? MLSMessage(tlsEncoded: [UInt8](data))
        else {
            throw ErrorBody(.invalidMessage, "A commit that adds members must come with their Welcome.")
        }
        if case .commit(let body) = commit {
            for case .proposal(.add(let keyPackage)) in body.proposals {
                guard let owner = try storage.keyPackageOwner(reference: keyPackage.reference(suite)),
                    joined.contains(owner)
                else {
                    throw ErrorBody(.invalidMessage, "An Add carries a KeyPackage the added device did not upload.")
                }
            }
        }
        var recipients = Set<Int64>()
        for entry in welcome.secrets {
            guard let owner = try storage.keyPackageOwner(reference: entry.newMember), joined.contains(owner),
                recipients.insert(owner).inserted
            else {
                throw ErrorBody(.invalidMessage, "The Welcome is addressed to a key package of no added device.")
            }
        }
        guard recipients == joined else {
            throw ErrorBody(.invalidMessage, "The Welcome does not cover every added device.")
        }
        return recipients.sorted().map { ($0, [UInt8](data)) }
    }

    /// Enqueues the accepted message for every member device (the sender's copy carries its id)
    /// and the Welcome for every added one.
    private func fanOut(
        _ append: LogAppend,
        seq: UInt64,
        group: CachedGroup,
        id: String,
        sender: DeviceRecord,
        to recipients: Set<Int64>
    ) {
        let name = group.record.name
        let frame = ServerFrame.Message(
            group: name,
            seq: seq,
            time: append.time,
            sender: sender.userName,
            message: Data(append.data)
        )
        for recipient in recipients {
            var copy = frame
            if recipient == sender.id { copy.id = id }
            hub.send(.message(groupID: group.record.id, copy), to: recipient)
            metrics.deliveries.increment()
        }
        for welcome in append.welcomes {
            let welcomeFrame = ServerFrame.WelcomeFrame(
                group: name,
                seq: seq,
                time: append.time,
                welcome: Data(welcome.data)
            )
            hub.send(.welcome(groupID: group.record.id, welcomeFrame), to: welcome.deviceID)
        }
        for added in append.joinedDevices {
            logger.info("member added", metadata: ["group": "\(name)", "device": "\(added)"])
        }
        for removed in append.leftDevices {
            logger.info("member removed", metadata: ["group": "\(name)", "device": "\(removed)"])
        }
    }

    /// Acknowledgement from a device (finding 1): only for a group it is or was a member of,
    /// and only up to the last message meant for it; anything else is refused, not stored.
    func acknowledge(_ ack: ClientFrame.Ack, from device: DeviceRecord) throws {
        guard let group = try lookup(ack.group),
            let membership = try storage.membership(groupID: group.record.id, deviceID: device.id)
        else {
            throw ErrorBody(.notMember)
        }
        let last = membership.leftSeq ?? group.record.lastSeq
        guard ack.seq <= last else {
            throw ErrorBody(
                .malformedRequest,
                "The acknowledgement names seq \(ack.seq), beyond the last message (\(last)) for this device."
            )
        }
        try storage.acknowledge(deviceID: device.id, groupID: group.record.id, seq: ack.seq)
    }
}

/// A counting semaphore for async work: at most `permits` bodies run at once, at most
/// `maxWaiting` wait; beyond that the caller is told to slow down.
actor ConcurrencyLimit {
    private var available: Int
    private let maxWaiting: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(permits: Int, maxWaiting: Int) {
        available = permits
        self.maxWaiting = maxWaiting
    }

    /// Runs `body` (off this actor, on the global executor) once a permit is free.
    nonisolated func run<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
        try await acquire()
        defer { Task { await self.release() } }
        return try body()
    }

    private func acquire() async throws {
        if available > 0 {
            available -= 1
            return
        }
        guard waiters.count < maxWaiting else {
            throw ErrorBody(.rateLimited, "The server is busy; try again shortly.")
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
