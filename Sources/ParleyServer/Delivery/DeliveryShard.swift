import Foundation
import Logging
import MLS
import ParleyProtocol

/// One shard of the delivery service (RFC 9750 §5): orders its groups' messages, checks
/// every handshake message with MLS's secret-free `PublicGroup`, stores
/// before acknowledging, and fans out to member devices.
///
/// ``DeliveryService`` routes each group, by name, to one of several shards (issue 15), so
/// the groups of different shards are checked in parallel, and one group's order is kept by
/// its one shard. Storing is the ``LogWriter``'s, on its own thread, shared by all shards,
/// which commits many messages per fsync (group commit) while the shards check the next
/// ones. A group's cached state moves ahead of storage by the messages in flight and is read
/// again from storage when one of them is refused. Work whose cost an attacker chooses
/// (parsing a creation GroupInfo and its tree) runs outside the actor, with
/// bounded concurrency, after a size check.
///
/// Non-members get `notMember` for every group route and frame, whether or not the
/// group exists, so names cannot be probed (finding 18). Creation is the exception
/// names being global: a taken name answers `groupNameInUse`.
actor DeliveryShard {
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
        /// Which load of the group this is: messages checked against a load that had one of
        /// them refused by storage are refused too (``LogWriter``).
        var incarnation: UInt64 = 0
        /// The ReInit commit that closed the group, until its successor is adopted (+Successor).
        var closedBy: Closure?
        /// The group ID the successor replaced, while cached: its late messages get `groupClosed`.
        var predecessor: [UInt8]?

        var memberDevices: Set<Int64> { Set(devices.values) }
    }

    let storage: any ServerStorage
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    var cache: [Int64: CachedGroup] = [:]
    /// Group ids by name, so a submission finds its cached group without a database read. Keyed
    /// by the name's UTF-8 bytes, as storage compares them: Swift's `String ==` is canonical
    /// equivalence, and would let "e\u{301}" answer for "\u{E9}" (a lookalike group's hijack).
    private var idsByName: [[UInt8]: Int64] = [:]
    /// Sends waiting to be stored, by group, device and client id: a resend of one waits for its echo.
    var inFlight: Set<InFlightID> = []
    /// The ticket of each group's last queued message, until it is settled: a refusal waits for
    /// it, so it never overtakes an accepted message that is not yet durable (review s5 M1).
    var lastTickets: [Int64: Ticket] = [:]
    /// What every shard shares: the writer, the per-device limits, the quotas.
    let shared: DeliveryService.Shared
    var writer: LogWriter { shared.writer }
    var storedBytes: StoredBytes { shared.storedBytes }
    let graceMilliseconds: UInt64

    init(
        storage: any ServerStorage,
        hub: ConnectionHub,
        configuration: ServerConfiguration,
        metrics: ServerMetrics,
        logger: Logger,
        shared: DeliveryService.Shared
    ) {
        self.storage = storage
        self.hub = hub
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.shared = shared
        let (grace, overflow) = UInt64(max(0, configuration.epochGraceSeconds)).multipliedReportingOverflow(by: 1000)
        graceMilliseconds = overflow ? .max : grace
    }

    /// The group policy the server enforces: Parley's admin rule, and
    /// credentials that name a registered user on one of that user's devices.
    nonisolated var policy: GroupPolicy {
        ParleyGroupPolicy.groupPolicy(
            credentialValidator: RegisteredDevices(storage: storage),
            deviceDirectory: ListedDevices(storage: storage)
        )
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
        guard try shared.creationLimiter.allow("device:\(device.id)") else {
            throw ErrorBody(.rateLimited, "This device created too many groups recently; wait and try again.")
        }
        let (policy, groupInfo) = (policy, [UInt8](request.groupInfo))
        let view = try await shared.parsing.run { try Self.creationView(groupInfo, creator: device, policy: policy) }
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
        var cached = CachedGroup(record: stored, view: view, devices: [LeafIndex(0): device.id])
        cached.incarnation = shared.nextIncarnation()
        storedBytes.learn(.group(id), stored: 0, generation: storedBytes.known(.group(id)).generation)
        cache[id] = cached
        idsByName[Array(name.utf8)] = id
        logger.info("group created", metadata: ["group": "\(name)", "creator": "\(device.userName)"])
        metrics.groupsCreated.increment()
        return try describe(cached)
    }

    /// The group, or nil when there is none by that name. New names are NFC (``GroupName``), so
    /// a name typed decomposed (as macOS input does) is looked up by its exact bytes, then by its
    /// NFC form, which names at most one group. Only stored names are cached.
    func lookup(_ name: String) throws -> CachedGroup? {
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

    /// The id of a cached group by name, without reading storage.
    func cachedID(named name: String) -> Int64? {
        idsByName[Array(name.utf8)] ?? idsByName[Array(name.precomposedStringWithCanonicalMapping.utf8)]
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
        let (view, closure) = try Self.loadState(record.state, policy: policy)
        var cached = CachedGroup(record: record, view: view, devices: try deviceMap(view))
        cached.closedBy = closure
        try replayProposals(into: &cached)
        cached.incarnation = shared.nextIncarnation()
        cache[record.id] = cached
        return cached
    }

    /// A device's group as a member sees it (for the list of its groups); nil once destroyed.
    /// The record is read inside this shard's turn: a record read before the turn can predate a
    /// commit this shard stored meanwhile, and caching it would let a second commit of that
    /// epoch in (review s6: a member forking the log through the group list).
    func describe(groupID: Int64) throws -> API.Group? {
        if let cached = cache[groupID] { return try describe(cached) }
        guard let record = try storage.group(id: groupID) else { return nil }
        return try describe(try load(record))
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

    func deviceMap(_ view: PublicGroup) throws -> [LeafIndex: Int64] {
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

    /// Destroys a group: only an admin may; members are told, the log is deleted. `notice`
    /// is the seq of the admin's signed destroy message: it is kept and handed to every member
    /// with the news, so one offline now can verify the destroy when it returns. Only a
    /// message this device sent qualifies; members check the rest (it must be an admin's
    /// `destroy_group` in their epoch).
    func destroy(name: String, by device: DeviceRecord, notice: UInt64? = nil) throws {
        let group = try group(named: name, for: device)
        guard try ParleyGroupPolicy.admins(in: group.view.context.extensions).contains(device.userName) else {
            throw ErrorBody(.notPermitted)
        }
        let members = Array(group.memberDevices)
        let message = try notice.flatMap { seq -> Data? in
            guard seq > 0 else { return nil }
            let entry = try storage.messages(groupID: group.record.id, after: seq - 1, through: seq, limit: 1).first
            return entry.flatMap { $0.seq == seq && $0.senderDevice == device.id ? Data($0.data) : nil }
        }
        let limit = Self.maxDestroyNoticeBytes(groupIDBytes: group.view.groupID.count)
        if let message, message.count > limit {
            throw ErrorBody(
                .tooLarge,
                "A destroy notice is at most \(limit) bytes: an admin's destroy_group message with its history claim."
            )
        }
        try storage.destroyGroup(id: group.record.id, notify: members, notice: message)
        cache.removeValue(forKey: group.record.id)
        lastTickets.removeValue(forKey: group.record.id)
        writer.forget(group: group.record.id)
        storedBytes.forget(group: group.record.id)
        idsByName.removeValue(forKey: Array(name.utf8))
        for member in members {
            hub.send(.frame(.groupDestroyed(.init(group: name, notice: message))), to: member)
        }
        logger.info("group destroyed", metadata: ["group": "\(name)", "by": "\(device.userName)"])
    }

    /// The longest destroy notice kept (review s5 M3): an MLSMessage holding a PrivateMessage
    /// (RFC 9420 §6.3) of a `destroy_group` with the longest history claim as its authenticated
    /// data. Every vector's length is counted as 4 bytes, the longest variable-length prefix (§2.1.2).
    static func maxDestroyNoticeBytes(groupIDBytes: Int) -> Int {
        let header = 2 + 2  // version, wire_format
        let framing = (4 + groupIDBytes) + 8 + 1  // group_id, epoch, content_type
        let authenticatedData = 4 + HistoryClaim.maxEncodedBytes
        let senderData = 4 + 4 + 4 + 4 + 16  // length, leaf_index, generation, reuse_guard, AEAD tag
        // The content (version and type), the signature (ECDSA P-521 in DER, the longest of the
        // suites, is at most 139 bytes), zero padding to blocks of up to 256 bytes, the AEAD tag.
        let content = 4 + (4 + 2) + (4 + 139) + 255 + 16
        return header + framing + authenticatedData + senderData + content
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
