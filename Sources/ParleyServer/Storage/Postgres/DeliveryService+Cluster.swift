import Foundation
import ParleyProtocol
import ServiceLifecycle
import Synchronization

/// Several nodes, one database: what another node stored reaches this node's connected devices,
/// and this node's caches forget what another node changed.
extension DeliveryService {
    func clusterEvent(_ event: ClusterEvent) async {
        switch event {
        case .appended(let groupID, let seq, let kind, _, let count):
            do {
                guard let postgres = storage as? PostgresStorage, let record = try storage.group(id: groupID) else {
                    return
                }
                // A run of application messages or proposals changes no membership: the members
                // as of its first seq are those of every message of it.
                let first = seq - (count - 1)  // 1 ≤ count ≤ seq (ClusterEvent)
                let recipients = try postgres.recipients(groupID: groupID, seq: first)
                await shard(for: record.name).remoteAppend(
                    record,
                    seqs: first...seq,
                    kind: kind,
                    recipients: recipients
                )
            } catch {
                logger.warning("another node's message not fanned out", metadata: ["group": "\(groupID)"])
            }
        case .destroyed(let groupID):
            for shard in shards { await shard.forgetRemote(groupID: groupID) }
            writer.forget(group: groupID)
            tellDestroyed(groupID)
        case .sessionsEnded(let device):
            hub.close(deviceID: device)
            for shard in shards { await shard.forgetRemote(device: device) }
        case .missed:
            // Read again from storage on next use. Notifications were lost, so connected devices,
            // already told they are up to date, would miss messages of quiet groups: every
            // connection is closed, and each client reconnects and replays from its cursor.
            for shard in shards { await shard.forgetAll() }
            forgetStoredBytes()
            hub.closeAll()
        }
    }

    /// Another node destroyed the group: its members connected here are told now, as that node
    /// tells its own (each also finds the notice at its next replay).
    private func tellDestroyed(_ groupID: Int64) {
        do {
            guard let postgres = storage as? PostgresStorage else { return }
            for (device, notice) in try postgres.notices(ofDestroyedGroup: groupID) {
                hub.send(.frame(.groupDestroyed(.init(group: notice.group, notice: notice.notice))), to: device)
            }
        } catch {
            logger.warning("another node's group destruction not told", metadata: ["group": "\(groupID)"])
        }
    }
}

extension DeliveryShard {
    /// Another node stored messages (`seqs`, one kind; a commit alone): a handshake moved the
    /// group's state, so the cached copy is dropped and read again; the messages are read from
    /// storage and sent to this node's connections of `recipients`, the group's members as of
    /// the first seq (each connection keeps log order and fills gaps). Never the members as of
    /// reading the notification: a device another commit removed or added since must not get
    /// the messages, or miss them.
    func remoteAppend(
        _ record: GroupRecord,
        seqs: ClosedRange<UInt64>,
        kind: ClusterEvent.Kind,
        recipients: PostgresStorage.Recipients
    ) {
        let groupID = record.id
        let before = cache[groupID]
        if kind == .application {
            cache[groupID]?.record.lastSeq = max(before?.record.lastSeq ?? 0, seqs.upperBound)
        } else {
            cache.removeValue(forKey: groupID)
        }
        do {
            guard seqs.lowerBound > 0 else { return }
            let entries = try storage.messages(
                groupID: groupID,
                after: seqs.lowerBound - 1,
                through: seqs.upperBound,
                limit: Self.readLimit(seqs)
            )
            guard let last = entries.last, try lookup(record.name) != nil else { return }
            if kind == .commit {
                // As after a commit this node accepted: the previous epoch's application messages
                // in flight are still taken for the grace period.
                let (until, overflow) = last.time.addingReportingOverflow(graceMilliseconds)
                cache[groupID]?.previousEpochUntil = overflow ? .max : until
            }
            for entry in entries {
                let frame = ServerFrame.Message(
                    group: record.name,
                    seq: entry.seq,
                    time: entry.time,
                    sender: entry.sender,
                    message: Data(entry.data)
                )
                for device in recipients.members {
                    hub.send(.message(groupID: groupID, frame), to: device)
                }
            }
            guard kind == .commit, last.seq == seqs.upperBound else { return }
            try sendWelcomes(record, seq: last.seq, to: recipients.joined)
        } catch {
            logger.warning(
                "another node's message not fanned out",
                metadata: ["group": "\(groupID)", "seq": "\(seqs.upperBound)"]
            )
        }
    }

    /// How many rows a notified run names. Not `seqs.count`, which traps past Int.max: a
    /// payload's numbers are only checked for order (1 ≤ count ≤ seq).
    static func readLimit(_ seqs: ClosedRange<UInt64>) -> Int {
        let span = seqs.upperBound - seqs.lowerBound
        return span < UInt64(Int.max) ? Int(span) + 1 : Int.max
    }

    /// The Welcomes stored with the commit at `seq`, to the devices it may have added.
    private func sendWelcomes(_ record: GroupRecord, seq: UInt64, to devices: Set<Int64>) throws {
        for device in devices {
            for welcome in try storage.welcomes(forDevice: device)
            where welcome.groupID == record.id && welcome.seq == seq {
                let frame = ServerFrame.WelcomeFrame(
                    group: record.name,
                    seq: seq,
                    time: welcome.time,
                    welcome: Data(welcome.data)
                )
                hub.send(.welcome(groupID: record.id, frame), to: device)
            }
        }
    }

    func forgetRemote(groupID: Int64) {
        cache.removeValue(forKey: groupID)
        lastTickets.removeValue(forKey: groupID)
    }

    func forgetRemote(device: Int64) {
        for (id, group) in cache where group.memberDevices.contains(device) { cache.removeValue(forKey: id) }
    }

    func forgetAll() {
        cache.removeAll()
    }
}

/// The service that listens for other nodes' notifications while the server runs (PostgreSQL only).
/// ``start(storage:delivery:)`` returns once LISTEN took effect, before the server serves.
struct ClusterEventsService: Service {
    let storage: PostgresStorage
    let delivery: DeliveryService
    private let events: AsyncStream<ClusterEvent>
    private let continuation: AsyncStream<ClusterEvent>.Continuation
    private let dropped: Dropped

    /// Notifications waiting for the delivery actor; past the bound, the node resynchronises.
    static let capacity = 65_536

    /// Whether a notification was dropped since the consumer last looked.
    final class Dropped: Sendable {
        let flag = Atomic<Bool>(false)
    }

    static func start(storage: PostgresStorage, delivery: DeliveryService) async throws -> ClusterEventsService {
        let (events, continuation) = AsyncStream.makeStream(
            of: ClusterEvent.self,
            bufferingPolicy: .bufferingOldest(Self.capacity)
        )
        let dropped = Dropped()
        do {
            try await storage.listen { event in
                if case .dropped = continuation.yield(event) { dropped.flag.store(true, ordering: .releasing) }
            }
        } catch {
            storage.stopListening()
            throw error
        }
        return ClusterEventsService(
            storage: storage,
            delivery: delivery,
            events: events,
            continuation: continuation,
            dropped: dropped
        )
    }

    func run() async throws {
        let (storage, continuation) = (storage, continuation)
        await withGracefulShutdownHandler {
            for await event in events {
                await delivery.clusterEvent(event)
                if dropped.flag.exchange(false, ordering: .acquiringAndReleasing) {
                    await delivery.clusterEvent(.missed)
                }
            }
        } onGracefulShutdown: {
            storage.stopListening()
            continuation.finish()
        }
    }
}
