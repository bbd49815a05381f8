import Foundation
import HummingbirdWSClient
import Logging
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, delivery side: each test performs the attack through the real server
/// (loopback TLS + WebSocket) and asserts the clear outcome, then that the server
/// still serves everyone else.
@Suite(.serialized) struct HostileMemberTests {
    /// Alice (admin) and Bob in group "g", both connected, Bob joined.
    static func aliceAndBob(
        on server: TestServer,
        also others: [String] = []
    ) async throws -> (TestUser, TestUser, [TestUser]) {
        let alice = try await TestUser.ready("alice", on: server)
        let bob = try await TestUser.ready("bob", on: server)
        var rest: [TestUser] = []
        for name in others { rest.append(try await TestUser.ready(name, on: server)) }
        for user in [alice, bob] + rest { await user.connect() }
        try await alice.createGroup("g")
        #expect(try await alice.add(["bob"] + others, to: "g").accepted != nil)
        for user in [bob] + rest { try user.join(#require(await user.nextWelcome())) }
        return (alice, bob, rest)
    }

    /// The next error frame, skipping anything else.
    /// Every caller expects an error, so the generous wait costs nothing when the server answers;
    /// it only keeps a fully parallel suite on two loaded cores from reading a slow answer as none.
    static func nextError(_ user: TestUser, timeout: Duration = .seconds(60)) async -> ServerFrame.ErrorFrame? {
        while let frame = await user.nextFrame(timeout: timeout) {
            if case .error(let error) = frame { return error }
        }
        return nil
    }

    /// A message from `sender` reaches `receiver`, decrypted: the server still delivers.
    static func stillDelivers(from sender: TestUser, to receiver: TestUser, _ text: String) async throws {
        #expect(try await sender.sendText(text, to: "g").accepted != nil)
        let delivered = try #require(await receiver.nextMessage(in: "g"))
        #expect(try receiver.apply(delivered) == text)
    }

    // MARK: Finding 1

    @Test func acksBeyondTheLogOrFromNonMembersAreRefusedAndTheServerLives() async throws {
        try await TestServer.with { server in
            let (alice, bob, _) = try await Self.aliceAndBob(on: server)
            let mallory = try await TestUser.ready("mallory", on: server)
            await mallory.connect()
            let maximal = #"{"type":"ack","group":"g","seq":18446744073709551615}"#
            // A stranger: not a member, refused as for a group that does not exist.
            mallory.socket!.sendRaw(maximal)
            #expect(await Self.nextError(mallory)?.error.code == .notMember)
            mallory.socket!.sendRaw(#"{"type":"ack","group":"nope","seq":1}"#)
            #expect(await Self.nextError(mallory)?.error.code == .notMember)
            // A member: beyond the group's last message, refused and not stored.
            bob.socket!.sendRaw(maximal)
            let refused = await Self.nextError(bob)
            #expect(refused?.error.code == .malformedRequest && refused?.group == "g")
            bob.socket!.sendRaw(#"{"type":"ack","group":"g","seq":2}"#)
            #expect(await Self.nextError(bob)?.error.code == .malformedRequest)
            let group = try #require(try server.server.storage.group(named: "g"))
            let cursor = try #require(try server.server.storage.membership(groupID: group.id, deviceID: 2))
            #expect(cursor.ackedSeq == 1)
            // A member's ack of "g" followed by a NUL (or another control character) names no
            // group: refused, never matched to "g" by a storage's text comparison.
            for name in [#"g\u0000"#, #"g\u0000x"#, #"g\u0007"#] {
                bob.socket!.sendRaw(#"{"type":"ack","group":""# + name + #"","seq":1}"#)
                #expect(await Self.nextError(bob)?.error.code == .notMember, "\(name)")
            }
            // An ack within the log is kept; the server is alive and delivers.
            try bob.socket!.send(.ack(.init(group: "g", seq: 1)))
            try await Self.stillDelivers(from: alice, to: bob, "still here")
        }
    }

    // MARK: Finding 2

    @Test func aPrivateMessageAtTheLastEpochIsRefusedAndTheServerLives() async throws {
        try await TestServer.with { server in
            let (alice, bob, _) = try await Self.aliceAndBob(on: server)
            let groupID = alice.groups["g"]!.groupID
            for epoch in [UInt64.max, UInt64.max - 1, 2] {
                let forged = PrivateMessage(
                    groupID: groupID,
                    epoch: epoch,
                    contentType: .application,
                    authenticatedData: [],
                    encryptedSenderData: Array(repeating: 7, count: 32),
                    ciphertext: Array(repeating: 9, count: 64)
                )
                let answer = try await bob.submit(.privateMessage(forged), to: "g")
                #expect(answer.error == ErrorBody(.wrongEpoch, epoch: 1))
            }
            try await Self.stillDelivers(from: bob, to: alice, "the server lives")
        }
    }

    // MARK: Finding 10

    @Test func aRemovedDeviceReceivesNothingLaterAndWrappedLeavesAreRefused() async throws {
        try await TestServer.with { server in
            let (alice, bob, rest) = try await Self.aliceAndBob(on: server, also: ["carol"])
            let carol = rest[0]
            // Remove(2^31 + own leaf) would wrap onto Bob's real leaf: refused outright.
            let bobLeaf = bob.groups["g"]!.ownLeaf
            let wrapped = try bob.groups["g"]!.propose(.remove(removed: LeafIndex(1 << 31 + bobLeaf.rawValue)))
            #expect(try await bob.submit(wrapped, to: "g").error?.code == .invalidMessage)
            if var copy = alice.groups["g"],
                let commit = try? copy.removeMembers([LeafIndex(1 << 31 + bobLeaf.rawValue)])
            {
                // If the library lets the admin build such a commit at all, the server still refuses it.
                #expect(try await alice.submit(commit.message, to: "g").error?.code == .invalidMessage)
            }
            #expect(try server.server.storage.group(named: "g")?.lastSeq == 1)

            // A real removal: Bob gets the commit that removes him, then nothing more.
            let removal = try alice.groups["g"]!.removeMembers([bobLeaf])
            let echo = try #require(try await alice.submit(removal.message, to: "g").accepted)
            try alice.apply(echo)
            let last = try #require(await bob.nextMessage(in: "g"))
            #expect(last.seq == echo.seq)
            try carol.apply(#require(await carol.nextMessage(in: "g")))
            try await Self.stillDelivers(from: alice, to: carol, "after bob")
            #expect(await bob.nextMessage(in: "g", timeout: .seconds(1)) == nil)
            // Nor on reconnect: his replay ends at the commit that removed him.
            let replay = await bob.connect()
            #expect(replay.allSatisfy { $0.accepted.map { $0.seq <= echo.seq } ?? true })
            #expect(try await bob.sendText("let me in", to: "g").error?.code == .notMember)
        }
    }

    // MARK: Finding 7 and group creation

    /// A GroupInfo for a new group whose ratchet_tree has the creator's leaf and then `blanks` blank nodes.
    static func paddedGroupInfo(_ user: TestUser, blanks: Int) throws -> Data {
        let group = try Group.create(
            user.suite,
            groupID: Array(UUID().uuidString.utf8),
            credential: user.credential,
            signatureKeys: user.signatureKeys,
            extensions: [try ParleyGroupPolicy.adminsExtension([user.name])],
            policy: user.policy
        )
        var info = try group.groupInfo()
        var tree = TLSWriter()
        try tree.writeVector { inner in
            try inner.writeOptional(group.tree[NodeIndex(0)])
            for _ in 0..<blanks { inner.write(UInt8(0)) }
        }
        info.extensions = info.extensions.map {
            $0.extensionType == .ratchetTree ? Extension(extensionType: .ratchetTree, extensionData: tree.bytes) : $0
        }
        return Data(try MLSMessage.groupInfo(info).tlsEncoded())
    }

    @Test func aHugeCreationGroupInfoIsRefusedBeforeParsingWhileDeliveryFlows() async throws {
        try await TestServer.with { server in
            let (alice, bob, _) = try await Self.aliceAndBob(on: server)
            let mallory = try await TestUser.ready("mallory", on: server)
            // 700,000 blank nodes: a 0.7 MB GroupInfo whose body still fits the HTTP limit, so the
            // creation size check refuses it; 900,000 pass the body limit and are refused there.
            let huge = try Self.paddedGroupInfo(mallory, blanks: 700_000)
            let larger = try Self.paddedGroupInfo(mallory, blanks: 900_000)
            #expect(huge.count > 700_000)
            let token = mallory.token
            @Sendable func attack(_ info: Data) async -> ErrorBody? {
                do {
                    _ = try await server.request(
                        .POST,
                        "/v1/groups",
                        token: token,
                        body: WireJSON.encode(API.CreateGroup(name: "huge", groupInfo: info))
                    )
                    return nil
                } catch { return error as? ErrorBody }
            }
            async let first = attack(huge)
            async let second = attack(larger)
            for index in 0..<5 { try await Self.stillDelivers(from: alice, to: bob, "flowing \(index)") }
            #expect(await first?.code == .tooLarge)
            #expect(await second?.code == .tooLarge)
            // Small enough to parse, but not a one-member group: a few blank nodes after the creator.
            let padded = try Self.paddedGroupInfo(mallory, blanks: 5)
            await #expect(throws: ErrorBody.self) {
                try await server.request(
                    .POST,
                    "/v1/groups",
                    token: mallory.token,
                    body: WireJSON.encode(API.CreateGroup(name: "padded", groupInfo: padded))
                )
            }
            // Alice's two-member group's GroupInfo is not a creation.
            let grown = Data(try MLSMessage.groupInfo(alice.groups["g"]!.groupInfo()).tlsEncoded())
            await #expect(throws: ErrorBody(.invalidGroupInfo, "A new group starts at epoch 0.")) {
                try await server.request(
                    .POST,
                    "/v1/groups",
                    token: alice.token,
                    body: WireJSON.encode(API.CreateGroup(name: "copy", groupInfo: grown))
                )
            }
            #expect(try server.server.storage.group(named: "huge") == nil)
            try await Self.stillDelivers(from: bob, to: alice, "still flowing")
        }
    }

    @Test func groupCreationsAreRateLimitedPerDevice() async throws {
        try await TestServer.with(configure: { $0.groupCreationsPerHour = 3 }) { server in
            let mallory = try await TestUser.ready("mallory", on: server)
            for index in 0..<3 { try await mallory.createGroup("spam\(index)") }
            await #expect(throws: ErrorBody.self) { try await mallory.createGroup("spam3") }
            do {
                try await mallory.createGroup("spam4")
                Issue.record("a fifth creation within the hour was accepted")
            } catch let error as ErrorBody {
                #expect(error.code == .rateLimited)
            }
            // Others are not limited by mallory's creations.
            let alice = try await TestUser.ready("alice", on: server)
            try await alice.createGroup("mine")
        }
    }

    // MARK: Finding 4

    @Test func aWelcomeOfRandomBytesOrForSomeoneElseIsRefused() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let victim = try await TestUser.ready("victim", on: server)
            let carol = try await TestUser.ready("carol", on: server)
            for user in [alice, victim, carol] { await user.connect() }
            try await alice.createGroup("g")
            let output = try alice.groups["g"]!.addMembers(try await alice.claim("victim"))
            let junk = Data((0..<2000).map { _ in UInt8.random(in: 0...255) })
            try alice.socket!.send(
                .send(.init(id: "junk", group: "g", message: Data(try output.message.tlsEncoded()), welcome: junk))
            )
            let refused = await Self.nextError(alice)
            #expect(refused?.id == "junk" && refused?.error.code == .invalidMessage)
            // A real Welcome, but for Carol's KeyPackage, with the Add for the victim.
            alice.groups["g"]!.discardPendingCommit()
            let forCarol = try alice.groups["g"]!.addMembers(try await alice.claim("carol"))
            alice.groups["g"]!.discardPendingCommit()
            let forVictim = try alice.groups["g"]!.addMembers(try await alice.claim("victim"))
            #expect(
                try await alice.submit(forVictim.message, welcome: forCarol.welcome, to: "g").error?.code
                    == .invalidMessage
            )
            // Nothing is stored for the victim: their replay holds no Welcome.
            #expect(await victim.connect().isEmpty)
            #expect(try server.server.storage.welcomes(forDevice: 2).isEmpty)
        }
    }

    // MARK: Finding 8

    @Test func proposalsPerEpochAreBoundedAndNotWrittenIntoTheStoredState() async throws {
        let first = try await TestServer.start { $0.maxProposalsPerEpoch = 64 }
        let (alice, bob, _) = try await Self.aliceAndBob(on: first)
        let stored = try #require(try first.server.storage.group(named: "g"))
        let bobLeaf = bob.groups["g"]!.ownLeaf
        for index in 0..<64 {
            let proposal = try alice.groups["g"]!.propose(.remove(removed: bobLeaf), authenticatedData: [UInt8(index)])
            #expect(try await alice.submit(proposal, to: "g").accepted != nil)
        }
        let extra = try alice.groups["g"]!.propose(.remove(removed: bobLeaf), authenticatedData: [64])
        #expect(try await alice.submit(extra, to: "g").error?.code == .tooManyProposals)
        // The stored state is the commit's, untouched by 64 proposals.
        let after = try #require(try first.server.storage.group(named: "g"))
        #expect(after.state == stored.state && after.stateSeq == 1 && after.lastSeq == 65)
        // Application messages still flow.
        #expect(try await alice.sendText("echo", to: "g").accepted?.seq == 66)
        alice.socket?.close()
        bob.socket?.close()
        try await first.stop()

        // After a restart the pending proposals are re-derived from the log, and still count.
        let second = try await TestServer.start(directory: first.directory) { $0.maxProposalsPerEpoch = 64 }
        let aliceAgain = TestUser("alice", server: second)
        aliceAgain.session = alice.session
        aliceAgain.groups = alice.groups
        await aliceAgain.connect()
        let again = try aliceAgain.groups["g"]!.propose(.remove(removed: bobLeaf), authenticatedData: [65])
        #expect(try await aliceAgain.submit(again, to: "g").error?.code == .tooManyProposals)
        try await second.stop()
    }

    @Test func pendingProposalsOutliveAcknowledgementUntilTheNextCommit() throws {
        let directory = NSTemporaryDirectory() + "parley-storage-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let storage = try SQLiteStorage(path: directory + "/db.sqlite")
        let alice = try storage.device(
            userID: try storage.createUser(name: "alice", passwordHash: [1], salt: [2]),
            signatureKey: [1]
        )
        let group = try storage.createGroup(
            GroupRecord(id: 0, name: "g", mlsGroupID: [9], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: alice
        )
        _ = try storage.append(LogAppend(groupID: group, time: 1, senderDevice: alice, data: [1], newState: [1]))
        var proposal = LogAppend(groupID: group, time: 2, senderDevice: alice, data: [2])
        proposal.isProposal = true
        _ = try storage.append(proposal)
        _ = try storage.append(LogAppend(groupID: group, time: 3, senderDevice: alice, data: [3]))
        // The sender acknowledges its own messages like any member (its echo).
        try storage.acknowledge(deviceID: alice, groupID: group, seq: 3)
        #expect(try storage.prune(olderThan: 0) == 2)
        #expect(try storage.messages(groupID: group, after: 0, through: nil, limit: 10).map(\.seq) == [2])
        #expect(try storage.group(id: group)?.stateSeq == 1)
        _ = try storage.append(LogAppend(groupID: group, time: 4, senderDevice: alice, data: [4], newState: [4]))
        try storage.acknowledge(deviceID: alice, groupID: group, seq: 4)
        #expect(try storage.prune(olderThan: 0) == 2)
        #expect(try storage.messages(groupID: group, after: 0, through: nil, limit: 10).isEmpty)
    }

    @Test func proposalBytesPerEpochAreBounded() async throws {
        try await TestServer.with(configure: { $0.maxProposalBytesPerEpoch = 4096 }) { server in
            let (alice, bob, _) = try await Self.aliceAndBob(on: server)
            let bobLeaf = bob.groups["g"]!.ownLeaf
            let padding = [UInt8](repeating: 1, count: 1500)
            for index in 0..<2 {
                let proposal = try alice.groups["g"]!.propose(
                    .remove(removed: bobLeaf),
                    authenticatedData: padding + [UInt8(index)]
                )
                #expect(try await alice.submit(proposal, to: "g").accepted != nil)
            }
            let third = try alice.groups["g"]!.propose(.remove(removed: bobLeaf), authenticatedData: padding + [2])
            #expect(try await alice.submit(third, to: "g").error?.code == .tooManyProposals)
            try await Self.stillDelivers(from: bob, to: alice, "small talk")
        }
    }

    // MARK: Finding 13

    @Test func storageQuotasPerUserAndPerGroupRefuseClearly() async throws {
        try await TestServer.with(configure: {
            $0.maxStoredBytesPerUser = 100_000
            $0.maxStoredBytesPerGroup = 150_000
        }) { server in
            let (alice, bob, _) = try await Self.aliceAndBob(on: server)
            let text = String(repeating: "x", count: 40_000)
            #expect(try await alice.sendText(text, to: "g").accepted != nil)
            #expect(try await alice.sendText(text, to: "g").accepted != nil)
            let overUser = try await alice.sendText(text, to: "g")
            #expect(overUser.error?.code == .quotaExceeded)
            #expect(try await bob.sendText(text, to: "g").accepted != nil)
            let overGroup = try await bob.sendText(text, to: "g")
            #expect(overGroup.error?.code == .quotaExceeded)
            // Small messages fit in neither now; a different group of Bob's still works.
            try await bob.createGroup("other")
            #expect(try await bob.sendText("elsewhere", to: "other").accepted != nil)
        }
    }

    @Test func aMemberThatNeverReadsIsDisconnectedWhileOthersKeepReceiving() async throws {
        try await TestServer.with(configure: { $0.maxQueuedBytesPerConnection = 1 << 20 }) { server in
            let (alice, bob, rest) = try await Self.aliceAndBob(on: server, also: ["carol"])
            let carol = rest[0]
            // Bob's client stops reading: a new connection of his device (replacing the old one)
            // stays open but consumes nothing.
            let stalled = StalledSocket(server: server, token: bob.token)
            try await Task.sleep(for: .seconds(1))
            #expect(server.server.hub.count == 3)
            let text = String(repeating: "y", count: 400_000)
            for index in 0..<60 {
                #expect(try await alice.sendText(text + "\(index)", to: "g").accepted != nil)
                let delivered = try #require(await carol.nextMessage(in: "g"))
                #expect(try carol.apply(delivered) == text + "\(index)")
            }
            // The server dropped Bob's connection instead of holding everything for him.
            try await Self.waitUntil { server.server.hub.count == 2 }
            stalled.cancel()
            try await Self.stillDelivers(from: alice, to: carol, "carol still hears")
            // Bob catches up from storage when he reconnects.
            let replay = await bob.connect()
            #expect(replay.compactMap(\.accepted).count == 61)
        }
    }

    static func waitUntil(_ timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw ErrorBody(.internalError, "timed out waiting") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Finding 12

    @Test func aConnectionThatNeverCompletesTLSIsClosed() async throws {
        try await TestServer.with(configure: { $0.handshakeTimeoutSeconds = 1 }) { server in
            let started = ContinuousClock.now
            let silent = try RawTCP(port: server.port)
            let halfHello = try RawTCP(port: server.port)
            halfHello.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])  // a TLS record header, then nothing
            #expect(await silent.waitForClose(seconds: 8))
            #expect(await halfHello.waitForClose(seconds: 8))
            #expect(ContinuousClock.now - started < .seconds(6))
            // Complete clients are unaffected.
            let alice = try await TestUser.ready("alice", on: server)
            await alice.connect()
            try await Task.sleep(for: .seconds(2))
            try await alice.createGroup("g")
            #expect(try await alice.sendText("hello", to: "g").accepted != nil)
        }
    }

    // MARK: Finding 18 (group-name oracle)

    @Test func nonMembersGetTheSameAnswerWhetherOrNotAGroupExists() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let mallory = try await TestUser.ready("mallory", on: server)
            for user in [alice, mallory] { await user.connect() }
            try await alice.createGroup("secret")
            let text = try alice.groups["secret"]!.encrypt(Array("hi".utf8))
            for name in ["secret", "nothing-here"] {
                await #expect(throws: ErrorBody(.notMember)) {
                    try await server.get("/v1/groups/\(name)", token: mallory.token, as: API.Group.self)
                }
                await #expect(throws: ErrorBody(.notMember)) {
                    try await server.get("/v1/groups/\(name)/tree", token: mallory.token, as: API.RatchetTree.self)
                }
                await #expect(throws: ErrorBody(.notMember)) {
                    try await server.request(.DELETE, "/v1/groups/\(name)", token: mallory.token)
                }
                #expect(try await mallory.submit(text, to: name).error == ErrorBody(.notMember))
                mallory.socket!.sendRaw(#"{"type":"ack","group":"\#(name)","seq":1}"#)
                #expect(await Self.nextError(mallory)?.error == ErrorBody(.notMember))
            }
        }
    }
}

