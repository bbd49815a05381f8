import Foundation
import MLS
import ParleyProtocol

/// The server follows a group into its successor (`parley upgrade`; RFC 9420 §11.2, §12.1.5).
///
/// A commit carrying a ReInit closes the group: from then on every `send` to it is refused
/// (`groupClosed`), since §12.1.5 lets only the successor follow. The device that committed the
/// ReInit, and no other, then registers the successor: its epoch-1 GroupInfo (with the tree)
/// and the Welcome for every other member device. The server adopts it only when it is the one
/// the ReInit names (group ID, version, suite, extensions) and holds exactly the group's devices;
/// it becomes the group's state under the same name, and the Welcome is appended to the group's
/// log as an ordinary message, so every member device, offline or not, gets it right after the
/// ReInit commit and in order with the rest. A second successor is refused: the group is no
/// longer closed once one is adopted.
///
/// What closed a group survives restarts without a storage change: the state stored with the
/// ReInit commit carries the closure ahead of the public view (``storedState(_:closedBy:)``).
/// A ReInit must be committed by value, so the server sees it in the commit it checks.
extension DeliveryShard {
    /// The ReInit that closed a group and the device that committed it.
    struct Closure: Sendable {
        let reInit: ReInit
        let committer: Int64
    }

    /// A message of the group the successor replaced, from a member that has not seen the upgrade
    /// yet: `groupClosed` tells its client to send it again once it has joined the successor.
    static func isForPredecessor(_ submission: Submission) -> Bool {
        guard let predecessor = submission.group.predecessor else { return false }
        return switch submission.message {
        case .privateMessage(let message): message.groupID == predecessor
        case .publicMessage(let message): message.content.groupID == predecessor
        default: false
        }
    }

    /// The closure a commit makes: nil unless it carries a ReInit, which must be by value.
    static func closure(_ summary: CommitSummary, _ message: PublicMessage, by device: Int64) throws -> Closure? {
        guard let reInit = summary.reInit else { return nil }
        guard case .commit(let commit) = message.content.body,
            commit.proposals.contains(where: { if case .proposal(.reInit(reInit)) = $0 { true } else { false } })
        else { throw DeliveryError.invalidSuccessor(.reInitByReference) }
        return Closure(reInit: reInit, committer: device)
    }

    /// What marks a stored state as closed: bytes no PublicGroup state starts with (those begin
    /// with their format version, 1).
    static let closedStateMagic: [UInt8] = [0xFF, 0xFF] + Array("parley-closed".utf8)

    /// The group's state as stored: the public view, preceded by the closure while the group is
    /// closed, so a restart finds it closed whatever the log's pruning left.
    static func storedState(_ view: PublicGroup, closedBy closure: Closure?) throws -> [UInt8] {
        guard let closure else { return try view.serialized() }
        var writer = TLSWriter()
        writer.writeRaw(closedStateMagic)
        try writer.write(Proposal.reInit(closure.reInit))
        writer.write(UInt64(bitPattern: closure.committer))
        try writer.writeOpaque(view.serialized())
        return writer.bytes
    }

    /// The view and closure ``storedState(_:closedBy:)`` wrote.
    static func loadState(_ bytes: [UInt8], policy: GroupPolicy) throws -> (PublicGroup, Closure?) {
        guard bytes.starts(with: closedStateMagic) else {
            return (try PublicGroup(serialized: bytes, policy: policy), nil)
        }
        var reader = TLSReader(Array(bytes.dropFirst(closedStateMagic.count)))
        guard case .reInit(let reInit) = try reader.read(Proposal.self) else {
            throw MLSError.invalidState("a closed group's state names no ReInit")
        }
        let committer = Int64(bitPattern: try reader.read(UInt64.self))
        let view = try PublicGroup(serialized: try reader.readOpaque(), policy: policy)
        try reader.finish()
        return (view, Closure(reInit: reInit, committer: committer))
    }

    /// Registers the successor of a group a ReInit closed; returns the seq of its Welcome in the
    /// log. A retry with the same id gets the seq stored the first time. The GroupInfo is parsed
    /// off the actor, after a size check, as a creation's is.
    nonisolated func registerSuccessor(
        _ request: API.Successor,
        of name: String,
        by device: DeviceRecord
    ) async throws -> UInt64 {
        guard request.groupInfo.count <= configuration.maxFrameBytes,
            request.welcome.count <= configuration.maxFrameBytes
        else { throw DeliveryError.tooLarge }
        guard (1...DeliveryService.maxClientIDBytes).contains(request.id.utf8.count) else {
            throw DeliveryError.invalidClientID
        }
        if let seq = try await earlierSuccessor(request.id, of: name, by: device) { return seq }
        let (policy, bytes) = (policy, [UInt8](request.groupInfo))
        let parsed = try await shared.parsing.run { () throws -> (PublicGroup, LeafIndex) in
            guard case .groupInfo(let info)? = try? MLSMessage(tlsEncoded: bytes),
                let view = try? PublicGroup(groupInfo: info, policy: policy)
            else { throw DeliveryError.invalidSuccessor(.undecodable) }
            return (view, info.signer)
        }
        return try await adoptSuccessor(parsed.0, signer: parsed.1, request, of: name, by: device)
    }

    /// The seq of the successor this device already registered under `id`; nil if none, when the
    /// group is closed by this device's ReInit (checked before any parsing: no one else can make
    /// the server parse a successor).
    private func earlierSuccessor(_ id: String, of name: String, by device: DeviceRecord) throws -> UInt64? {
        guard let group = try lookup(name), group.memberDevices.contains(device.id) else {
            throw DeliveryError.notMember
        }
        if let earlier = try storage.message(groupID: group.record.id, senderDevice: device.id, clientID: id) {
            return earlier.seq
        }
        guard let closure = group.closedBy else { throw DeliveryError.invalidSuccessor(.notClosed) }
        guard closure.committer == device.id else { throw DeliveryError.invalidSuccessor(.notCommitter) }
        return nil
    }

