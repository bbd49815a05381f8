import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// The server over loopback with real TLS and real WebSocket clients.
@Suite(.serialized) struct ServerTests {
    @Test func accountsRegisterLogInAndReportDistinctErrors() async throws {
        try await TestServer.with { server in
            try await server.request(
                .POST,
                "/v1/accounts",
                body: WireJSON.encode(API.Register(username: "alice", password: "correct horse"))
            )
            await #expect(throws: ErrorBody(.usernameTaken)) {
                try await server.request(
                    .POST,
                    "/v1/accounts",
                    body: WireJSON.encode(API.Register(username: "alice", password: "another one"))
                )
            }
            await #expect(throws: ErrorBody(.invalidUsername)) {
                try await server.request(
                    .POST,
                    "/v1/accounts",
                    body: WireJSON.encode(API.Register(username: "Bad Name!", password: "correct horse"))
                )
            }
            await #expect(throws: ErrorBody(.weakPassword)) {
                try await server.request(
                    .POST,
                    "/v1/accounts",
                    body: WireJSON.encode(API.Register(username: "bob", password: "short"))
                )
            }
            let alice = TestUser("alice", server: server)
            try await alice.login()
            #expect(alice.token.count == 64)
            let wrong = TestUser("alice", password: "wrong password", server: server)
            await #expect(throws: ErrorBody(.invalidPassword)) { try await wrong.login() }
            await #expect(throws: ErrorBody(.userNotFound)) { try await TestUser("nobody", server: server).login() }
            await #expect(throws: ErrorBody(.malformedRequest)) {
                try await server.request(.POST, "/v1/sessions", body: Data("{not json".utf8))
            }
            await #expect(throws: ErrorBody(.unauthorized)) {
                try await server.request(.GET, "/v1/groups", token: "forged")
            }
            // Logging out ends the session.
            try await server.request(.DELETE, "/v1/sessions", token: alice.token)
            await #expect(throws: ErrorBody(.unauthorized)) {
                try await server.request(.GET, "/v1/groups", token: alice.token)
            }
            // Failed logins are rate-limited per account.
            var limited = false
            for _ in 0..<8 {
                do { try await wrong.login() } catch let error as ErrorBody {
                    limited = limited || error.code == .rateLimited
                }
            }
            #expect(limited)
        }
    }

    @Test func registrationCanBeClosedOrByInvite() async throws {
        let closed = try await TestServer.start { $0.registration = .closed }
        await #expect(throws: ErrorBody(.registrationClosed)) {
            try await closed.request(
                .POST,
                "/v1/accounts",
                body: WireJSON.encode(API.Register(username: "alice", password: "correct horse"))
            )
        }
        try closed.server.addUser(name: "alice", password: "correct horse")
        try await TestUser("alice", server: closed).login()
        try await closed.stop()

        let invite = try await TestServer.start {
            $0.registration = .invite
            $0.inviteToken = "let-me-in"
        }
        await #expect(throws: ErrorBody(.invalidInvite)) {
            try await invite.request(
                .POST,
                "/v1/accounts",
                body: WireJSON.encode(API.Register(username: "bob", password: "correct horse", invite: "guess"))
            )
        }
        try await invite.request(
            .POST,
            "/v1/accounts",
            body: WireJSON.encode(API.Register(username: "bob", password: "correct horse", invite: "let-me-in"))
        )
        try await invite.stop()
    }

    @Test func keyPackagesAreValidatedAndNeverHandedOutTwice() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server, keyPackages: 2)
            #expect(
                try await server.get("/v1/keypackages", token: bob.token, as: API.KeyPackageStock.self).available == 2
            )
            let first = try await alice.claim("bob")
            let second = try await alice.claim("bob")
            let lastResort = try await alice.claim("bob")
            let again = try await alice.claim("bob")
            #expect(first[0] != second[0])
            #expect(!first[0].isLastResort && !second[0].isLastResort)
            #expect(lastResort[0].isLastResort && again[0] == lastResort[0])
            #expect(
                try await server.get("/v1/keypackages", token: bob.token, as: API.KeyPackageStock.self).available == 0
            )
            await #expect(throws: ErrorBody(.userNotFound)) { try await alice.claim("carol") }
            // A KeyPackage of another device is refused.
            let foreign = Data(try MLSMessage.keyPackage(alice.makeBundle().keyPackage).tlsEncoded())
            await #expect(throws: ErrorBody.self) {
                try await server.request(
                    .POST,
                    "/v1/keypackages",
                    token: bob.token,
                    json: API.UploadKeyPackages(keyPackages: [foreign]),
                    as: API.KeyPackageStock.self
                )
            }
            await #expect(throws: ErrorBody.self) {
                try await server.request(
                    .POST,
                    "/v1/keypackages",
                    token: bob.token,
                    json: API.UploadKeyPackages(keyPackages: [Data([1, 2, 3])]),
                    as: API.KeyPackageStock.self
                )
            }
        }
    }

    @Test func aGroupAddsTalksAndRemoves() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            let charlie = try await TestUser.ready("charlie", on: server)
            for user in [alice, bob, charlie] { await user.connect() }
            try await alice.createGroup("group1")
            await #expect(throws: ErrorBody(.groupNameInUse)) { try await bob.createGroup("group1") }

            let added = try await alice.add(["bob", "charlie"], to: "group1")
            #expect(added.accepted?.seq == 1)
            for user in [bob, charlie] {
                let welcome = try #require(await user.nextWelcome())
                #expect(welcome.seq == 1)
                try user.join(welcome)
                try user.socket!.send(.ack(.init(group: "group1", seq: 1)))
            }
            let hello = try #require(try await bob.sendText("hi all", to: "group1").accepted)
            #expect(hello.seq == 2 && hello.sender == "bob" && hello.time > 0)
            #expect(try alice.apply(#require(await alice.nextMessage(in: "group1"))) == "hi all")
            #expect(try charlie.apply(#require(await charlie.nextMessage(in: "group1"))) == "hi all")

            let info = try await server.get("/v1/groups/group1", token: charlie.token, as: API.Group.self)
            #expect(info.members == ["alice", "bob", "charlie"] && info.admins == ["alice"] && info.epoch == 1)

            // alice removes charlie; charlie sees its removal and nothing after.
            let removal = try alice.groups["group1"]!.removeMembers([charlie.groups["group1"]!.ownLeaf])
            let removed = try #require(try await alice.submit(removal.message, to: "group1").accepted)
            try alice.apply(removed)
            try bob.apply(#require(await bob.nextMessage(in: "group1")))
            try charlie.apply(#require(await charlie.nextMessage(in: "group1")))
            #expect(!charlie.groups["group1"]!.isActive)
            _ = try await alice.sendText("charlie cant see this", to: "group1")
            #expect(try bob.apply(#require(await bob.nextMessage(in: "group1"))) == "charlie cant see this")
            #expect(await charlie.nextMessage(in: "group1", timeout: .seconds(2)) == nil)
            // And the server no longer accepts anything from charlie for the group.
            let late = try await charlie.submit(
                .privateMessage(
                    PrivateMessage(
                        groupID: [],
                        epoch: 0,
                        contentType: .application,
                        authenticatedData: [],
                        encryptedSenderData: [],
                        ciphertext: []
                    )
                ),
                to: "group1"
            )
            #expect(late.error?.code == .notMember)
        }
    }

    @Test func ofTwoCommitsForOneEpochTheSecondGetsWrongEpoch() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            await alice.connect()
            await bob.connect()
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            try bob.join(#require(await bob.nextWelcome()))
            let fromAlice = try alice.groups["g"]!.selfUpdate()
            let fromBob = try bob.groups["g"]!.selfUpdate()
            #expect(try await alice.submit(fromAlice.message, to: "g").accepted != nil)
            let loser = try await bob.submit(fromBob.message, to: "g")
            #expect(loser.error?.code == .wrongEpoch && loser.error?.epoch == 2)
            // Bob catches up and retries on the new epoch.
            try bob.apply(#require(await bob.nextMessage(in: "g")))
            let retry = try bob.groups["g"]!.selfUpdate()
            #expect(try await bob.submit(retry.message, to: "g").accepted?.seq == 3)
        }
    }

    @Test func nonAdminsAndNonMembersAreRefused() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            let mallory = try await TestUser.ready("mallory", on: server)
            for user in [alice, bob, mallory] { await user.connect() }
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            try bob.join(#require(await bob.nextWelcome()))
            // Bob's client ignores the admin rule; the server enforces it.
            bob.groups["g"]!.policy = GroupPolicy()
            let package = try await bob.claim("mallory")
            let sneaky = try bob.groups["g"]!.addMembers(package)
            #expect(try await bob.submit(sneaky.message, welcome: sneaky.welcome, to: "g").error?.code == .notPermitted)
            let kick = try bob.groups["g"]!.removeMembers([LeafIndex(0)])
            #expect(try await bob.submit(kick.message, to: "g").error?.code == .notPermitted)
            // Mallory is not a member.
            let outsider = try await mallory.submit(sneaky.message, to: "g")
            #expect(outsider.error?.code == .notMember)
            await #expect(throws: ErrorBody(.notMember)) {
                try await server.get("/v1/groups/g", token: mallory.token, as: API.Group.self)
            }
            // The same answer for a group that does not exist: no name oracle.
            await #expect(throws: ErrorBody(.notMember)) {
                try await server.get("/v1/groups/nope", token: mallory.token, as: API.Group.self)
            }
            await #expect(throws: ErrorBody(.notPermitted)) {
                try await server.request(.DELETE, "/v1/groups/g", token: bob.token)
            }
        }
    }

    @Test func reconnectingReplaysWelcomesAndMessagesThenSaysReplayFinished() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            await alice.connect()
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            for index in 0..<3 { _ = try await alice.sendText("m\(index)", to: "g") }
            // Bob was offline for all of it.
            let replay = await bob.connect()
            guard case .welcome(let welcome)? = replay.first else {
                Issue.record("replay must start with the Welcome")
                return
            }
            try bob.join(welcome)
            let texts = try replay.dropFirst().compactMap { frame -> String? in
                guard case .message(let message) = frame else { return nil }
                return try bob.apply(message)
            }
            #expect(texts == ["m0", "m1", "m2"])
            try bob.socket!.send(.ack(.init(group: "g", seq: 4)))
            try await Task.sleep(for: .milliseconds(200))
            // After the ack, a reconnect replays nothing.
            #expect(await bob.connect().isEmpty)
            _ = try await alice.sendText("live", to: "g")
            #expect(try bob.apply(#require(await bob.nextMessage(in: "g"))) == "live")
        }
    }

    @Test func aRestartKeepsAccountsGroupsLogAndCursors() async throws {
        let first = try await TestServer.start()
        let alice = try await TestUser.ready("alice", on: first)
        let bob = try await TestUser.ready("bob", on: first)
        await alice.connect()
        try await alice.createGroup("g")
        _ = try await alice.add(["bob"], to: "g")
        _ = try await alice.sendText("before restart", to: "g")
        // Alice acknowledges her echoes (the commit at 1, the message at 2); the cursor is stored.
        try alice.socket!.send(.ack(.init(group: "g", seq: 2)))
        try await Task.sleep(for: .milliseconds(200))
        alice.socket?.close()
        try await first.stop()

        let second = try await TestServer.start(directory: first.directory)
        #expect(second.server.fingerprint == first.server.fingerprint)
        let aliceAgain = TestUser("alice", server: second)
        let bobAgain = TestUser("bob", server: second)
        for (old, new) in [(alice, aliceAgain), (bob, bobAgain)] {
            new.session = old.session
            new.bundles = old.bundles
            new.groups = old.groups
        }
        #expect(await aliceAgain.connect().isEmpty)  // alice's cursor survived the restart
        let replay = await bobAgain.connect()
        guard case .welcome(let welcome)? = replay.first, case .message(let message)? = replay.last else {
            Issue.record("expected the Welcome and the message, got \(replay)")
            return
        }
        try bobAgain.join(welcome)
        #expect(try bobAgain.apply(message) == "before restart")
        #expect(try await bobAgain.sendText("after restart", to: "g").accepted?.seq == 3)
        try await second.stop()
    }

    @Test func malformedFramesAreAnsweredAndOthersCarryOn() async throws {
        try await TestServer.with(configure: { $0.maxFrameBytes = 64 * 1024 }) { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            await alice.connect()
            await bob.connect()
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            try bob.join(#require(await bob.nextWelcome()))

            bob.socket!.sendRaw("this is not json")
            #expect(await bob.socket!.next()?.error?.code == .malformedRequest)
            bob.socket!.sendRaw(#"{"type":"launch"}"#)
            #expect(await bob.socket!.next()?.error?.code == .malformedRequest)
            bob.socket!.sendRaw(String(repeating: "x", count: 200 * 1024))
            #expect(await bob.socket!.next()?.error?.code == .tooLarge)
            let garbage = try await bob.submit(.keyPackage(try bob.makeBundle().keyPackage), to: "g")
            #expect(garbage.error?.code == .invalidMessage)
            try bob.socket!.send(.send(.init(id: "x", group: "g", message: Data([0, 1, 0, 2, 9, 9]))))
            #expect(await bob.socket!.next()?.error?.code == .invalidMessage)
            // Bob's connection and everyone else's still work.
            _ = try await alice.sendText("still here", to: "g")
            #expect(try bob.apply(#require(await bob.nextMessage(in: "g"))) == "still here")
            #expect(try await bob.sendText("me too", to: "g").accepted != nil)
        }
    }

    @Test func anAdminDestroysAGroupAndMembersAreTold() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            await alice.connect()
            try await alice.createGroup("g")
            _ = try await alice.add(["bob"], to: "g")
            try await server.request(.DELETE, "/v1/groups/g", token: alice.token)
            // Bob was offline: he is told on connect; the log and Welcome are gone.
            let replay = await bob.connect()
            #expect(replay == [.groupDestroyed(.init(group: "g"))])
            await #expect(throws: ErrorBody(.notMember)) {
                try await server.get("/v1/groups/g", token: alice.token, as: API.Group.self)
            }
        }
    }

    @Test func healthAndMetricsAreServed() async throws {
        try await TestServer.with { server in
            #expect(String(decoding: try await server.request(.GET, "/healthz"), as: UTF8.self) == "ok\n")
            let alice = try await TestUser.ready("alice", on: server)
            await alice.connect()
            try await alice.createGroup("g")
            _ = try await alice.sendText("x", to: "g")
            let metrics = String(decoding: try await server.request(.GET, "/metrics"), as: UTF8.self)
            #expect(metrics.contains("parley_messages_accepted_total 1"))
            #expect(metrics.contains("parley_connections 1"))
            // Process gauges: memory in use and at least the listening socket and this connection.
            let gauges = Dictionary(
                metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
                    let fields = line.split(separator: " ")
                    return fields.count == 2 ? (String(fields[0]), Double(fields[1]) ?? -1) : nil
                },
                uniquingKeysWith: { $1 }
            )
            #expect((gauges["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect((gauges["process_open_fds"] ?? 0) >= 2)
        }
    }
}
