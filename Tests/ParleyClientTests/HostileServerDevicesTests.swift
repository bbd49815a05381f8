import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient
@testable import ParleyServer

/// A hostile operator tries to slip a device into a user's account (issue 13 item 5, issue 14):
/// the server offers a ghost device's KeyPackage, or serves a tampered, replayed or re-signed
/// device list. The adder's client adds only what the user's signed list names, and says why.
@Suite(.serialized) struct HostileServerDevicesTests {
    static let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// What the operator does with database access: a device row for `user` with a key only the
    /// operator holds, and a KeyPackage of it in the claim the proxy answers.
    /// With `only`, the claim answer holds the ghost alone (the server withholds the real devices).
    static func offerGhost(for user: String, on homes: HostileHomes, only: Bool = false) throws -> SignatureKeyPair {
        let ghostKeys = suite.generateSignatureKeyPair()
        let storage = homes.proxy.upstream.storage
        let userID = try #require(try storage.user(named: user)).id
        let deviceID = try storage.device(userID: userID, signatureKey: ghostKeys.publicKey.bytes)
        let bundle = try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array(user.utf8)),
            signatureKeys: ghostKeys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let ghostPackage = Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded())
        homes.proxy.setHTTPRewrite { method, path, _, body in
            guard method == "POST", path.hasSuffix("/users/\(user)/keypackages/claim"),
                var claimed = try? WireJSON.decode(API.ClaimedKeyPackages.self, from: body)
            else { return body }
            if only { claimed.keyPackages.removeAll() }
            claimed.keyPackages.append(.init(deviceID: deviceID, keyPackage: ghostPackage))
            return (try? WireJSON.encode(claimed)) ?? body
        }
        return ghostKeys
    }

    /// Serves `bytes` as `user`'s device list, whatever the server holds.
    static func serveDeviceList(_ bytes: [UInt8], of user: String, on homes: HostileHomes) {
        homes.proxy.setHTTPRewrite { method, path, _, body in
            guard method == "GET", path.hasSuffix("/users/\(user)/devices") else { return body }
            return (try? WireJSON.encode(API.DeviceListBody(deviceList: Data(bytes)))) ?? body
        }
    }

    /// The signed list the server holds for `user`.
    static func storedList(of user: String, on homes: HostileHomes) throws -> [UInt8] {
        let storage = homes.proxy.upstream.storage
        let userID = try #require(try storage.user(named: user)).id
        return try #require(try storage.deviceList(ofUser: userID)).data
    }

    /// `client`'s account signs a next list that adds a device, and it is stored as the latest.
    static func linkDevice(of client: ParleyClient, user: String, on homes: HostileHomes) async throws -> [UInt8] {
        let identity = try #require(try await client.vault?.accountIdentity())
        let current = try SignedDeviceList(encoded: try storedList(of: user, on: homes)).list
        let laptop = DeviceEntry(
            signatureKey: suite.generateSignatureKeyPair().publicKey.bytes,
            name: "laptop",
            addedAt: 5
        )
        let next = try identity.sign(try current.adding(laptop))
        let storage = homes.proxy.upstream.storage
        let userID = try #require(try storage.user(named: user)).id
        try storage.storeDeviceList(
            userID: userID,
            StoredDeviceList(identityKey: identity.publicKey, version: next.list.version, data: try next.encoded())
        )
        return try next.encoded()
    }

    @Test func aGhostDeviceTheServerOffersIsNeverAddedAndTheAdderIsTold() async throws {
        let homes = try await HostileHomes()
        let dave = try await homes.registered("dave")
        let frank = try await homes.registered("frank")
        try await dave.createGroup("g")
        let ghost = try Self.offerGhost(for: "frank", on: homes)

        let warnings = try await dave.addReporting(["frank"], to: "g")
        let sentence =
            "The server offered a device for frank that frank's signed device list does not contain; it was not added."
        #expect(warnings == [sentence])
        // The group holds dave and frank's one listed device, not the ghost.
        let leaves = try await dave.group("g").tree.members.map(\.leaf.signatureKey)
        #expect(leaves.count == 2)
        #expect(!leaves.contains(ghost.publicKey))
        #expect(try await dave.members("g") == ["dave", "frank"])
        #expect(try await homes.lines(dave).contains(sentence))
        #expect(try await homes.summary(dave).warnings.contains(sentence))
        // frank's real device joins and reads what follows.
        try await frank.sync()
        _ = try await dave.send("only for frank's listed devices", to: "g")
        try await frank.sync()
        #expect(try await homes.texts(frank) == ["only for frank's listed devices"])
        await homes.stop([dave, frank])
    }

    @Test func aServerOfferingOnlyGhostsAddsNobody() async throws {
        let homes = try await HostileHomes()
        let dave = try await homes.registered("dave")
        let frank = try await homes.registered("frank")
        try await dave.createGroup("g")
        // The server withholds frank's real device: only the ghost is offered.
        _ = try Self.offerGhost(for: "frank", on: homes, only: true)
        await #expect(throws: ClientError.noListedDevices(user: "frank")) { try await dave.add(["frank"], to: "g") }
        #expect(try await dave.members("g") == ["dave"])
        await homes.stop([dave, frank])
    }

    @Test func tamperedReplayedAndReSignedListsAreRefusedWithASentence() async throws {
        let homes = try await HostileHomes()
        let dave = try await homes.registered("dave")
        let frank = try await homes.registered("frank")
        try await dave.createGroup("g")
        try await dave.createGroup("h")
        let version1 = try Self.storedList(of: "frank", on: homes)
        // A bit flipped in the list is refused on first contact, before anything is pinned.
        var flipped = version1
        flipped[flipped.count - 1] ^= 0x01
        Self.serveDeviceList(flipped, of: "frank", on: homes)
        await #expect(throws: ClientError.deviceList(user: "frank", .badSignature)) {
            try await dave.add(["frank"], to: "g")
        }
        // The real list: frank is added and his identity key pinned (version 2 after linking).
        homes.proxy.setHTTPRewrite(nil)
        _ = try await Self.linkDevice(of: frank, user: "frank", on: homes)
        try await dave.add(["frank"], to: "g")

        // Replaying version 1 is refused.
        Self.serveDeviceList(version1, of: "frank", on: homes)
        await #expect(throws: ClientError.deviceList(user: "frank", .staleVersion(known: 2, offered: 1))) {
            try await dave.add(["frank"], to: "h")
        }
        // A list for frank signed by the operator's own identity key, naming a ghost.
        let operatorIdentity = AccountIdentity()
        let ghost = DeviceEntry(
            signatureKey: Self.suite.generateSignatureKeyPair().publicKey.bytes,
            name: "x",
            addedAt: 1
        )
        let forged = try operatorIdentity.sign(
            try DeviceList(user: "frank", identityKey: operatorIdentity.publicKey, version: 9, entries: []).adding(
                ghost
            )
        )
        Self.serveDeviceList(try forged.encoded(), of: "frank", on: homes)
        let refusal = await #expect(throws: ClientError.self) { try await dave.add(["frank"], to: "h") }
        #expect(refusal == .deviceList(user: "frank", .identityKeyChanged))
        #expect(refusal?.description.contains("frank's identity key changed") == true)
        #expect(try await dave.members("h") == ["dave"])
        await homes.stop([dave, frank])
    }

    @Test func linkingADeviceLeavesTheSafetyNumberUnchanged() async throws {
        let homes = try await HostileHomes()
        let dave = try await homes.registered("dave")
        let frank = try await homes.registered("frank")
        let before = try await dave.verify("frank")
        #expect(try await frank.verify("dave").number == before.number)
        _ = try await Self.linkDevice(of: frank, user: "frank", on: homes)
        let after = try await dave.verify("frank")
        #expect(after.number == before.number)
        #expect(!after.changed)
        await homes.stop([dave, frank])
    }
}
