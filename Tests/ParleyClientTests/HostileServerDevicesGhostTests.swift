import Foundation
import GRDB
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient
@testable import ParleyServer

/// A hostile operator colluding with an admin slips a ghost device into a group (issue 14 item 4):
/// the operator stores a list of its own signing so the server lets the Add through, the admin's
/// client commits it without asking the list, and the proxy keeps serving the user's real list.
/// Every other member checks the added leaf against that list and says so in the group's history.
@Suite(.serialized) struct HostileServerDevicesGhostTests {
    static let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// A KeyPackage for a device of `user` whose key only the operator holds, and the server's
    /// check disarmed: a list naming it, signed by an identity of the operator's, stored as the
    /// latest. Clients still get the real list (`real`), as the proxy serves it.
    static func ghost(of user: String, on homes: HostileHomes) throws -> KeyPackage {
        let keys = suite.generateSignatureKeyPair()
        let storage = homes.proxy.upstream.storage
        let userID = try #require(try storage.user(named: user)).id
        let deviceID = try storage.device(userID: userID, signatureKey: keys.publicKey.bytes)  // a row for the ghost
        let real = try #require(try storage.deviceList(ofUser: userID))
        let operatorIdentity = AccountIdentity()
        let forged = try operatorIdentity.sign(
            try DeviceList(user: user, identityKey: operatorIdentity.publicKey, version: 99, entries: []).adding(
                DeviceEntry(signatureKey: keys.publicKey.bytes, name: "ghost", addedAt: 1)
            )
        )
        // As the operator edits the database: the server itself would refuse another identity key.
        let pool = try #require(storage as? SQLiteStorage).pool
        try pool.write { db in
            try db.execute(
                sql: "UPDATE device_lists SET identity_key = ?, version = 99, list = ? WHERE user_id = ?",
                arguments: [Data(operatorIdentity.publicKey), Data(try forged.encoded()), userID]
            )
        }
        homes.proxy.setHTTPRewrite { method, path, _, body in
            guard method == "GET", path.hasSuffix("/users/\(user)/devices") else { return body }
            return (try? WireJSON.encode(API.DeviceListBody(deviceList: Data(real.data)))) ?? body
        }
        let package = try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array(user.utf8)),
            signatureKeys: keys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        ).keyPackage
        try storage.addKeyPackages(
            deviceID: deviceID,
            [
                StoredKeyPackage(
                    reference: try package.reference(suite),
                    data: try MLSMessage.keyPackage(package).tlsEncoded(),
                    lastResort: false
                )
            ]
        )
        return package
    }

    @Test func aGhostDeviceAColludingAdminAddsIsFlaggedByEveryOtherMember() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        let ghost = try Self.ghost(of: "bob", on: homes)
        // The colluding admin's client commits the ghost without asking bob's list.
        try await alice.requireEngine().commit(in: "g", CommitOptions(add: [ghost], includePendingProposals: false))
        try await carol.sync()
        try await bob.sync()
        let warning = GroupEngine.ghostWarning("bob")
        #expect(warning.hasPrefix("The server or an admin added a device of bob that bob's signed device list"))
        for member in [carol, bob] {
            #expect(try await homes.lines(member).contains(warning))
            #expect(try await homes.summary(member).warnings.contains(warning))
        }
        // No "linked a device" line: the ghost is no device of bob's.
        #expect(try await homes.lines(carol).allSatisfy { !$0.contains("linked a device") })
        await homes.stop([alice, bob, carol])
    }

    /// A member whose check finds the list withheld or replaced says so instead of staying silent.
    @Test func aListTheServerReplacesWhileAGhostIsAddedIsAWarningToo() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        _ = try await carol.verify("bob")  // carol pins bob's identity key
        let ghost = try Self.ghost(of: "bob", on: homes)
        homes.proxy.setHTTPRewrite(nil)  // now the operator's own list is served
        try await alice.requireEngine().commit(in: "g", CommitOptions(add: [ghost], includePendingProposals: false))
        try await carol.sync()
        let lines = try await homes.lines(carol)
        #expect(lines.contains { $0.hasPrefix("A device of bob changed here, but bob's device list was refused") })
        await homes.stop([alice, bob, carol])
    }
}
