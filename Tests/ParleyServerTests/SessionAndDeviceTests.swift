import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// An open WebSocket lives no longer than its session, however the session ends; an operator
/// can remove one device of an account.
@Suite(.serialized) struct SessionAndDeviceTests {
    /// alice and bob in group "g" (alice admin), both connected.
    private static func aliceAndBob(on server: TestServer) async throws -> (TestUser, TestUser) {
        let alice = try await TestUser.ready("alice", on: server)
        let bob = try await TestUser.ready("bob", on: server)
        await alice.connect()
        await bob.connect()
        try await alice.createGroup("g")
        #expect(try await alice.add(["bob"], to: "g").accepted != nil)
        try bob.join(try #require(await bob.nextWelcome()))
        return (alice, bob)
    }

    // MARK: The session ends underneath the running server

    @Test func aSessionDeletedByAnotherProcessClosesTheIdleSocketOnTheTimer() async throws {
        try await TestServer.with(configure: { $0.sessionCheckSeconds = 1 }) { server in
            let (alice, bob) = try await Self.aliceAndBob(on: server)
            let socket = try #require(bob.socket)
            // Another process (`parley admin` on the data directory), or on PostgreSQL another node.
            try server.withSecondStorage { try $0.deleteSessions(deviceID: bob.session.deviceID) }
            // Nothing is sent to bob and bob sends nothing: only the timer can notice.
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            #expect(!frames.contains { $0.accepted != nil })
            // Closed for good: a message sent in the group afterwards reaches nothing of bob's.
            #expect(try await alice.sendText("after", to: "g").accepted != nil)
            #expect(await socket.next(timeout: .seconds(1)) == nil)
        }
    }

    @Test func aDeviceRemovedByTheAdminCommandInAnotherProcessIsClosed() async throws {
        try await TestServer.with(configure: { $0.sessionCheckSeconds = 1 }) { server in
            let (alice, bob) = try await Self.aliceAndBob(on: server)
            let socket = try #require(bob.socket)
            // What `parley admin remove-device bob ID --data DIR` does: its own ParleyServer on
            // the same data directory, whose hub knows nothing of the running server's sockets.
            let admin = try ParleyServer(configuration: server.server.configuration)
            #expect(try admin.removeDevice(user: "bob", deviceID: bob.session.deviceID))
            // Checked every second; the bound is far above that, for a two-core machine running
            // the whole suite, and still tells a closed socket from one never closed.
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            #expect(try await alice.sendText("after", to: "g").accepted != nil)
            #expect(await socket.next(timeout: .seconds(1)) == nil)
            await #expect(throws: ErrorBody(.signatureKeyInUse)) { try await bob.login() }
        }
    }

    @Test func aFrameOnASocketWhoseSessionIsGoneIsNotHandled() async throws {
        // The timer would take an hour: the check before each frame is what stops this.
        try await TestServer.with(configure: { $0.sessionCheckSeconds = 3600 }) { server in
            let (alice, bob) = try await Self.aliceAndBob(on: server)
            let socket = try #require(bob.socket)
            // Another process (`parley admin` on the data directory), or on PostgreSQL another node.
            try server.withSecondStorage { try $0.deleteSessions(deviceID: bob.session.deviceID) }
            let late = try bob.groups["g"]!.encrypt(Array("from a dead session".utf8))
            try socket.send(.send(.init(id: "late", group: "g", message: Data(try late.tlsEncoded()))))
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            #expect(!frames.contains { $0.accepted != nil })
            #expect(await alice.nextMessage(in: "g", timeout: .seconds(2)) == nil)
        }
    }

    @Test func liveDeliveryStopsAtASessionDeletedByAnotherProcess() async throws {
        try await TestServer.with(configure: { $0.sessionCheckSeconds = 3600 }) { server in
            let (alice, bob) = try await Self.aliceAndBob(on: server)
            let socket = try #require(bob.socket)
            // The delivery check trusts an answer for a second; let the last one age.
            try await Task.sleep(for: .milliseconds(1100))
            // Another process (`parley admin` on the data directory), or on PostgreSQL another node.
            try server.withSecondStorage { try $0.deleteSessions(deviceID: bob.session.deviceID) }
            #expect(try await alice.sendText("secret", to: "g").accepted != nil)
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            #expect(!frames.contains { $0.accepted != nil })
        }
    }

    @Test func anExpiredSessionClosesItsSocket() async throws {
        try await TestServer.with(configure: { $0.sessionCheckSeconds = 1 }) { server in
            let bob = try await TestUser.ready("bob", on: server)
            // A session that expires in two seconds, made as login makes one.
            let token = SessionToken.generate()
            try server.server.storage.createSession(
                tokenHash: SessionToken.hash(token),
                deviceID: bob.session.deviceID,
                expiresAt: Clock.milliseconds() + 2000
            )
            let socket = TestSocket(server: server, token: token)
            #expect(await socket.replay().isEmpty)
            let opened = ContinuousClock.now
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            #expect(ContinuousClock.now - opened >= .milliseconds(900))
        }
    }

    // MARK: Removing a device

    @Test func anOperatorRemovesADeviceSoItCannotLogInAndANewOneCan() async throws {
        try await TestServer.with(configure: { $0.maxDevicesPerAccount = 2 }) { server in
            let (alice, bob) = try await Self.aliceAndBob(on: server)
            let laptop = TestUser("alice", server: server)
            try await laptop.login()
            // At the bound, a third device is refused.
            let phone = TestUser("alice", server: server)
            await #expect(throws: ErrorBody(.tooManyDevices)) { try await phone.login() }
            let listed = try #require(try server.server.listDevices(user: "alice"))
            #expect(listed.map(\.id) == [alice.session.deviceID, laptop.session.deviceID])
            #expect(Set(listed.map(\.keyFingerprint)).count == 2)

            // Only the named user's own device, and only one that exists.
            #expect(try !server.server.removeDevice(user: "bob", deviceID: alice.session.deviceID))
            #expect(try !server.server.removeDevice(user: "alice", deviceID: 999_999))
            #expect(try server.server.listDevices(user: "nobody") == nil)

            let socket = try #require(alice.socket)
            #expect(try server.server.removeDevice(user: "alice", deviceID: alice.session.deviceID))
            let frames = await framesUntilClosed(socket, timeout: .seconds(45))
            #expect(frames.contains { $0.error?.code == .unauthorized })
            await #expect(throws: ErrorBody(.unauthorized)) {
                try await server.request(.GET, "/v1/groups", token: alice.token)
            }
            // The removed device's key is retired: the password alone does not bring it back.
            await #expect(throws: ErrorBody(.signatureKeyInUse)) { try await alice.login() }
            // The freed place takes a new device, and the other device carries on.
            try await phone.login()
            #expect(
                try server.server.listDevices(user: "alice")?.map(\.id)
                    == [laptop.session.deviceID, phone.session.deviceID]
            )
            #expect(try await bob.sendText("still here", to: "g").accepted != nil)
            _ = try await server.request(.GET, "/v1/groups", token: laptop.token)
        }
    }
}
