import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// The server's side of the signed device directory: who may log in, publish, be claimed and be
/// added. Each test performs the attack against a real server.
@Suite struct DevicesServerTests {
    /// An account registered with an identity key and a first list naming one device.
    struct Account {
        let identity: AccountIdentity
        let first: TestUser
        var list: DeviceList

        func signed(_ list: DeviceList) throws -> Data { Data(try identity.sign(list).encoded()) }

        /// The next version, naming `device` too.
        mutating func link(_ device: TestUser, name: String) throws -> Data {
            let entry = DeviceEntry(signatureKey: device.signatureKeys.publicKey.bytes, name: name, addedAt: 2)
            list = try list.adding(entry)
            return try signed(list)
        }

        mutating func revoke(_ device: TestUser) throws -> Data {
            list = try list.revoking(signatureKey: device.signatureKeys.publicKey.bytes, at: 3)
            return try signed(list)
        }
    }

    static func register(_ name: String, on server: TestServer) async throws -> Account {
        let device = TestUser(name, server: server)
        let identity = AccountIdentity()
        let entry = DeviceEntry(signatureKey: device.signatureKeys.publicKey.bytes, name: "first", addedAt: 1)
        let list = try DeviceList.first(user: name, identityKey: identity.publicKey, device: entry)
        let body = API.Register(
            username: name,
            password: device.password,
            deviceList: Data(try identity.sign(list).encoded())
        )
        try await server.request(.POST, "/v1/accounts", body: WireJSON.encode(body))
        try await device.login()
        _ = try await device.upload(count: 2)
        await device.connect()
        return Account(identity: identity, first: device, list: list)
    }

    static func publish(_ list: Data, by device: TestUser) async throws {
        try await device.server.request(
            .PUT,
            "/v1/devices",
            token: device.token,
            body: WireJSON.encode(API.DeviceListBody(deviceList: list))
        )
    }

    @Test func onlyListedDevicesLogInAndTheListIsServedUnchanged() async throws {
        try await TestServer.with { server in
            let frank = try await Self.register("frank", on: server)
            let served = try await server.get(
                "/v1/users/frank/devices",
                token: frank.first.token,
                as: API.DeviceListBody.self
            )
            let list = try SignedDeviceList(encoded: [UInt8](served.deviceList))
                .verify(user: "frank", pinnedIdentityKey: frank.identity.publicKey)
            #expect(list == frank.list)
            // A device with the password but not in the signed list cannot log in.
            let ghost = TestUser("frank", server: server)
            await #expect(throws: ErrorBody(.deviceNotListed)) { try await ghost.login() }
        }
    }

    @Test func tamperedReplayedAndForeignListsAreRefused() async throws {
        try await TestServer.with { server in
            var frank = try await Self.register("frank", on: server)
            let laptop = TestUser("frank", server: server)
            let version2 = try frank.link(laptop, name: "laptop")
            try await Self.publish(version2, by: frank.first)
            // A replay of the same version, and an older one, are refused.
            let replayed = await #expect(throws: ErrorBody.self) { try await Self.publish(version2, by: frank.first) }
            #expect(replayed?.code == .invalidDeviceList)
            // A bit flipped in the signed bytes.
            var flipped = try frank.link(TestUser("frank", server: server), name: "tablet")
            flipped[flipped.count - 1] ^= 1
            let tampered = await #expect(throws: ErrorBody.self) { try await Self.publish(flipped, by: frank.first) }
            #expect(tampered?.code == .invalidDeviceList)
            // A list signed by another identity key than the account's.
            let mallory = AccountIdentity()
            var forged = frank.list
            forged.identityKey = mallory.publicKey
            forged.version = 99
            let forgedBytes = Data(try mallory.sign(forged).encoded())
            let foreign = await #expect(throws: ErrorBody.self) { try await Self.publish(forgedBytes, by: frank.first) }
            #expect(foreign?.code == .invalidDeviceList)
            let served = try await server.get(
                "/v1/users/frank/devices",
                token: frank.first.token,
                as: API.DeviceListBody.self
            )
            #expect(served.deviceList == version2)
        }
    }

