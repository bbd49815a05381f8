import Foundation
import MLS
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyServer

/// Review s5, server findings: with group commit, a message is accepted before it is durable.
/// What a device is told (refusals, destroy notices, ack checks) must follow what is durable.
@Suite(.serialized) struct GroupCommitOrderTests {
    // MARK: M1

    /// Alice's commit is accepted but not yet durable; Bob's commit of the same epoch is refused.
    /// Bob must receive Alice's commit before the refusal: the client rebuilds on a refusal
    /// assuming it has by then processed what caused it.
    @Test func aRefusalNeverOvertakesTheInFlightMessageThatCausedIt() async throws {
        try await TestServer.with { server in
            let (alice, bob, _) = try await HostileMemberTests.aliceAndBob(on: server)
            let lock = try WriteLock(holding: server)
            let aliceCommit = try alice.groups["g"]!.commit()
            try alice.socket!.send(
                .send(.init(id: "alice-c", group: "g", message: Data(try aliceCommit.message.tlsEncoded())))
            )
            // The delivery actor has checked Alice's commit (the group moved to epoch 2) while
            // the writer still waits for the lock.
            for _ in 0..<2000 {
                if try await server.server.delivery.lookup("g")?.view.epoch == 2 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(try await server.server.delivery.lookup("g")?.view.epoch == 2)
            let bobCommit = try bob.groups["g"]!.commit()
            try bob.socket!.send(
                .send(.init(id: "bob-c", group: "g", message: Data(try bobCommit.message.tlsEncoded())))
            )
            // Long enough for an immediate refusal to reach Bob while Alice's commit waits.
            try await Task.sleep(for: .milliseconds(500))
            lock.unlock()
            var beforeRefusal: [ServerFrame.Message] = []
            var refusal: ServerFrame.ErrorFrame?
            while refusal == nil, let frame = await bob.nextFrame(timeout: .seconds(30)) {
                switch frame {
                case .message(let message): beforeRefusal.append(message)
                case .error(let error) where error.id == "bob-c": refusal = error
                default: continue
                }
            }
            #expect(refusal != nil)
            #expect(beforeRefusal.map(\.seq) == [2], "Alice's commit reaches Bob before his refusal")
        }
    }

    // MARK: M3

    /// The admin's destroy notice is kept once for the group, whatever the number of member
    /// devices, and only if it is no larger than a destroy_group message with its history claim.
    @Test func theDestroyNoticeIsStoredOnceAndBounded() async throws {
        try await TestServer.with { server in
            let (alice, bob, others) = try await HostileMemberTests.aliceAndBob(on: server, also: ["carol", "dave"])
            // An admin message of 64 KiB: stored once per member device before the fix.
            let sent = try await alice.sendText(String(repeating: "x", count: ApplicationContent.maxTextBytes), to: "g")
            let big = try #require(sent.accepted)
            await #expect(throws: ErrorBody.self) {
                try await server.request(.DELETE, "/v1/groups/g?notice=\(big.seq)", token: alice.token)
            }
            #expect(try server.server.storage.group(named: "g") != nil, "a refused destroy keeps the group")
            let destroy = try alice.groups["g"]!.encrypt(
                try ApplicationContent.destroyGroup.encoded(),
                authenticatedData: Self.longestClaim()
            )
            let notice = try #require(try await alice.submit(destroy, to: "g").accepted)
            for user in [bob] + others { user.socket?.close() }
            try await server.request(.DELETE, "/v1/groups/g?notice=\(notice.seq)", token: alice.token)
            let perDevice = try server.count("SELECT COUNT(*) AS n FROM notices WHERE message IS NOT NULL")
            let shared = try server.count("SELECT COUNT(*) AS n FROM destroy_notices")
            #expect(perDevice == 0, "no copy of the notice per member device")
            #expect(shared == 1, "one copy for the destroyed group")
            for user in [bob] + others {
                let replay = await user.connect()
                #expect(replay.contains(.groupDestroyed(.init(group: "g", notice: notice.message))), "\(user.name)")
            }
        }
    }

    /// The longest history claim a member can attach (both hashes at their longest).
    static func longestClaim() -> [UInt8] {
        let hash = [UInt8](repeating: 7, count: HistoryClaim.maxHashBytes)
        return HistoryClaim(
            epoch: 2,
            lastSeq: .max,
            hash: hash,
            senderIndex: .max,
            previousEpoch: .init(lastSeq: .max, hash: hash)
        ).encoded()
    }

    // MARK: L1

    /// A message is durable and fanned out before its sender's turn on the delivery actor
    /// records it: a recipient's ack for it is accepted in that window. The entry is queued
    /// to the writer directly, so the sender's turn never comes, as when the actor is busy.
    @Test func anAckForADurableMessageIsAcceptedBeforeItsSenderResumes() async throws {
        try await TestServer.with { server in
            let (_, bob, _) = try await HostileMemberTests.aliceAndBob(on: server)
            let delivery = server.server.delivery
            let group = try #require(try await delivery.lookup("g"))
            let storage = server.server.storage
            let sender = try #require(try storage.device(withSignatureKey: bob.signatureKeys.publicKey.bytes))
            let ticket = Ticket()
            try delivery.writer.enqueue(
                LogWriter.Entry(
                    append: LogAppend(groupID: group.record.id, time: 1, senderDevice: sender.id, data: [1]),
                    incarnation: group.incarnation,
                    onCommit: { _ in },
                    ticket: ticket
                )
            )
            let seq = try await ticket.value
            #expect(seq == 2)
            try await delivery.acknowledge(.init(group: "g", seq: seq), from: sender)
            let membership = try server.server.storage.membership(groupID: group.record.id, deviceID: sender.id)
            #expect(membership?.ackedSeq == seq)
        }
    }
}
