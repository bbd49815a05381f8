import Foundation
import GRDB
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// Linking a device through a real server: the code, the approval, groups and history on the new
/// device; and a hostile operator who edits the server's database to swap keys or move a bundle.
@Suite(.serialized) struct LinkTests {
    /// The server's own database, as an operator with shell access edits it.
    func serverDatabase(_ harness: Harness) throws -> DatabaseQueue {
        try DatabaseQueue(path: harness.root + "/server/parley.sqlite")
    }

    func text(_ history: [HistoryEntry]) -> [String] { history.filter { $0.kind == .text }.map(\.text) }

    /// Starts linking `home` as a new device of `user` (no login: it may not log in yet).
    func start(
        _ home: ParleyClient,
        _ user: String,
        _ harness: Harness,
        name: String = "laptop"
    ) async throws
        -> LinkCode
    {
        try await home.startLink(server: harness.url, username: user, password: "password of \(user)", deviceName: name)
    }

    /// What `parley link` does after showing the code: polls until approved and the bundle is in.
    func waitForLink(_ home: ParleyClient, _ user: String) async throws -> LinkCompletion {
        for _ in 0..<300 {
            if let done = try await home.finishLink(password: "password of \(user)") { return done }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw LinkError.noLinkInProgress
    }

    /// Logs the new device in as soon as the account's list names it (what `finishLink` does
    /// first), without fetching the bundle, so a test can tamper with it in between.
    func loginWhenListed(_ home: ParleyClient, _ user: String, _ harness: Harness) async throws {
        for _ in 0..<300 {
            do {
                return try await home.login(server: harness.url, username: user, password: "password of \(user)")
            } catch ClientError.server(let body) where body.code == .deviceNotListed {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Both halves at once, as two people (or one at two screens) would run them.
    func link(
        _ home: ParleyClient,
        code: LinkCode,
        approvedBy approver: ParleyClient,
        messages: Int = 1_000
    ) async throws -> (LinkApproval, LinkCompletion) {
        let user = try #require(await approver.username)
        async let done = waitForLink(home, user)
        let approval = try await approver.approveLink(
            code: code.description,
            deviceName: "desktop",
            messagesPerGroup: messages
        )
        return (approval, try await done)
    }

    @Test func anApprovedDeviceJoinsEveryGroupReadsItsHistoryAndNewMessages() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        try await alice.createGroup("side")
        for line in ["one", "two", "three"] { _ = try await alice.send(line, to: "g") }
        _ = try await bob.send("four", to: "g")
        _ = try await alice.send("note to self", to: "side")
        try await alice.sync()

        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        #expect(try await laptop.finishLink(password: "password of alice") == nil)  // not approved yet

        let (approval, done) = try await link(laptop, code: code, approvedBy: alice, messages: 3)
        #expect(approval.deviceName == "laptop")
        #expect(approval.addedTo.sorted() == ["g", "side"])
        #expect(approval.notAddedTo.isEmpty)
        #expect(approval.messages == 4)

        #expect(done.from == "desktop")
        #expect(done.imported == ["g": 3, "side": 1])
        #expect(done.skipped.isEmpty)
        let history = try await laptop.history("g")
        let transferred = history.filter { $0.note == "from your device desktop" }
        #expect(transferred.map(\.text) == ["two", "three", "four"])
        #expect(transferred.map(\.sender) == ["alice", "alice", "bob"])
        #expect(text(try await laptop.history("side")) == ["note to self"])

        // bob's history says alice has a new device, by the name her signed list gives it.
        try await bob.sync()
        #expect(try await bob.history("g").map(\.text).contains("alice linked a device: laptop"))
        // New messages reach the new device in every group, from others and from the old device.
        _ = try await bob.send("welcome, laptop", to: "g")
        _ = try await alice.send("side note", to: "side")
        try await laptop.sync()
        #expect(text(try await laptop.history("g")).last == "welcome, laptop")
        #expect(text(try await laptop.history("side")).last == "side note")
        // And the new device speaks in the group like any other.
        _ = try await laptop.send("hello from the laptop", to: "g")
        try await bob.sync()
        #expect(text(try await bob.history("g")).last == "hello from the laptop")
        // The transferred lines were never sent: bob saw each of them once, as sent originally.
        #expect(text(try await bob.history("g")).filter { $0 == "two" }.count == 1)
        // The link is over: the home forgets its pending request.
        await #expect(throws: LinkError.noLinkInProgress) { try await laptop.finishLink(password: "password of alice") }
        // parley devices: both, this one marked, the laptop seen by the server (it just synced).
        let listed = try await alice.devices()
        #expect(listed.filter(\.isThisDevice).count == 1 && listed.first { $0.isThisDevice }?.name != "laptop")
        let laptopSeen = try #require(listed.first { $0.name == "laptop" })
        #expect(laptopSeen.lastSeen != nil && laptopSeen.revokedAt == nil)
        // The laptop holds the account identity now: it signs the list itself (approves the next device).
        let tablet = try harness.client("alice", home: "alice-tablet")
        let tabletCode = try await start(tablet, "alice", harness, name: "tablet")
        let (fromLaptop, _) = try await link(tablet, code: tabletCode, approvedBy: laptop)
        #expect(fromLaptop.addedTo.sorted() == ["g", "side"])
        let names = try await alice.devices().map(\.name)
        #expect(names.count == 3 && names.contains("laptop") && names.contains("tablet"))
        await tablet.close()
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// The operator swaps the HPKE key (to read the history) or the key behind the request (to
    /// link a ghost device of its own): the code no longer matches and nothing is approved.
    @Test func aRequestWhoseKeysTheServerSwappedIsRefusedAtApproval() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        try await alice.sync()  // bob's self-update after joining moves the epoch first
        let epochBefore = await alice.groupSummaries().first { $0.name == "g" }?.epoch
        let database = try serverDatabase(harness)
        let operatorKey = Data((try API.Login.suite.generateHPKEKeyPair()).publicKey.bytes)
        try await database.write { db in
            try db.execute(sql: "UPDATE link_requests SET hpke_key = ?", arguments: [operatorKey])
        }
        await #expect(throws: LinkError.codeMismatch) {
            try await alice.approveLink(code: code.description, deviceName: "desktop")
        }
        // A ghost device of the operator's, put behind the request.
        let ghost = Data(API.Login.suite.generateSignatureKeyPair().publicKey.bytes)
        try await database.write { db in
            try db.execute(sql: "UPDATE link_requests SET signature_key = ?", arguments: [ghost])
        }
        await #expect(throws: LinkError.codeMismatch) {
            try await alice.approveLink(code: code.description, deviceName: "desktop")
        }
        // Nothing happened: the list names no new device, no commit moved the group's epoch, no bundle waits.
        #expect(try await alice.devices().count == 1)
        try await alice.sync()
        #expect(await alice.groupSummaries().first { $0.name == "g" }?.epoch == epochBefore)
        #expect(try await laptop.finishLink(password: "password of alice") == nil)
        let bundles = try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM link_bundles") }
        #expect(bundles == 0)
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// The laptop's request as the operator reads it from its database (everything but the secret).
    func storedRequest(of laptop: ParleyClient, _ harness: Harness) async throws -> (LinkRequest, String) {
        let laptopKey = try await laptop.signatureKeys().publicKey.bytes
        return try await serverDatabase(harness).read { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT lookup_id, hpke_key, nonce FROM link_requests"))
            let request = LinkRequest(
                username: "alice",
                deviceName: "laptop",
                signatureKey: Data(laptopKey),
                hpkePublicKey: row["hpke_key"],
                nonce: row["nonce"]
            )
            return (request, row["lookup_id"])
        }
    }

    /// What the operator seals to the laptop: signed by a ghost of its own, carrying an identity
    /// of its own and its best guess of the code's secret (it never saw the secret).
    func forgedBundle(
        for request: LinkRequest,
        lookupID: String,
        ghost: SignatureKeyPair,
        identity: AccountIdentity
    ) throws -> [UInt8] {
        let guess = try LinkCode(
            lookupID: lookupID,
            request: request,
            secret: LinkCode.randomSecret(API.Login.suite.randomBytes(LinkCode.secretRandomBytes))
        )
        return try HistoryBundle(
            sender: ghost.publicKey,
            senderDeviceName: "desktop",
            request: request,
            code: guess,
            createdAt: 0,
            accountIdentitySeed: identity.seed,
            groups: [.init(group: "g", lines: [.init(seq: 1, time: 1, sender: "bob", text: "send me your password")])]
        ).sealed(signingWith: ghost.privateKey)
    }

    func putBundle(_ sealed: [UInt8], for key: [UInt8], _ harness: Harness) async throws {
        try await serverDatabase(harness).write { db in
            try db.execute(sql: "DELETE FROM link_bundles")
            try db.execute(
                sql: "INSERT INTO link_bundles (user_id, signature_key, data, expires_at) VALUES "
                    + "((SELECT id FROM users WHERE name = 'alice'), ?, ?, ?)",
                arguments: [Data(key), Data(sealed), Int64.max]
            )
        }
    }

    /// Review finding 1, performed: the operator fakes a whole link on a fresh home, with no
    /// approval by alice at all. It knows the new device's keys and nonce from the request, makes
    /// an identity and a ghost device of its own, signs a list naming the ghost and the laptop and
    /// serves it as alice's (so the state poll says approved and the laptop logs in), and seals a
    /// ghost-signed bundle with that identity to the laptop. Before the link secret, the laptop
    /// (no pin of its own account yet) accepted all of it. Now the bundle lacks the secret of the
    /// code shown on the laptop: refused with a sentence, the link ended, nothing kept.
    @Test func aLinkTheServerFakesOnAFreshHomeIsRefused() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let laptop = try harness.client("alice", home: "alice-laptop")
        _ = try await start(laptop, "alice", harness)
        let (request, lookupID) = try await storedRequest(of: laptop, harness)
        let ghost = API.Login.suite.generateSignatureKeyPair()
        let operatorIdentity = AccountIdentity()
        let forgedList = try operatorIdentity.sign(
            try DeviceList.first(
                user: "alice",
                identityKey: operatorIdentity.publicKey,
                device: DeviceEntry(signatureKey: ghost.publicKey.bytes, name: "desktop", addedAt: 1)
            ).adding(DeviceEntry(signatureKey: [UInt8](request.signatureKey), name: "laptop", addedAt: 2))
        )
        try await serverDatabase(harness).write { db in
            try db.execute(
                sql: "UPDATE device_lists SET identity_key = ?, version = ?, list = ? "
                    + "WHERE user_id = (SELECT id FROM users WHERE name = 'alice')",
                arguments: [Data(operatorIdentity.publicKey), 2, Data(try forgedList.encoded())]
            )
        }
        try await putBundle(
            try forgedBundle(for: request, lookupID: lookupID, ghost: ghost, identity: operatorIdentity),
            for: [UInt8](request.signatureKey),
            harness
        )
        await #expect(throws: LinkError.linkSecretMismatch) {
            try await laptop.finishLink(password: "password of alice")
        }
        #expect(LinkError.linkSecretMismatch.description.contains("none of your devices made it"))
        // One guess per link: the link is over, and the laptop kept no identity to sign lists with.
        await #expect(throws: LinkError.noLinkInProgress) { try await laptop.finishLink(password: "password of alice") }
        await #expect(throws: ClientError.noAccountIdentity) {
            try await laptop.approveDevice(signatureKey: ghost.publicKey.bytes, name: "ghost")
        }
        #expect(((try? await laptop.history("g")) ?? []).allSatisfy { $0.text != "send me your password" })
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// After alice's genuine approval, the operator replaces the bundle with one of its own (its
    /// identity, a ghost sender, a guessed secret): refused whole, the link ended, no line or identity kept.
    @Test func aBundleTheServerForgedIsRefused() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await alice.send("genuine", to: "g")
        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        let (request, lookupID) = try await storedRequest(of: laptop, harness)
        async let loggedIn: Void = loginWhenListed(laptop, "alice", harness)
        _ = try await alice.approveLink(code: code.description, deviceName: "desktop")
        try await loggedIn
        let ghost = API.Login.suite.generateSignatureKeyPair()
        let forged = try forgedBundle(for: request, lookupID: lookupID, ghost: ghost, identity: AccountIdentity())
        try await putBundle(forged, for: [UInt8](request.signatureKey), harness)
        await #expect(throws: LinkError.linkSecretMismatch) {
            try await laptop.finishLink(password: "password of alice")
        }
        // The laptop is in the group (alice's genuine approval added it), but holds no forged line
        // and no identity: it cannot sign the list.
        try await laptop.sync()
        #expect(!text(try await laptop.history("g")).contains("send me your password"))
        await #expect(throws: ClientError.noAccountIdentity) {
            try await laptop.approveDevice(signatureKey: ghost.publicKey.bytes, name: "ghost")
        }
        _ = try await bob.send("after the link", to: "g")
        try await laptop.sync()
        #expect(text(try await laptop.history("g")).last == "after the link")
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// Review finding 3: the new device fetched its bundle, then failed (here the account's list
    /// is briefly not served, so the identity cannot be checked). The server keeps the bundle
    /// until the device acknowledges it, so the next try gets it again and the history arrives;
    /// once processed it is deleted.
    @Test func aFailureAfterTheBundleIsFetchedLosesNothingAndARetrySucceeds() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await alice.send("kept for the laptop", to: "g")
        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        async let loggedIn: Void = loginWhenListed(laptop, "alice", harness)
        _ = try await alice.approveLink(code: code.description, deviceName: "desktop")
        try await loggedIn
        let database = try serverDatabase(harness)
        let saved: (Int64, Data, Int64, Data) = try #require(
            try await database.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM device_lists").map {
                    ($0["user_id"], $0["identity_key"], $0["version"], $0["list"])
                }
            }
        )
        try await database.write { db in try db.execute(sql: "DELETE FROM device_lists") }
        await #expect(throws: LinkError.bundleIdentityMismatch) {
            try await laptop.finishLink(password: "password of alice")
        }
        let bundles = {
            try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM link_bundles") }
        }
        #expect(try await bundles() == 1)
        try await database.write { db in
            try db.execute(
                sql: "INSERT INTO device_lists (user_id, identity_key, version, list) VALUES (?, ?, ?, ?)",
                arguments: [saved.0, saved.1, saved.2, saved.3]
            )
        }
        let done = try #require(try await laptop.finishLink(password: "password of alice"))
        #expect(done.imported == ["g": 1])
        #expect(
            try await laptop.history("g").filter { $0.note == "from your device desktop" }.map(\.text) == [
                "kept for the laptop"
            ]
        )
        #expect(try await bundles() == 0)
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// Review finding 2: the new device has never seen bob, so on first contact it would pin
    /// whatever the server serves as bob's list. The operator serves one signed by an identity of
    /// its own, naming a ghost, from before the laptop processes its bundle. The bundle carries
    /// alice's pins, so the laptop holds bob's real identity key: adding "bob" is refused with a
    /// sentence and the ghost is never added; with bob's real list served again, bob is added.
    @Test func theNewDeviceStartsFromTheApprovingDevicesContactPins() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        async let loggedIn: Void = loginWhenListed(laptop, "alice", harness)
        _ = try await alice.approveLink(code: code.description, deviceName: "desktop")
        try await loggedIn
        let database = try serverDatabase(harness)
        let bobsRow = "WHERE user_id = (SELECT id FROM users WHERE name = 'bob')"
        let genuine: (Data, Int64, Data) = try #require(
            try await database.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM device_lists " + bobsRow).map {
                    ($0["identity_key"], $0["version"], $0["list"])
                }
            }
        )
        let operatorIdentity = AccountIdentity()
        let ghost = API.Login.suite.generateSignatureKeyPair()
        let forged = try operatorIdentity.sign(
            try DeviceList.first(
                user: "bob",
                identityKey: operatorIdentity.publicKey,
                device: DeviceEntry(signatureKey: ghost.publicKey.bytes, name: "phone", addedAt: 1)
            )
        )
        func serveBob(_ identityKey: Data, _ version: Int64, _ list: Data) async throws {
            try await database.write { db in
                try db.execute(
                    sql: "UPDATE device_lists SET identity_key = ?, version = ?, list = ? " + bobsRow,
                    arguments: [identityKey, version, list]
                )
            }
        }
        try await serveBob(Data(operatorIdentity.publicKey), 1, Data(try forged.encoded()))
        _ = try await waitForLink(laptop, "alice")
        try await laptop.createGroup("h")
        let refusal = await #expect(throws: ClientError.self) { try await laptop.add(["bob"], to: "h") }
        #expect(refusal == .deviceList(user: "bob", .identityKeyChanged))
        #expect(refusal?.description.contains("bob's identity key changed") == true)
        #expect(try await laptop.members("h") == ["alice"])
        try await serveBob(genuine.0, genuine.1, genuine.2)
        try await laptop.add(["bob"], to: "h")
        #expect(try await laptop.members("h").sorted() == ["alice", "bob"])
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// Review finding 4: alice's phone is on her list but in no group. Adding the laptop to each
    /// group (and every poll while the laptop has no KeyPackage yet) used to claim a KeyPackage of
    /// every listed device not in the group and throw the phone's away. Now the claim skips every
    /// other device of the account: the phone's one-time KeyPackages are all still there.
    @Test func addingTheNewDeviceSpendsNoOtherDevicesKeyPackages() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        try await alice.createGroup("side")
        let phone = try harness.client("alice", home: "alice-phone")
        _ = try await start(phone, "alice", harness, name: "phone")
        let phoneKey = try await phone.signatureKeys().publicKey.bytes
        try await alice.approveDevice(signatureKey: phoneKey, name: "phone")
        try await phone.login(server: harness.url, username: "alice", password: "password of alice")
        let database = try serverDatabase(harness)
        let phoneStock = {
            try await database.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM key_packages k JOIN devices d ON d.id = k.device_id "
                        + "WHERE d.signature_key = ? AND k.claimed = 0 AND k.last_resort = 0",
                    arguments: [Data(phoneKey)]
                ) ?? 0
            }
        }
        let before = try await phoneStock()
        #expect(before > 0)
        let laptop = try harness.client("alice", home: "alice-laptop")
        let code = try await start(laptop, "alice", harness)
        let (approval, _) = try await link(laptop, code: code, approvedBy: alice)
        #expect(approval.addedTo.sorted() == ["g", "side"])
        #expect(try await phoneStock() == before)
        for client in [alice, bob, laptop, phone] { await client.close() }
        await harness.stop()
    }

    /// The operator hands the laptop's sealed bundle to another new device: it cannot be opened there.
    @Test func aBundleMovedToAnotherDeviceCannotBeOpened() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await alice.send("secret history", to: "g")
        let laptop = try harness.client("alice", home: "alice-laptop")
        let phone = try harness.client("alice", home: "alice-phone")
        let laptopCode = try await start(laptop, "alice", harness)
        _ = try await start(phone, "alice", harness, name: "phone")
        async let loggedIn: Void = loginWhenListed(laptop, "alice", harness)
        _ = try await alice.approveLink(code: laptopCode.description, deviceName: "desktop")
        try await loggedIn
        let phoneKey = try await phone.signatureKeys().publicKey.bytes
        try await alice.approveDevice(signatureKey: phoneKey, name: "phone")
        try await phone.login(server: harness.url, username: "alice", password: "password of alice")
        let database = try serverDatabase(harness)
        try await database.write { db in
            try db.execute(sql: "UPDATE link_bundles SET signature_key = ?", arguments: [Data(phoneKey)])
        }
        await #expect(throws: LinkError.bundleNotForThisDevice) {
            try await phone.finishLink(password: "password of alice")
        }
        #expect(((try? await phone.history("g")) ?? []).allSatisfy { $0.text != "secret history" })
        for client in [alice, bob, laptop, phone] { await client.close() }
        await harness.stop()
    }

    /// Revoking a linked device while it is connected: its WebSocket closes at once, it cannot
    /// read what follows, it is gone from every group, and the others' histories say so.
    @Test func aDeviceRevokedWhileConnectedIsCutOffAtOnceAndLeavesEveryGroup() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        try await alice.createGroup("side")
        let laptop = try harness.client("alice", home: "alice-laptop")
        _ = try await link(laptop, code: try await start(laptop, "alice", harness), approvedBy: alice)
        try await laptop.sync()
        let engine = try await laptop.requireEngine()
        #expect(await !engine.isConnectionClosed)
        let laptopKey = try await laptop.signatureKeys().publicKey.bytes

        let removedFrom = try await alice.revokeDevice(named: "laptop")
        #expect(removedFrom.sorted() == ["g", "side"])
        var closed = false
        for _ in 0..<50 where !closed {
            closed = await engine.isConnectionClosed
            if !closed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(closed)
        _ = try await bob.send("after the revocation", to: "g")
        await #expect(throws: ClientError.self) { try await laptop.sync() }
        #expect(!text(try await laptop.history("g")).contains("after the revocation"))
        for name in ["g", "side"] {
            let leaves = try await alice.group(name).tree.members.map(\.leaf.signatureKey.bytes)
            #expect(!leaves.contains(laptopKey))
        }
        try await bob.sync()
        #expect(try await bob.history("g").map(\.text).contains("alice removed a device: laptop"))
        #expect(try await alice.devices().first { $0.name == "laptop" }?.revokedAt != nil)
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// bob's list revokes his laptop but no commit of his follows (his device went offline):
    /// alice, admin of the group, removes the laptop when she next syncs, and only it.
    @Test func aRevocationWhoseCommitsNeverCameIsCompletedByAnAdminsNextSync() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let laptop = try harness.client("bob", home: "bob-laptop")
        _ = try await link(laptop, code: try await start(laptop, "bob", harness), approvedBy: bob)
        let laptopKey = try await laptop.signatureKeys().publicKey.bytes
        try await alice.sync()
        #expect(try await alice.group("g").tree.members.contains { $0.leaf.signatureKey.bytes == laptopKey })

        // What `devices revoke` publishes, without the commits that normally follow.
        let identity = try #require(try await bob.vault?.accountIdentity())
        let list = try await bob.ownDeviceList()
        let revoked = try identity.sign(try list.revoking(signatureKey: laptopKey, at: ParleyClient.nowMilliseconds()))
        let (api, token) = try await bob.requireAPI()
        let body = try WireJSON.encode(API.DeviceListBody(deviceList: Data(try revoked.encoded())))
        try await api.request(.PUT, "/v1/devices", token: token, body: body)
        await bob.close()

        try await alice.requireEngine().setDeviceSweepInterval(0)
        try await alice.sync()
        let members = try await alice.group("g").tree.members.map(\.leaf.signatureKey.bytes)
        #expect(!members.contains(laptopKey))
        #expect(members.count == 2)  // alice and bob's first device stay
        #expect(try await alice.history("g").map(\.text).contains("bob removed a device: laptop"))
        for client in [alice, laptop] { await client.close() }
        await harness.stop()
    }
}