/// A WebSocket whose client never reads: the server's writes back up to it.
final class StalledSocket: Sendable {
    private let task: Task<Void, Error>

    init(server: TestServer, token: String) {
        task = Task {
            _ = try await WebSocketClient.connect(
                url: "wss://127.0.0.1:\(server.port)/v1/ws",
                configuration: .init(
                    maxFrameSize: 8 << 20,
                    additionalHeaders: [.authorization: "Bearer \(token)"],
                    sniHostname: "localhost"
                ),
                tlsConfiguration: server.tls,
                logger: Logger(label: "stalled")
            ) { _, _, _ in
                try await Task.sleep(for: .seconds(120))
            }
        }
    }

    func cancel() { task.cancel() }
}

/// A plain TCP connection (no TLS), for clients that stall before the handshake.
/// `@unchecked Sendable`: the descriptor never changes, and `waitForClose` reads it from one
/// thread at a time.
final class RawTCP: @unchecked Sendable {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw ErrorBody(.internalError, "connect failed") }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Whether the server closes the connection within `seconds` (a read returns end of stream or
    /// an error). The blocking read runs on its own thread: on the cooperative pool (two threads on
    /// a two-core machine) it would stall the very server tasks that are meant to close it.
    func waitForClose(seconds: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.blockingWaitForClose(seconds: seconds)) }.start()
        }
    }

    private func blockingWaitForClose(seconds: Int) -> Bool {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }
}