    private func adoptSuccessor(
        _ view: PublicGroup,
        signer: LeafIndex,
        _ request: API.Successor,
        of name: String,
        by device: DeviceRecord
    ) async throws -> UInt64 {
        if let seq = try earlierSuccessor(request.id, of: name, by: device) { return seq }
        guard let group = try lookup(name), let closure = group.closedBy else {
            throw DeliveryError.invalidSuccessor(.notClosed)
        }
        guard closure.committer == device.id else { throw DeliveryError.invalidSuccessor(.notCommitter) }
        let reInit = closure.reInit
        let context = view.context
        let devices = try deviceMap(view)
        guard context.groupID == reInit.groupID, context.version == reInit.version,
            context.cipherSuite == reInit.cipherSuite, context.extensions == reInit.extensions, context.epoch == 1,
            devices[signer] == device.id
        else { throw DeliveryError.invalidSuccessor(.wrongParameters) }
        // Every leaf a registered device of the group, each device once, none missing.
        guard devices.count == view.members.count, Set(devices.values).count == devices.count,
            Set(devices.values) == group.memberDevices
        else { throw DeliveryError.invalidSuccessor(.wrongMembers) }
        try checkWelcome(request.welcome, for: group.memberDevices.subtracting([device.id]), suite: view.suite)
        return try await store(view, devices: devices, signer: signer, request, in: group, by: device)
    }

    /// The Welcome names one KeyPackage of each other member device, which that device uploaded.
    private func checkWelcome(_ data: Data, for devices: Set<Int64>, suite: CipherSuiteProvider) throws {
        guard case .welcome(let welcome)? = try? MLSMessage(tlsEncoded: [UInt8](data)),
            welcome.cipherSuite == suite.suite
        else { throw DeliveryError.invalidSuccessor(.badWelcome) }
        var recipients = Set<Int64>()
        for entry in welcome.secrets {
            guard let owner = try storage.keyPackageOwner(reference: entry.newMember), devices.contains(owner),
                recipients.insert(owner).inserted
            else { throw DeliveryError.invalidSuccessor(.badWelcome) }
        }
        guard recipients == devices else { throw DeliveryError.invalidSuccessor(.badWelcome) }
    }

    /// Appends the Welcome to the log with the successor as the group's new state, through the
    /// same writer, quotas and fan-out as every message.
    private func store(
        _ view: PublicGroup,
        devices: [LeafIndex: Int64],
        signer: LeafIndex,
        _ request: API.Successor,
        in group: CachedGroup,
        by device: DeviceRecord
    ) async throws -> UInt64 {
        var successor = group
        successor.view = view
        successor.devices = devices
        successor.closedBy = nil
        successor.predecessor = group.view.groupID
        successor.previousEpochUntil = 0
        successor.pendingProposals = 0
        successor.pendingProposalBytes = 0
        var append = LogAppend(
            groupID: group.record.id,
            time: Clock.milliseconds(),
            senderDevice: device.id,
            data: [UInt8](request.welcome),
            newState: try view.serialized(),
            clientID: request.id
        )
        // Shared storage adopts it only while the group is still at its closed epoch (one
        // successor across nodes), then follows the successor's own epochs.
        append.epoch = group.view.epoch
        append.epochAfter = view.epoch
        let submission = Submission(
            send: ClientFrame.Send(id: request.id, group: group.record.name, message: request.welcome),
            device: device,
            message: try MLSMessage(tlsEncoded: [UInt8](request.welcome)),
            senderLeaf: signer,
            group: successor,
            recipients: group.memberDevices,
            append: append
        )
        try reserve(submission)
        let ticket: Ticket
        do {
            ticket = try enqueue(submission)
        } catch {
            storedBytes.released(submission.size, user: device.userID, group: group.record.id)
            throw error
        }
        logger.info("group upgraded", metadata: ["group": "\(group.record.name)", "by": "\(device.userName)"])
        return try await stored(submission, ticket)
    }
}

extension DeliveryService {
    /// ``DeliveryShard/registerSuccessor(_:of:by:)`` on the group's shard.
    func registerSuccessor(_ request: API.Successor, of name: String, by device: DeviceRecord) async throws -> UInt64 {
        guard Self.isPlausibleName(name) else { throw DeliveryError.notMember }
        return try await shard(for: name).registerSuccessor(request, of: name, by: device)
    }
}

/// Why a successor is not adopted.
enum SuccessorProblem: Hashable, Sendable {
    case notClosed, notCommitter, reInitByReference, undecodable, wrongParameters, wrongMembers, badWelcome

    var errorBody: ErrorBody {
        switch self {
        case .notClosed: ErrorBody(.notPermitted, "The group was not closed by a ReInit, or has its successor.")
        case .notCommitter:
            ErrorBody(.notPermitted, "Only the device that committed the ReInit registers its successor.")
        case .reInitByReference: ErrorBody(.invalidMessage, "A ReInit must be committed by value.")
        case .undecodable: ErrorBody(.invalidGroupInfo, "The successor's group info is not a valid GroupInfo.")
        case .wrongParameters:
            ErrorBody(.invalidGroupInfo, "The successor is not the group the ReInit names, at epoch 1, signed by you.")
        case .wrongMembers: ErrorBody(.invalidGroupInfo, "The successor must hold exactly the group's devices.")
        case .badWelcome:
            ErrorBody(.invalidMessage, "The Welcome must be addressed to one KeyPackage of every other member device.")
        }
    }
}
