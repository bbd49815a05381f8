import Foundation
import Logging
import MLS
import ParleyProtocol

/// The delivery service (RFC 9750 §5): orders each group's messages, checks
/// every handshake message with MLS's secret-free `PublicGroup`, stores
/// before acknowledging, and fans out to member devices.
///
/// One actor serialises all groups' state changes; each change is one
/// SQLite transaction of a few hundred microseconds.
actor DeliveryService {
    struct CachedGroup {
        var record: GroupRecord
        var view: PublicGroup
        /// The device at each member leaf.
        var devices: [LeafIndex: Int64]
        /// Until when application messages of the previous epoch are accepted.
        var previousEpochUntil: UInt64 = 0
    }

    let storage: any ServerStorage
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    private var cache: [Int64: CachedGroup] = [:]
    /// Group ids by name, so a submission finds its cached group without a database read.
    private var idsByName: [String: Int64] = [:]
    private var senders: [Int64: RateLimiter] = [:]
    private let sendLimiter: RateLimiter

    init(storage: any ServerStorage, hub: ConnectionHub, configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger) {
        self.storage = storage
        self.hub = hub
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        sendLimiter = RateLimiter(capacity: configuration.messagesPerSecond * 4, perMinute: configuration.messagesPerSecond * 60)
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
                  device.userName == ParleyGroupPolicy.username(of: credential) else {
                throw ErrorBody(.invalidMessage, "a member's signature key is not a registered device of the user it names")
            }
        }
    }

    // MARK: Groups

    /// Registers a new group from the creator's epoch-0 GroupInfo.
    func createGroup(_ request: API.CreateGroup, by device: DeviceRecord) throws -> API.Group {
        guard !request.name.isEmpty, request.name.utf8.count <= 64, !request.name.contains("/") else {
            throw ErrorBody(.malformedRequest, "Group names are 1 to 64 characters without '/'.")
        }
        guard case .groupInfo(let info) = try? MLSMessage(tlsEncoded: [UInt8](request.groupInfo)) else {
            throw ErrorBody(.invalidGroupInfo, "The group info could not be decoded.")
        }
        let view: PublicGroup
        do {
            view = try PublicGroup(groupInfo: info, policy: policy)
        } catch {
            throw ErrorBody(.invalidGroupInfo, "The group info is invalid: \(error).")
        }
        let admins = (try? ParleyGroupPolicy.admins(in: view.context.extensions)) ?? []
        guard view.epoch == 0, view.members.count == 1, let creator = view.tree.leafNode(at: LeafIndex(0)),
              creator.signatureKey.bytes == device.signatureKey, admins == [device.userName] else {
            throw ErrorBody(.invalidGroupInfo, "A new group must have only its creator, at epoch 0, as its one admin.")
        }
        let record = GroupRecord(id: 0, name: request.name, mlsGroupID: view.groupID, state: try view.serialized(), lastSeq: 0, createdAt: Clock.milliseconds())
        let id: Int64
        do {
            id = try storage.createGroup(record, creatorDevice: device.id)
        } catch StorageError.conflict {
            throw ErrorBody(.groupNameInUse)
        }
        var cached = record
        cached.id = id
        cache[id] = CachedGroup(record: cached, view: view, devices: [LeafIndex(0): device.id])
        idsByName[request.name] = id
        logger.info("group created", metadata: ["group": "\(request.name)", "creator": "\(device.userName)"])
        metrics.groupsCreated.increment()
        return try describe(cache[id]!)
    }

    func group(named name: String) throws -> CachedGroup {
        if let id = idsByName[name], let cached = cache[id] { return cached }
        guard let record = try storage.group(named: name) else { throw ErrorBody(.groupNotFound) }
        idsByName[name] = record.id
        return try load(record)
    }

    private func load(_ record: GroupRecord) throws -> CachedGroup {
        if let cached = cache[record.id] { return cached }
        let view = try PublicGroup(serialized: record.state, policy: policy)
        let cached = CachedGroup(record: record, view: view, devices: try deviceMap(view))
        cache[record.id] = cached
        return cached
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
            name: group.record.name, epoch: group.view.epoch,
            members: Array(Set(group.view.members.compactMap { ParleyGroupPolicy.username(of: $0.credential) })).sorted(),
            admins: try ParleyGroupPolicy.admins(in: group.view.context.extensions), lastSeq: group.record.lastSeq)
    }

    func groups(of device: DeviceRecord) throws -> [API.Group] {
        try storage.groups(ofDevice: device.id).map { try describe(try load($0)) }
    }

    func ratchetTree(of name: String, for device: DeviceRecord) throws -> API.RatchetTree {
        let group = try group(named: name)
        guard group.devices.values.contains(device.id) || isInvited(device, to: group) else { throw ErrorBody(.notMember) }
        return API.RatchetTree(epoch: group.view.epoch, tree: Data(try group.view.tree.encoded()))
    }

    private func isInvited(_ device: DeviceRecord, to group: CachedGroup) -> Bool {
        (try? storage.welcomes(forDevice: device.id).contains { $0.groupID == group.record.id }) ?? false
    }

    /// Destroys a group: only an admin may; members are told, the log is deleted.
    func destroy(name: String, by device: DeviceRecord) throws {
        let group = try group(named: name)
        guard try ParleyGroupPolicy.admins(in: group.view.context.extensions).contains(device.userName),
              group.devices.values.contains(device.id) else { throw ErrorBody(.notPermitted) }
        let members = Array(Set(group.devices.values))
        try storage.destroyGroup(id: group.record.id, notify: members)
        cache.removeValue(forKey: group.record.id)
        idsByName.removeValue(forKey: name)
        for member in members { hub.send(.frame(.groupDestroyed(.init(group: name))), to: member) }
        logger.info("group destroyed", metadata: ["group": "\(name)", "by": "\(device.userName)"])
    }

    // MARK: Messages

    /// Accepts one MLS message into a group's log, or explains why not.
    /// Returns the seq it was stored under; the echo to the sender follows through the hub.
    @discardableResult
    func submit(_ send: ClientFrame.Send, from device: DeviceRecord) throws -> UInt64 {
        guard sendLimiter.allow("device:\(device.id)") else {
            metrics.rejected(.rateLimited)
            throw ErrorBody(.rateLimited)
        }
        guard send.message.count <= configuration.maxFrameBytes, (send.welcome?.count ?? 0) <= configuration.maxFrameBytes else {
            throw ErrorBody(.tooLarge)
        }
        var group = try group(named: send.group)
        guard let senderLeaf = group.devices.first(where: { $0.value == device.id })?.key else {
            metrics.rejected(.notMember)
            throw ErrorBody(.notMember)
        }
        let message: MLSMessage
        do {
            message = try MLSMessage(tlsEncoded: [UInt8](send.message))
        } catch {
            metrics.rejected(.invalidMessage)
            throw ErrorBody(.invalidMessage, "The message could not be decoded: \(error).")
        }
        let now = Clock.milliseconds()
        var append = LogAppend(groupID: group.record.id, time: now, senderDevice: device.id, data: [UInt8](send.message))
        let recipients = Set(group.devices.values)

        switch message {
        case .privateMessage(let privateMessage):
            guard privateMessage.contentType == .application else {
                throw ErrorBody(.invalidMessage, "Proposals and commits must be sent as PublicMessage so the server can check them.")
            }
            guard privateMessage.groupID == group.view.groupID else { throw ErrorBody(.invalidMessage, "The message is for another group.") }
            let current = group.view.epoch
            let inGrace = privateMessage.epoch + 1 == current && now <= group.previousEpochUntil
            guard privateMessage.epoch == current || inGrace else {
                metrics.rejected(.wrongEpoch)
                throw ErrorBody(.wrongEpoch, epoch: current)
            }
        case .publicMessage(let publicMessage):
            guard case .member(let leaf) = publicMessage.content.sender, leaf == senderLeaf else {
                throw ErrorBody(.invalidMessage, "A device may only submit handshake messages it signed itself.")
            }
            var view = group.view
            let event: PublicGroupEvent
            do {
                event = try view.process(message)
            } catch MLSError.wrongEpoch(_, let current) {
                metrics.rejected(.wrongEpoch)
                throw ErrorBody(.wrongEpoch, epoch: current)
            } catch MLSError.rejectedByPolicy(let rejection) {
                let body = rejection.error as? ErrorBody ?? ErrorBody(.notPermitted, "Not permitted: \(rejection).")
                metrics.rejected(body.code)
                throw body
            } catch let error as ErrorBody {
                metrics.rejected(error.code)
                throw error
            } catch {
                metrics.rejected(.invalidMessage)
                throw ErrorBody(.invalidMessage, "The server rejected the message: \(error).")
            }
            if case .commit(let summary) = event {
                guard view.members.count <= configuration.maxMembers else { throw ErrorBody(.tooManyMembers) }
                let newDevices = try deviceMap(view)
                append.leftDevices = summary.removed.compactMap { group.devices[$0.index] }
                append.joinedDevices = summary.added.compactMap { newDevices[$0.index] }
                append.welcomes = try welcomes(for: summary, welcome: send.welcome, view: view, devices: newDevices)
                group.devices = newDevices
                group.previousEpochUntil = now + UInt64(configuration.epochGraceSeconds) * 1000
            }
            group.view = view
            append.newState = try view.serialized()
        case .welcome, .groupInfo, .keyPackage:
            throw ErrorBody(.invalidMessage, "Only PublicMessage and PrivateMessage can be sent to a group.")
        }

        let seq = try storage.append(append)
        group.record.lastSeq = seq
        cache[group.record.id] = group
        metrics.accepted.increment()
        logger.debug("message accepted", metadata: [
            "group": "\(group.record.name)", "seq": "\(seq)", "size": "\(send.message.count)",
            "kind": "\(append.newState == nil ? "application" : "handshake")",
        ])
        let frame = ServerFrame.Message(group: group.record.name, seq: seq, time: now, sender: device.userName, message: send.message)
        for recipient in recipients {
            var copy = frame
            if recipient == device.id { copy.id = send.id }
            hub.send(.message(groupID: group.record.id, copy), to: recipient)
            metrics.deliveries.increment()
        }
        for welcome in append.welcomes {
            hub.send(.welcome(groupID: group.record.id, .init(group: group.record.name, seq: seq, time: now, welcome: Data(welcome.data))), to: welcome.deviceID)
        }
        for added in append.joinedDevices { logger.info("member added", metadata: ["group": "\(group.record.name)", "device": "\(added)"]) }
        for removed in append.leftDevices { logger.info("member removed", metadata: ["group": "\(group.record.name)", "device": "\(removed)"]) }
        return seq
    }

    /// The Welcome recipients of a commit that adds members: every new device
    /// must be named in the Welcome, by the reference of its KeyPackage.
    private func welcomes(for summary: CommitSummary, welcome data: Data?, view: PublicGroup, devices: [LeafIndex: Int64]) throws -> [(deviceID: Int64, data: [UInt8])] {
        guard !summary.added.isEmpty else { return [] }
        guard let data, case .welcome(let welcome) = try? MLSMessage(tlsEncoded: [UInt8](data)) else {
            throw ErrorBody(.invalidMessage, "A commit that adds members must come with their Welcome.")
        }
        var recipients: [(deviceID: Int64, data: [UInt8])] = []
        for entry in welcome.secrets {
            guard let owner = try storage.keyPackageOwner(reference: entry.newMember), devices.values.contains(owner) else {
                throw ErrorBody(.invalidMessage, "The Welcome is addressed to a key package of no added device.")
            }
            recipients.append((owner, [UInt8](data)))
        }
        guard Set(recipients.map(\.deviceID)) == Set(summary.added.compactMap { devices[$0.index] }) else {
            throw ErrorBody(.invalidMessage, "The Welcome does not cover every added device.")
        }
        return recipients
    }

    /// Acknowledgement from a device.
    func acknowledge(_ ack: ClientFrame.Ack, from device: DeviceRecord) throws {
        try storage.acknowledge(deviceID: device.id, groupID: try group(named: ack.group).record.id, seq: ack.seq)
    }
}
