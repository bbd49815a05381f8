import Foundation
import Logging
import ParleyProtocol
import Synchronization

/// The delivery service (RFC 9750 §5): routes each group to one of ``DeliveryShard/count``
/// shards by its name, so groups are checked in parallel while each group's messages keep one
/// order (issue 15: one actor for all groups was the bound). The shards share the log writer,
/// the per-device limits and the storage quotas. Acknowledgements go straight to the writer,
/// which checks and stores them in its own transactions: they never wait on a shard.
final class DeliveryService: Sendable {
    /// Client ids are chosen by clients (UUIDs in Parley's): bounded so the index stays small.
    static let maxClientIDBytes = 128
    /// Shards: several per core, so that one busy group (a large commit) holds up few others.
    static let shardCount = 16
    /// Longer than any spelling of a group name (64 bytes in NFC, ``GroupName``; a decomposed
    /// spelling is longer): such a name is no group's, and is not normalised (a hostile frame
    /// could make that cost milliseconds, on the log writer's thread for an ack).
    static let maxNameBytes = 256

    /// Whether `name` can be a group's: within ``maxNameBytes`` (checked first, so a long name
    /// is never normalised) and, composed, a valid ``GroupName``. A name with a NUL or another
    /// control character then never reaches a storage, where a text comparison could stop at
    /// the NUL and take "g\0" for "g".
    static func isPlausibleName(_ name: String) -> Bool {
        name.utf8.count <= maxNameBytes && GroupName.isValid(name.precomposedStringWithCanonicalMapping)
    }

    /// What the shards share.
    final class Shared: Sendable {
        let writer: LogWriter
        let sendLimiter: RateLimiter
        /// Group creations per device, kept in storage: every node shares the budget.
        let creationLimiter: SharedRateLimiter
        let storedBytes = StoredBytes()
        /// Creation GroupInfos are parsed and validated outside the shards, a few at a time.
        let parsing = ConcurrencyLimit(permits: 2, maxWaiting: 32)
        /// Loads of groups, numbered across shards: the writer refuses by incarnation.
        private let incarnations = Atomic<UInt64>(0)

        init(writer: LogWriter, storage: any ServerStorage, configuration: ServerConfiguration) {
            self.writer = writer
            sendLimiter = RateLimiter(
                capacity: configuration.messagesPerSecond * 4,
                perMinute: configuration.messagesPerSecond * 60
            )
            let creations = max(1, configuration.groupCreationsPerHour)
            creationLimiter = SharedRateLimiter(
                "group-creations",
                .perHour(capacity: creations, creations),
                storage: storage
            )
        }

        func nextIncarnation() -> UInt64 {
            incarnations.add(1, ordering: .relaxed).newValue
        }
    }

    let storage: any ServerStorage
    let hub: ConnectionHub
    let logger: Logger
    let shared: Shared
    let shards: [DeliveryShard]
    /// Each ack is a database write: bounded per device like sends.
    private let ackLimiter: RateLimiter

    var writer: LogWriter { shared.writer }

    init(
        storage: any ServerStorage,
        hub: ConnectionHub,
        configuration: ServerConfiguration,
        metrics: ServerMetrics,
        logger: Logger
    ) {
        self.storage = storage
        self.hub = hub
        self.logger = logger
        let writer = LogWriter(storage: storage)
        writer.start()
        let shared = Shared(writer: writer, storage: storage, configuration: configuration)
        self.shared = shared
        shards = (0..<Self.shardCount).map { _ in
            DeliveryShard(
                storage: storage,
                hub: hub,
                configuration: configuration,
                metrics: metrics,
                logger: logger,
                shared: shared
            )
        }
        ackLimiter = RateLimiter(
            capacity: configuration.acksPerSecond * 4,
            perMinute: configuration.acksPerSecond * 60
        )
    }

    /// The shard of a group name. Every spelling a lookup accepts for a group (its exact
    /// bytes, or their Unicode NFC form) hashes the NFC form, so all reach the one shard that
    /// caches the group. FNV-1a: stable, and cheap for names of at most 64 bytes.
    func shard(for name: String) -> DeliveryShard {
        guard name.utf8.count <= Self.maxNameBytes else { return shards[0] }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.precomposedStringWithCanonicalMapping.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return shards[Int(hash % UInt64(shards.count))]
    }