    @Test func revokingAConnectedDeviceCutsItOffAtOnce() async throws {
        try await TestServer.with { server in
            var frank = try await Self.register("frank", on: server)
            let laptop = TestUser("frank", server: server)
            try await Self.publish(try frank.link(laptop, name: "laptop"), by: frank.first)
            try await laptop.login()
            _ = try await laptop.upload(count: 2)
            await laptop.connect()
            let socket = try #require(laptop.socket)
            let dave = try await TestUser.ready("dave", on: server)

            try await Self.publish(try frank.revoke(laptop), by: frank.first)
            _ = await framesUntilClosed(socket, timeout: .seconds(45))
            // Its session is gone, it cannot log in again, and its KeyPackages are not handed out.
            await #expect(throws: ErrorBody(.unauthorized)) { _ = try await laptop.upload(count: 1) }
            await #expect(throws: ErrorBody(.deviceNotListed)) { try await laptop.login() }
            let claimed = try await dave.claim("frank")
            #expect(claimed.map(\.leafNode.signatureKey.bytes) == [frank.first.signatureKeys.publicKey.bytes])
        }
    }

    @Test func anAccountWithoutIdentitySetsItWithItsFirstPublishedList() async throws {
        try await TestServer.with { server in
            let legacy = try await TestUser.ready("olduser", on: server)
            let identity = AccountIdentity()
            let entry = DeviceEntry(signatureKey: legacy.signatureKeys.publicKey.bytes, name: "old", addedAt: 1)
            let list = try DeviceList.first(user: "olduser", identityKey: identity.publicKey, device: entry)
            try await Self.publish(Data(try identity.sign(list).encoded()), by: legacy)
            // Pinned from now on: another identity's list is refused, even with a higher version.
            let other = AccountIdentity()
            var seized = list
            seized.identityKey = other.publicKey
            seized.version = 5
            let seizedBytes = Data(try other.sign(seized).encoded())
            let refused = await #expect(throws: ErrorBody.self) { try await Self.publish(seizedBytes, by: legacy) }
            #expect(refused?.code == .invalidDeviceList)
        }
    }

    /// The group rule's device hook: an unlisted device is refused even to an admin, and a
    /// non-admin adds only its own account's listed devices.
    @Test func addsOfUnlistedOrForeignDevicesAreRefused() async throws {
        try await TestServer.with { server in
            let alice = try await Self.register("alice", on: server)
            var bob = try await Self.register("bob", on: server)
            let carol = try await Self.register("carol", on: server)
            try await alice.first.createGroup("g")
            #expect(try await alice.first.add(["bob"], to: "g").accepted != nil)
            try bob.first.join(try #require(await bob.first.nextWelcome()))

            // The operator inserts a device row for bob: it is registered, but not in bob's list.
            let ghost = TestUser("bob", server: server)
            _ = try server.server.storage.device(
                userID: try #require(try server.server.storage.user(named: "bob")).id,
                signatureKey: ghost.signatureKeys.publicKey.bytes
            )
            let ghostAdd = try alice.first.groups["g"]!.addMembers([try ghost.makeBundle().keyPackage])
            let refused = try await alice.first.submit(ghostAdd.message, welcome: ghostAdd.welcome, to: "g")
            #expect(refused.error?.code == .deviceNotListed)

            // bob (not an admin) may not add carol's device: his client ignores the rule, the server does not.
            bob.first.groups["g"]!.policy = GroupPolicy()
            let carolPackage = try #require(try await bob.first.claim("carol").first)
            let foreign = try bob.first.groups["g"]!.addMembers([carolPackage])
            #expect(
                try await bob.first.submit(foreign.message, welcome: foreign.welcome, to: "g").error?.code
                    == .notPermitted
            )
            _ = carol

            // ...but may add his own newly listed laptop.
            let laptop = TestUser("bob", server: server)
            try await Self.publish(try bob.link(laptop, name: "laptop"), by: bob.first)
            try await laptop.login()
            _ = try await laptop.upload(count: 1)
            let own = try bob.first.groups["g"]!.addMembers(
                try await bob.first.claim("bob").filter {
                    $0.leafNode.signatureKey == laptop.signatureKeys.publicKey
                }
            )
            #expect(try await bob.first.submit(own.message, welcome: own.welcome, to: "g").accepted != nil)
        }
    }
}
