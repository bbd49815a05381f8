import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// The sender's copy of its own message is a delivery like any other (issue 13 item 4), and a
/// resend of an id already stored is answered with the stored message, never stored twice.
@Suite struct EchoAndResendTests {
    /// Alice and bob in group "g" (seq 1 is the commit adding bob), both connected, bob joined.
    private static func pair(on server: TestServer) async throws -> (TestUser, TestUser) {
        let alice = try await TestUser.ready("alice", on: server)
        let bob = try await TestUser.ready("bob", on: server)
        await alice.connect()
        await bob.connect()
        try await alice.createGroup("g")
        _ = try await alice.add(["bob"], to: "g")
        try bob.join(#require(await bob.nextWelcome()))
        return (alice, bob)
    }

    private static func send(_ message: MLSMessage, id: String, to group: String) throws -> ClientFrame {
        .send(.init(id: id, group: group, message: Data(try message.tlsEncoded())))
    }

    /// The answer to `id` on `socket`, skipping other frames.
    private static func answer(to id: String, on socket: TestSocket) async -> ServerFrame? {
        while let frame = await socket.next() {
            switch frame {
            case .message(let echo) where echo.id == id: return frame
            case .error(let error) where error.id == id: return frame
            default: continue
            }
        }
        return nil
    }

    private static func groupID(_ name: String, on server: TestServer) throws -> Int64 {
        try #require(try server.server.storage.group(named: name)).id
    }

    @Test func theSendersCopyIsReplayedUntilItIsAcknowledged() async throws {
        try await TestServer.with { server in
            let (alice, _) = try await Self.pair(on: server)
            let storage = server.server.storage
            let group = try Self.groupID("g", on: server)
            // The connection drops right after the send, before the echo is read.
            let socket = try #require(alice.socket)
            try socket.send(Self.send(try alice.groups["g"]!.encrypt(Array("hi".utf8)), id: "hello-1", to: "g"))
            let deadline = ContinuousClock.now + .seconds(10)
            while try storage.group(id: group)?.lastSeq != 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            socket.close()
            #expect(try storage.group(id: group)?.lastSeq == 2)
            // Storing it did not move the sender's cursor: the echo is still owed.
            let device = try #require(try storage.device(withSignatureKey: alice.signatureKeys.publicKey.bytes))
            #expect(try storage.membership(groupID: group, deviceID: device.id)?.ackedSeq == 0)

            let replay = await alice.connect().compactMap(\.accepted)
            #expect(replay.map(\.seq) == [1, 2])
            #expect(replay.last?.id == "hello-1")
            #expect(replay.first?.id != nil, "the commit alice sent carries its id too")

            // Acknowledged, it is not replayed again.
            try alice.socket!.send(.ack(.init(group: "g", seq: 2)))
            try await Task.sleep(for: .milliseconds(200))
            #expect(await alice.connect().compactMap(\.accepted).isEmpty)
        }
    }

    @Test func aResendOfAStoredIDGetsTheStoredEchoAndNoSecondEntry() async throws {
        try await TestServer.with { server in
            let (alice, bob) = try await Self.pair(on: server)
            let first = try alice.groups["g"]!.encrypt(Array("once".utf8))
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            let echo = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(echo.seq == 2)

            // The same id again, on the same connection and after a reconnect (a client that
            // lost the echo re-encrypts: the bytes differ, the id does not).
            let again = try alice.groups["g"]!.encrypt(Array("once".utf8))
            try alice.socket!.send(Self.send(again, id: "m-1", to: "g"))
            let repeated = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(repeated.seq == 2 && repeated.message == echo.message)
            await alice.connect()
            try alice.socket!.send(Self.send(again, id: "m-1", to: "g"))
            let afterReconnect = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(afterReconnect.seq == 2 && afterReconnect.message == echo.message)

            #expect(try server.server.storage.group(id: try Self.groupID("g", on: server))?.lastSeq == 2)
            let received = try #require(await bob.nextMessage(in: "g"))
            #expect(try bob.apply(received) == "once")
            #expect(await bob.nextMessage(in: "g", timeout: .milliseconds(500)) == nil, "bob got it once")
        }
    }

    /// A resend the checks refuse (bytes that do not decode, an epoch past its grace) is looked
    /// up then and answered with the stored echo, as one that passes them is on the writer's
    /// duplicate path: the id decides, never the bytes. Nothing is stored twice.
    @Test func aResendTheChecksRefuseGetsTheStoredEcho() async throws {
        try await TestServer.with { server in
            let (alice, _) = try await Self.pair(on: server)
            let first = try alice.groups["g"]!.encrypt(Array("once".utf8))
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            let echo = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)

            try alice.socket!.send(.send(.init(id: "m-1", group: "g", message: Data([0xFF, 0x00]))))
            let garbled = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(garbled.seq == echo.seq && garbled.message == echo.message)

            for _ in 0..<2 {
                let update = try alice.groups["g"]!.selfUpdate()
                let answer = try await alice.submit(update.message, to: "g")
                try alice.apply(try #require(answer.accepted))
            }
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            let stale = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(stale.seq == echo.seq && stale.message == echo.message)
            // Another id with the stale bytes is refused as it always was.
            try alice.socket!.send(Self.send(first, id: "m-2", to: "g"))
            let refused = try #require(await Self.answer(to: "m-2", on: alice.socket!))
            guard case .error(let error) = refused else { throw ErrorBody(.internalError, "m-2 was accepted") }
            #expect(error.error.code == .wrongEpoch)
            #expect(try server.server.storage.group(id: try Self.groupID("g", on: server))?.lastSeq == 4)
        }
    }

    /// Review s9: a resend on a new connection while its first copy, sent on the old one, waits
    /// for the writer (the database's write lock held) is told the first is still being stored,
    /// and stores nothing; the first copy's echo comes once it is durable, a later resend gets
    /// that echo again, and Bob receives the message once. (One connection's sends are handled
    /// one after another, so only a reconnect or a second node meets an id in flight.)
    @Test func aResendWhileTheFirstCopyIsInFlightIsNotStoredTwice() async throws {
        try await TestServer.with { server in
            let (alice, bob) = try await Self.pair(on: server)
            let first = try alice.groups["g"]!.encrypt(Array("once".utf8))
            let lock = try WriteLock(holding: server)
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            try await Task.sleep(for: .milliseconds(300))
            alice.socket?.close()
            alice.socket = TestSocket(server: server, token: alice.token)
            _ = await alice.socket!.replay()
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            try await Task.sleep(for: .milliseconds(300))
            lock.unlock()
            let echo = try #require(await Self.answer(to: "m-1", on: alice.socket!))
            guard case .message(let stored) = echo else { throw ErrorBody(.internalError, "no echo first: \(echo)") }
            let second = try #require(await Self.answer(to: "m-1", on: alice.socket!))
            guard case .error(let refusal) = second else { throw ErrorBody(.internalError, "stored twice: \(second)") }
            #expect(refusal.error.code == .rateLimited)
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            let again = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            #expect(again.seq == stored.seq && again.message == stored.message)
            var received: [UInt64] = []
            while let frame = await bob.nextFrame(timeout: .seconds(2)) {
                if case .message(let message) = frame { received.append(message.seq) }
            }
            #expect(received == [stored.seq], "Bob receives the message once")
            #expect(try server.server.storage.group(id: try Self.groupID("g", on: server))?.lastSeq == stored.seq)
        }
    }

    /// Review s9: a resend that passes the checks reserves its bytes until the writer finds it a
    /// duplicate; they are given back then (five resends leave room for a second message), and
    /// a resend once the quota is spent still gets its echo.
    @Test func resendsCountNothingAgainstTheQuota() async throws {
        try await TestServer.with(configure: { $0.maxStoredBytesPerUser = 100_000 }) { server in
            let (alice, _) = try await Self.pair(on: server)
            let text = Array(String(repeating: "x", count: 40_000).utf8)
            let first = try alice.groups["g"]!.encrypt(text)
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            let echo = try #require(await Self.answer(to: "m-1", on: alice.socket!)?.accepted)
            for _ in 0..<5 {
                try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
                #expect(await Self.answer(to: "m-1", on: alice.socket!)?.accepted?.seq == echo.seq)
            }
            try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(text), id: "m-2", to: "g"))
            #expect(await Self.answer(to: "m-2", on: alice.socket!)?.accepted != nil, "the resends' bytes came back")
            try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(text), id: "m-3", to: "g"))
            #expect(await Self.answer(to: "m-3", on: alice.socket!)?.error?.code == .quotaExceeded)
            try alice.socket!.send(Self.send(first, id: "m-1", to: "g"))
            #expect(await Self.answer(to: "m-1", on: alice.socket!)?.accepted?.seq == echo.seq)
            #expect(try server.server.storage.group(id: try Self.groupID("g", on: server))?.lastSeq == 3)
        }
    }

    @Test func idsBelongToTheDeviceThatSentThem() async throws {
        try await TestServer.with { server in
            let (alice, bob) = try await Self.pair(on: server)
            try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(Array("alice's".utf8)), id: "x", to: "g"))
            let alices = try #require(await Self.answer(to: "x", on: alice.socket!)?.accepted)

            // Bob replays alice's id: his message is his own new entry, never alice's echo.
            _ = try bob.apply(#require(await bob.nextMessage(in: "g")))
            let bobs = try bob.groups["g"]!.encrypt(Array("bob's".utf8))
            try bob.socket!.send(Self.send(bobs, id: "x", to: "g"))
            let answer = try #require(await Self.answer(to: "x", on: bob.socket!)?.accepted)
            #expect(answer.seq == alices.seq + 1)
            #expect(answer.message == Data(try bobs.tlsEncoded()))
            #expect(answer.sender == "bob")

            // Alice's resend still answers with her own message.
            try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(Array("again".utf8)), id: "x", to: "g"))
            let resent = try #require(await Self.answer(to: "x", on: alice.socket!)?.accepted)
            #expect(resent.seq == alices.seq && resent.message == alices.message)

            // A stranger's device using the id learns nothing about the group.
            let mallory = try await TestUser.ready("mallory", on: server)
            await mallory.connect()
            try mallory.socket!.send(Self.send(try alice.groups["g"]!.encrypt(Array("?".utf8)), id: "x", to: "g"))
            #expect(await Self.answer(to: "x", on: mallory.socket!)?.error == ErrorBody(.notMember))
        }
    }

    @Test func clientIDsAreBounded() async throws {
        try await TestServer.with { server in
            let (alice, _) = try await Self.pair(on: server)
            for id in ["", String(repeating: "i", count: DeliveryService.maxClientIDBytes + 1)] {
                try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(Array("x".utf8)), id: id, to: "g"))
                let answer = await Self.answer(to: id, on: alice.socket!)
                #expect(answer?.error?.code == .malformedRequest)
            }
            let longest = String(repeating: "i", count: DeliveryService.maxClientIDBytes)
            try alice.socket!.send(Self.send(try alice.groups["g"]!.encrypt(Array("x".utf8)), id: longest, to: "g"))
            #expect(await Self.answer(to: longest, on: alice.socket!)?.accepted?.seq == 2)
        }
    }
}