    // MARK: Groups and messages, each on its group's shard

    func createGroup(_ request: API.CreateGroup, by device: DeviceRecord) async throws -> API.Group {
        try await shard(for: request.name).createGroup(request, by: device)
    }

    func lookup(_ name: String) async throws -> DeliveryShard.CachedGroup? {
        try await shard(for: name).lookup(name)
    }

    func describe(named name: String, for device: DeviceRecord) async throws -> API.Group {
        try await shard(for: name).describe(named: name, for: device)
    }

    func groups(of device: DeviceRecord) async throws -> [API.Group] {
        var groups: [API.Group] = []
        for record in try storage.groups(ofDevice: device.id) {
            if let group = try await shard(for: record.name).describe(groupID: record.id) { groups.append(group) }
        }
        return groups
    }

    func ratchetTree(of name: String, for device: DeviceRecord) async throws -> API.RatchetTree {
        try await shard(for: name).ratchetTree(of: name, for: device)
    }

    func destroy(name: String, by device: DeviceRecord, notice: UInt64? = nil) async throws {
        try await shard(for: name).destroy(name: name, by: device, notice: notice)
    }

    @discardableResult
    func submit(_ send: ClientFrame.Send, from device: DeviceRecord) async throws -> UInt64 {
        guard Self.isPlausibleName(send.group) else { throw DeliveryError.notMember }
        return try await shard(for: send.group).submit(send, from: device)
    }

    // MARK: Acknowledgements, on the writer

    /// Queues a device's acknowledgement (finding 1) for the log writer, which stores it with
    /// others in one transaction, only for a group the device is or was a member of, and only
    /// up to the last message meant for it (checked against what is durable, so an ack of a
    /// message fanned out just now passes, review s5 L1). `refused` runs, on the writer's
    /// thread, with why it was not stored. At most `acks_per_second` per device (bursts of 4×).
    func acknowledge(
        _ ack: ClientFrame.Ack,
        from device: DeviceRecord,
        refused: @escaping @Sendable (any Error) -> Void
    ) throws {
        guard ackLimiter.allow("device:\(device.id)") else { throw DeliveryError.rateLimited }
        guard Self.isPlausibleName(ack.group) else { throw DeliveryError.notMember }
        let entry = LogWriter.Acknowledgement(
            ack: LogAcknowledgement(deviceID: device.id, groupName: ack.group, seq: ack.seq),
            done: { result in if case .failure(let error) = result { refused(Self.refusal(error, ack: ack)) } }
        )
        do {
            try writer.enqueue(entry)
        } catch {
            throw error == .full ? DeliveryError.busy : DeliveryError.notStored
        }
    }

    /// ``acknowledge(_:from:refused:)``, returning once the ack is stored or throwing why not.
    func acknowledge(_ ack: ClientFrame.Ack, from device: DeviceRecord) async throws {
        let outcome = Ticket()
        try acknowledge(ack, from: device) { outcome.complete(.failure($0)) }
        writer.betweenTransactions { outcome.complete(.success(0)) }
        _ = try await outcome.value
    }

    /// The refusal a device is told; a storage failure is logged, not described.
    private static func refusal(_ error: any Error, ack: ClientFrame.Ack) -> any Error {
        switch error {
        case AcknowledgementRefusal.notMember:
            ErrorBody(.notMember)
        case AcknowledgementRefusal.beyondLog(let last):
            ErrorBody(
                .malformedRequest,
                "The acknowledgement names seq \(ack.seq), beyond the last message (\(last)) for this device."
            )
        default:
            DeliveryError.notStored
        }
    }

    // MARK: Quotas

    /// Quotas count what storage keeps: after pruning, accounts are read again, those with
    /// sends in flight on the writer's thread between transactions (exact).
    func forgetStoredBytes() {
        let (storage, storedBytes) = (storage, shared.storedBytes)
        let busy = storedBytes.invalidate()
        guard !busy.isEmpty else { return }
        writer.betweenTransactions {
            for key in busy {
                let stored: Int64? =
                    switch key {
                    case .user(let id): try? storage.storedBytes(userID: id)
                    case .group(let id): try? storage.storedBytes(groupID: id)
                    }
                if let stored { storedBytes.recount(key, stored) }
            }
        }
    }
}
