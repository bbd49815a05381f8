import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// Issue 15: the delivery service is sharded by group. Each group's order stays exact whatever
/// the shards do in parallel, the quotas count sends still queued in the log writer (review s5
/// L2), and acknowledgements are stored by the writer, where a bad one refuses only itself.
@Suite(.serialized) struct DeliveryShardTests {
    /// Alice and Bob send at once into four groups on different shards, without waiting for
    /// answers; Carol must receive each group's messages in one gap-free order that keeps each
    /// sender's own order, and decrypt every one of them in that order.
    @Test func eachGroupKeepsOneExactOrderUnderConcurrentSendersInSeveralGroups() async throws {
        try await TestServer.with { server in
            let names = ["g0", "g1", "g2", "g3"]
            let shards = Set(names.map { ObjectIdentifier(server.server.delivery.shard(for: $0)) })
            #expect(shards.count >= 2, "the groups are spread over shards")
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server, keyPackages: 5)
            let carol = try await TestUser.ready("carol", on: server, keyPackages: 5)
            for user in [alice, bob, carol] { await user.connect() }
            for name in names {
                try await alice.createGroup(name)
                #expect(try await alice.add(["bob", "carol"], to: name).accepted != nil)
                for user in [bob, carol] { try user.join(#require(await user.nextWelcome())) }
            }
            let perSender = 15
            for index in 0..<perSender {
                for name in names {
                    for user in [alice, bob] {
                        let message = try user.groups[name]!.encrypt(Array("\(user.name) \(index)".utf8))
                        let send = ClientFrame.Send(
                            id: "\(user.name)-\(name)-\(index)",
                            group: name,
                            message: Data(try message.tlsEncoded())
                        )
                        try user.socket!.send(.send(send))
                    }
                }
            }
            var received: [String: [ServerFrame.Message]] = [:]
            let expected = names.count * perSender * 2
            var count = 0
            while count < expected, let frame = await carol.nextFrame(timeout: .seconds(60)) {
                guard case .message(let message) = frame else { continue }
                received[message.group, default: []].append(message)
                count += 1
            }
            for name in names {
                let messages = received[name] ?? []
                // Seq 1 is the commit that added Bob and Carol.
                #expect(messages.map(\.seq) == Array(2...UInt64(1 + 2 * perSender)), "\(name): one gap-free order")
                let texts = try messages.map { try carol.apply($0) ?? "" }
                for sender in ["alice", "bob"] {
                    let own = texts.filter { $0.hasPrefix(sender + " ") }
                    #expect(own == (0..<perSender).map { "\(sender) \($0)" }, "\(name): \(sender)'s order kept")
                }
            }
        }
    }

    /// A group's name has more than one spelling (its bytes, and their Unicode NFC form): both
    /// reach the one shard that holds the group. Two commits of one epoch, sent under the two
    /// spellings while the first is still being stored: exactly one is accepted.
    @Test func bothSpellingsOfAGroupNameAreOrderedByOneShard() async throws {
        try await TestServer.with { server in
            let composed = "caf\u{E9}"
            let decomposed = "cafe\u{301}"
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            for user in [alice, bob] { await user.connect() }
            try await alice.createGroup(composed)
            #expect(try await alice.add(["bob"], to: composed).accepted != nil)
            try bob.join(#require(await bob.nextWelcome()))
            bob.groups[decomposed] = bob.groups[composed]
            let lock = try WriteLock(holding: server)
            let aliceCommit = try alice.groups[composed]!.commit()
            let send = ClientFrame.Send(
                id: "alice-c",
                group: composed,
                message: Data(try aliceCommit.message.tlsEncoded())
            )
            try alice.socket!.send(.send(send))
            // A few seconds at most, by the clock: the lock must be let go well before the
            // server's 10 s busy timeout, or the writer gives up on Alice's commit.
            let deadline = ContinuousClock.now + .seconds(4)
            while ContinuousClock.now < deadline {
                if try await server.server.delivery.lookup(composed)?.view.epoch == 2 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(try await server.server.delivery.lookup(decomposed)?.view.epoch == 2, "one cached state")
            let bobCommit = try bob.groups[decomposed]!.commit()
            let bobSend = ClientFrame.Send(
                id: "bob-c",
                group: decomposed,
                message: Data(try bobCommit.message.tlsEncoded())
            )
            try bob.socket!.send(.send(bobSend))
            try await Task.sleep(for: .milliseconds(300))
            lock.unlock()
            #expect(await Self.answer(to: "alice-c", from: alice)?.accepted != nil)
            let bobAnswer = await Self.answer(to: "bob-c", from: bob)
            #expect(bobAnswer?.error?.code == .wrongEpoch, "Bob's commit of the same epoch is refused")
            let group = try #require(try server.server.storage.group(named: composed))
            let log = try server.server.storage.messages(groupID: group.id, after: 0, through: nil, limit: 10)
            #expect(log.count == 2, "the add, and Alice's commit only")
        }
    }

    /// Review s5 L2: sends still queued count against the group's quota, also after a recount
    /// (pruning re-reads what storage keeps, which does not hold them yet).
    @Test func theQuotaCountsSendsInFlightAcrossARecount() async throws {
        try await TestServer.with(configure: { $0.maxStoredBytesPerGroup = 100_000 }) { server in
            let (alice, bob, rest) = try await HostileMemberTests.aliceAndBob(on: server, also: ["carol", "dave"])
            let (carol, dave) = (rest[0], rest[1])
            let text = String(repeating: "q", count: 40_000)
            let lock = try WriteLock(holding: server)
            var answers: [(String, String)] = []
            for user in [alice, bob] {
                let message = try user.groups["g"]!.encrypt(Array(text.utf8))
                try user.socket!.send(
                    .send(.init(id: "\(user.name)-q", group: "g", message: Data(try message.tlsEncoded())))
                )
                answers.append((user.name, "\(user.name)-q"))
            }
            let group = try #require(try await server.server.delivery.lookup("g")).record.id
            for _ in 0..<2000 {
                if server.server.delivery.shared.storedBytes.account(.group(group))?.queued ?? 0 >= 80_000 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            // As after pruning: every count is taken again while both sends wait for the lock.
            server.server.delivery.forgetStoredBytes()
            for user in [carol, dave] {
                let message = try user.groups["g"]!.encrypt(Array(text.utf8))
                try user.socket!.send(
                    .send(.init(id: "\(user.name)-q", group: "g", message: Data(try message.tlsEncoded())))
                )
            }
            try await Task.sleep(for: .milliseconds(300))
            lock.unlock()
            for (user, id) in [(alice, "alice-q"), (bob, "bob-q")] {
                #expect(await Self.answer(to: id, from: user)?.accepted != nil, "\(user.name)'s send fits")
            }
            for (user, id) in [(carol, "carol-q"), (dave, "dave-q")] {
                #expect(await Self.answer(to: id, from: user)?.error?.code == .quotaExceeded, "\(user.name) is over")
            }
            #expect(try server.server.storage.storedBytes(groupID: group) <= 100_000)
            let account = try #require(server.server.delivery.shared.storedBytes.account(.group(group)))
            #expect(account.queued == 0)
            #expect(account.stored == (try server.server.storage.storedBytes(groupID: group)), "the count is exact")
        }
    }

    /// Acknowledgements queued together are stored in one transaction; a device acknowledging
    /// past its log, or in a group it never joined, is refused alone.
    @Test func aBadAcknowledgementInABatchRefusesOnlyItself() async throws {
        let fixture = try GroupCommitTests.Fixture(groups: 2)
        let (g0, g1) = (fixture.groups[0], fixture.groups[1])
        for group in [g0, g1] {
            for byte in UInt8(1)...3 { _ = try fixture.storage.append(fixture.append(group, byte)) }
        }
        let stranger = try fixture.storage.device(
            userID: try fixture.storage.createUser(name: "mallory", passwordHash: [1], salt: [2]),
            signatureKey: [9]
        )
        let writer = LogWriter(storage: fixture.storage)
        let acks: [LogAcknowledgement] = [
            .init(deviceID: fixture.device, groupName: "g0", seq: 2),
            .init(deviceID: fixture.device, groupName: "g1", seq: .max),
            .init(deviceID: stranger, groupName: "g0", seq: 1),
            .init(deviceID: fixture.device, groupName: "nope", seq: 1),
            .init(deviceID: fixture.device, groupName: "g1", seq: 3),
        ]
        let outcomes = Ticket()
        let results = ResultsBox(count: acks.count)
        for (index, ack) in acks.enumerated() {
            try writer.enqueue(LogWriter.Acknowledgement(ack: ack) { results.set(index, $0) })
        }
        writer.betweenTransactions { outcomes.complete(.success(0)) }
        writer.start()
        _ = try await outcomes.value
        let outcomesSeen = results.values.map { result -> String in
            switch result {
            case nil: "not run"
            case .success: "stored"
            case .failure(let error): (error as? AcknowledgementRefusal).map { "\($0)" } ?? "\(error)"
            }
        }
        #expect(outcomesSeen == ["stored", "beyondLog(last: 3)", "notMember", "notMember", "stored"])
        #expect(try fixture.storage.membership(groupID: g0, deviceID: fixture.device)?.ackedSeq == 2)
        #expect(try fixture.storage.membership(groupID: g1, deviceID: fixture.device)?.ackedSeq == 3)
        writer.stop()
    }

    /// The answer (echo or error) the server sent for the send with `id`.
    static func answer(to id: String, from user: TestUser) async -> ServerFrame? {
        while let frame = await user.nextFrame(timeout: .seconds(30)) {
            switch frame {
            case .message(let echo) where echo.id == id: return frame
            case .error(let error) where error.id == id: return frame
            default: continue
            }
        }
        return nil
    }
}

/// Results set from the writer's thread, read by the test.
final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Result<Void, any Error>?]

    init(count: Int) { stored = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<Void, any Error>) { lock.withLock { stored[index] = result } }
    var values: [Result<Void, any Error>?] { lock.withLock { stored } }
}
