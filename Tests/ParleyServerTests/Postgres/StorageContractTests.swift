import Foundation
import Testing

@testable import ParleyServer

/// The `ServerStorage` contract, run against SQLite and PostgreSQL alike.
@Suite(.storageThreads) struct StorageContractTests {
    /// A storage with two users, a device each, and a group of alice's that bob joined at seq 1.
    struct Fixture {
        let storage: any ServerStorage
        let alice: Int64, bob: Int64
        let aliceDevice: Int64, bobDevice: Int64
        let group: Int64

        init(_ kind: StorageKind) throws {
            storage = try kind.make()
            alice = try storage.createUser(name: "alice", passwordHash: [1], salt: [2])
            bob = try storage.createUser(name: "bob", passwordHash: [3], salt: [4])
            aliceDevice = try storage.device(userID: alice, signatureKey: [1])
            bobDevice = try storage.device(userID: bob, signatureKey: [2])
            group = try storage.createGroup(
                GroupRecord(id: 0, name: "g", mlsGroupID: [9], state: [0], lastSeq: 0, createdAt: 0),
                creatorDevice: aliceDevice
            )
            _ = try storage.append(
                LogAppend(groupID: group, time: 1_000, senderDevice: aliceDevice, data: [1], joinedDevices: [bobDevice])
            )
        }

        func send(_ byte: UInt8, time: UInt64 = 2_000, clientID: String? = nil) throws -> UInt64 {
            try storage.append(
                LogAppend(groupID: group, time: time, senderDevice: aliceDevice, data: [byte], clientID: clientID)
            )
        }
    }

    @Test(arguments: StorageKind.allCases)
    func accountsNamesAndTombstones(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        #expect(throws: StorageError.conflict("user exists")) {
            try storage.createUser(name: "alice", passwordHash: [1], salt: [2])
        }
        #expect(try storage.user(named: "alice")?.passwordHash == [1])
        #expect(try storage.users().map(\.name) == ["alice", "bob"])
        // Names are compared byte for byte: a decomposed lookalike is another name.
        #expect(try storage.user(named: "ali\u{0063}e\u{301}") == nil)
        if kind == .postgres {
            // PostgreSQL text cannot hold a NUL: such a name names nobody and is refused as a new
            // one, rather than failing the query. (SQLite through GRDB cuts it at the NUL; the
            // account service admits only [a-z0-9._-] names, so neither is reachable from a client.)
            #expect(try storage.user(named: "alice\u{0}") == nil)
            #expect(throws: StorageError.outOfRange("name")) {
                try storage.createUser(name: "a\u{0}b", passwordHash: [1], salt: [2])
            }
        }
        #expect(try storage.removeUser(named: "bob"))
        #expect(throws: StorageError.retired) { try storage.createUser(name: "bob", passwordHash: [1], salt: [2]) }
        #expect(throws: StorageError.retired) { try storage.device(userID: fixture.alice, signatureKey: [2]) }
    }

    @Test(arguments: StorageKind.allCases)
    func devicesSessionsAndTheirBound(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        #expect(
            try storage.registerDevice(userID: fixture.alice, signatureKey: [1], maxDevices: 1) == fixture.aliceDevice
        )
        #expect(throws: StorageError.limitReached) {
            try storage.registerDevice(userID: fixture.alice, signatureKey: [7], maxDevices: 1)
        }
        #expect(throws: StorageError.conflict("key belongs to another user")) {
            try storage.registerDevice(userID: fixture.bob, signatureKey: [1], maxDevices: 5)
        }
        try storage.createSession(tokenHash: [5, 5], deviceID: fixture.aliceDevice, expiresAt: 10_000)
        #expect(try storage.session(tokenHash: [5, 5], now: 9_999)?.device.userName == "alice")
        #expect(try storage.session(tokenHash: [5, 5], now: 10_000) == nil)
        try storage.deleteSessions(deviceID: fixture.aliceDevice)
        #expect(try storage.session(tokenHash: [5, 5], now: 0) == nil)
        #expect(try storage.removeDevice(userID: fixture.bob, deviceID: fixture.bobDevice))
        #expect(try storage.devices(ofUser: fixture.bob).isEmpty)
        #expect(throws: StorageError.retired) { try storage.device(userID: fixture.bob, signatureKey: [2]) }
    }

    @Test(arguments: StorageKind.allCases)
    func keyPackagesAreHandedOutOnceThenTheLastResort(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        // A pool per suite: bytes 7–8 of the stored MLSMessage are the suite (StoredKeyPackage.suiteOffset).
        let package = { (suite: UInt16, tag: UInt8) -> [UInt8] in
            [0, 1, 0, 5, 0, 1] + StoredKeyPackage.suiteBytes(suite) + [tag]
        }
        let (standard, postQuantum): (UInt16, UInt16) = (1, 0x4D)
        try storage.addKeyPackages(
            deviceID: fixture.bobDevice,
            [
                StoredKeyPackage(reference: [1], data: package(standard, 11), lastResort: false),
                StoredKeyPackage(reference: [2], data: package(standard, 12), lastResort: false),
                StoredKeyPackage(reference: [3], data: package(standard, 13), lastResort: true),
                StoredKeyPackage(reference: [4], data: package(postQuantum, 21), lastResort: false),
                StoredKeyPackage(reference: [5], data: package(postQuantum, 22), lastResort: true),
            ]
        )
        #expect(try storage.availableKeyPackages(deviceID: fixture.bobDevice, suite: standard) == 2)
        #expect(try storage.availableKeyPackages(deviceID: fixture.bobDevice, suite: postQuantum) == 1)
        let claims = try (0..<4).map { _ in
            try storage.claimKeyPackage(deviceID: fixture.bobDevice, suite: standard)?.data.last
        }
        #expect(claims == [11, 12, 13, 13])
        let pqClaims = try (0..<2).map { _ in
            try storage.claimKeyPackage(deviceID: fixture.bobDevice, suite: postQuantum)?.data.last
        }
        #expect(pqClaims == [21, 22])
        #expect(try storage.keyPackageOwner(reference: [3]) == fixture.bobDevice)
        #expect(try storage.lastResortKeyPackage(deviceID: fixture.bobDevice, suite: standard)?.reference == [3])
        // A new last resort replaces only its own suite's.
        try storage.addKeyPackages(
            deviceID: fixture.bobDevice,
            [StoredKeyPackage(reference: [6], data: package(postQuantum, 23), lastResort: true)]
        )
        #expect(try storage.lastResortKeyPackage(deviceID: fixture.bobDevice, suite: standard)?.reference == [3])
        #expect(try storage.lastResortKeyPackage(deviceID: fixture.bobDevice, suite: postQuantum)?.reference == [6])
        #expect(try storage.claimKeyPackage(deviceID: fixture.bobDevice, suite: 3) == nil)
    }

    @Test(arguments: StorageKind.allCases)
    func theLogOrdersPagesAndAnswersAClientIDOnce(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        for byte in UInt8(2)...6 { #expect(try fixture.send(byte, clientID: "id-\(byte)") == UInt64(byte)) }
        #expect(try storage.messages(groupID: fixture.group, after: 2, through: 4, limit: 10).map(\.seq) == [3, 4])
        #expect(try storage.messages(groupID: fixture.group, after: 0, through: nil, limit: 2).map(\.seq) == [1, 2])
        #expect(try storage.messages(groupID: fixture.group, after: .max, through: nil, limit: 9).isEmpty)
        let stored = try storage.message(groupID: fixture.group, senderDevice: fixture.aliceDevice, clientID: "id-4")
        #expect(stored?.seq == 4 && stored?.sender == "alice" && stored?.clientID == "id-4")
        #expect(throws: (any Error).self) { try fixture.send(9, clientID: "id-4") }
        #expect(
            try storage.message(groupID: fixture.group, senderDevice: fixture.aliceDevice, clientID: "x\u{0}") == nil
        )
        #expect(try storage.group(id: fixture.group)?.lastSeq == 6)
        #expect(try storage.storedBytes(groupID: fixture.group) == 6)
        #expect(try storage.storedBytes(userID: fixture.alice) == 6)
        #expect(try storage.memberships(ofDevice: fixture.bobDevice).map(\.joinedSeq) == [1])
    }

    @Test(arguments: StorageKind.allCases)
    func aBatchRefusesOnlyTheFailingEntryAndItsGroupsLaterOnes(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        let other = try storage.createGroup(
            GroupRecord(id: 0, name: "h", mlsGroupID: [8], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: fixture.bobDevice
        )
        _ = try fixture.send(2, clientID: "taken")
        func entry(_ group: Int64, _ device: Int64, _ byte: UInt8, _ id: String) -> LogAppend {
            LogAppend(groupID: group, time: 3_000, senderDevice: device, data: [byte], clientID: id)
        }
        // A proposal refused (as a duplicate): the later entries were checked against the state
        // it moved. (A plain application message's duplicate spares them: BatchContractTests.)
        var refused = entry(fixture.group, fixture.aliceDevice, 5, "taken")
        (refused.isProposal, refused.epoch) = (true, 0)
        let results = try storage.append(batch: [
            entry(fixture.group, fixture.aliceDevice, 3, "a"),
            entry(other, fixture.bobDevice, 4, "b"),
            refused,
            entry(fixture.group, fixture.aliceDevice, 6, "c"),
            entry(other, fixture.bobDevice, 7, "d"),
        ])
        #expect(try results[0].get() == 3)
        #expect(try results[1].get() == 1)
        #expect(throws: (any Error).self) { try results[2].get() }
        #expect(throws: StorageError.earlierRefused) { try results[3].get() }
        #expect(try results[4].get() == 2)
        #expect(
            try storage.messages(groupID: fixture.group, after: 0, through: nil, limit: 10).map(\.data) == [
                [1], [2], [3],
            ]
        )
        #expect(try storage.group(id: fixture.group)?.lastSeq == 3)
    }

    @Test(arguments: StorageKind.allCases)
    func commitsMoveTheStateAndMembershipsAcknowledgementsPrune(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        var commit = LogAppend(
            groupID: fixture.group,
            time: 2_000,
            senderDevice: fixture.aliceDevice,
            data: [2],
            newState: [42],
            welcomes: [(fixture.bobDevice, [7])],
            leftDevices: [fixture.bobDevice]
        )
        commit.epoch = 0
        #expect(try storage.append(commit) == 2)
        let group = try #require(try storage.group(named: "g"))
        #expect(group.state == [42] && group.stateSeq == 2 && group.lastSeq == 2)
        #expect(try storage.membership(groupID: fixture.group, deviceID: fixture.bobDevice)?.leftSeq == 2)
        #expect(try storage.groups(ofDevice: fixture.bobDevice).isEmpty)
        #expect(try storage.welcomes(forDevice: fixture.bobDevice).map(\.seq) == [2])
        try storage.acknowledge(deviceID: fixture.bobDevice, groupID: fixture.group, seq: 2)
        #expect(try storage.welcomes(forDevice: fixture.bobDevice).isEmpty)
        #expect(throws: StorageError.outOfRange("seq")) {
            try storage.acknowledge(deviceID: fixture.bobDevice, groupID: fixture.group, seq: .max)
        }
        try storage.acknowledge(deviceID: fixture.aliceDevice, groupID: fixture.group, seq: 2)
        #expect(try storage.prune(olderThan: 0) == 2)
        #expect(try storage.prune(olderThan: 0) == 0)
    }

    @Test(arguments: StorageKind.allCases)
    func destroyingTellsEachDeviceOnceAndDeviceListsOnlyMoveForward(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        try storage.destroyGroup(
            id: fixture.group,
            notify: [fixture.aliceDevice, fixture.bobDevice],
            notice: Data([5])
        )
        #expect(try storage.group(named: "g") == nil)
        let notices = try storage.notices(forDevice: fixture.bobDevice)
        #expect(notices.map(\.group) == ["g"] && notices.map(\.notice) == [Data([5])])
        try storage.clearNotices(forDevice: fixture.bobDevice, ids: notices.map(\.id))
        #expect(try storage.notices(forDevice: fixture.bobDevice).isEmpty)
        #expect(try storage.notices(forDevice: fixture.aliceDevice).count == 1)

        let list = StoredDeviceList(identityKey: [1], version: 1, data: [10])
        try storage.storeDeviceList(userID: fixture.alice, list)
        #expect(throws: StorageError.conflict("version not newer")) {
            try storage.storeDeviceList(userID: fixture.alice, list)
        }
        #expect(throws: StorageError.conflict("identity key differs")) {
            try storage.storeDeviceList(userID: fixture.alice, StoredDeviceList(identityKey: [2], version: 2, data: []))
        }
        try storage.storeDeviceList(userID: fixture.alice, StoredDeviceList(identityKey: [1], version: 2, data: [20]))
        #expect(try storage.deviceList(ofUser: fixture.alice)?.data == [20])
    }

    /// Link requests: one per account and key (a new one replaces it), a bounded number per
    /// account, lookup ids unique, expiry by `now`; an answer turns the request into a bundle once.
    @Test(arguments: StorageKind.allCases)
    func linkRequestsTheirBoundAndTheirAnswer(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        func request(_ lookupID: String, user: Int64, key: UInt8, expiresAt: UInt64 = 10_000) -> StoredLinkRequest {
            StoredLinkRequest(
                lookupID: lookupID,
                userID: user,
                userName: "",
                signatureKey: [key],
                deviceName: "laptop",
                hpkeKey: [key, 1],
                nonce: [key, 2],
                expiresAt: expiresAt
            )
        }
        try storage.createLinkRequest(request("a1", user: fixture.alice, key: 30), maxPending: 2, now: 1_000)
        let stored = try #require(try storage.linkRequest(lookupID: "a1", now: 1_000))
        #expect(stored.userName == "alice" && stored.signatureKey == [30] && stored.hpkeKey == [30, 1])
        #expect(stored.nonce == [30, 2] && stored.deviceName == "laptop" && stored.expiresAt == 10_000)
        #expect(try storage.linkRequest(lookupID: "a1", now: 10_000) == nil)
        // The same key again replaces its request; another account may not take its lookup id.
        try storage.createLinkRequest(request("a2", user: fixture.alice, key: 30), maxPending: 2, now: 1_000)
        #expect(try storage.linkRequest(lookupID: "a1", now: 1_000) == nil)
        #expect(throws: StorageError.conflict("lookup id in use")) {
            try storage.createLinkRequest(request("a2", user: fixture.bob, key: 40), maxPending: 2, now: 1_000)
        }
        try storage.createLinkRequest(request("a3", user: fixture.alice, key: 31), maxPending: 2, now: 1_000)
        #expect(throws: StorageError.limitReached) {
            try storage.createLinkRequest(request("a4", user: fixture.alice, key: 32), maxPending: 2, now: 1_000)
        }
        // Expired requests are deleted first, so they no longer count.
        try storage.createLinkRequest(
            request("a5", user: fixture.alice, key: 33, expiresAt: 30_000),
            maxPending: 2,
            now: 10_000
        )
        #expect(try storage.linkRequest(lookupID: "a2", now: 1_000) == nil)

        let bundle: [UInt8] = [7, 7, 7, 7]
        #expect(
            try !storage.answerLinkRequest(
                lookupID: "gone",
                bundle: bundle,
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        )
        #expect(
            try storage.answerLinkRequest(
                lookupID: "a5",
                bundle: bundle,
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        )
        #expect(try storage.linkRequest(lookupID: "a5", now: 10_000) == nil)
        #expect(
            try !storage.answerLinkRequest(
                lookupID: "a5",
                bundle: bundle,
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        )
        // A second request for a key whose bundle still waits is not answered twice.
        try storage.createLinkRequest(
            request("a6", user: fixture.alice, key: 33, expiresAt: 30_000),
            maxPending: 2,
            now: 10_000
        )
        #expect(
            try !storage.answerLinkRequest(
                lookupID: "a6",
                bundle: [1],
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        )
        // The account's waiting bundles are bounded in bytes together.
        try storage.createLinkRequest(
            request("a7", user: fixture.alice, key: 34, expiresAt: 30_000),
            maxPending: 3,
            now: 10_000
        )
        #expect(throws: StorageError.limitReached) {
            try storage.answerLinkRequest(
                lookupID: "a7",
                bundle: [1, 2, 3, 4, 5],
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        }
        #expect(try storage.linkRequest(lookupID: "a7", now: 10_000) != nil)
        #expect(
            try storage.answerLinkRequest(
                lookupID: "a7",
                bundle: [1, 2, 3, 4],
                expiresAt: 20_000,
                maxAccountBytes: 8,
                now: 10_000
            )
        )
    }

    /// A bundle is served until acknowledged or expired; the first fetch moves its expiry once;
    /// the sweep deletes expired requests and bundles and says how many.
    @Test(arguments: StorageKind.allCases)
    func linkBundlesFetchAcknowledgeAndExpire(_ kind: StorageKind) throws {
        let fixture = try Fixture(kind)
        defer { fixture.storage.closeForTest() }
        let storage = fixture.storage
        for (lookupID, key) in [("b1", UInt8(50)), ("b2", 51), ("b3", 52)] {
            let request = StoredLinkRequest(
                lookupID: lookupID,
                userID: fixture.bob,
                userName: "",
                signatureKey: [key],
                deviceName: "phone",
                hpkeKey: [1],
                nonce: [2],
                expiresAt: 5_000
            )
            try storage.createLinkRequest(request, maxPending: 5, now: 1_000)
        }
        for (lookupID, byte) in [("b1", UInt8(1)), ("b2", 2)] {
            #expect(
                try storage.answerLinkRequest(
                    lookupID: lookupID,
                    bundle: [byte],
                    expiresAt: 5_000,
                    maxAccountBytes: 100,
                    now: 1_000
                )
            )
        }
        #expect(try storage.linkBundle(userID: fixture.alice, signatureKey: [50], now: 1_000, keepUntil: 90_000) == nil)
        #expect(try storage.linkBundle(userID: fixture.bob, signatureKey: [50], now: 1_000, keepUntil: 90_000) == [1])
        // Fetched: it now lives until keepUntil, and a later fetch does not extend it again.
        #expect(try storage.linkBundle(userID: fixture.bob, signatureKey: [50], now: 6_000, keepUntil: 99_000) == [1])
        #expect(try storage.linkBundle(userID: fixture.bob, signatureKey: [50], now: 90_000, keepUntil: 99_000) == nil)
        // Never fetched: it expires with the request's lifetime.
        #expect(try storage.linkBundle(userID: fixture.bob, signatureKey: [51], now: 5_000, keepUntil: 90_000) == nil)
        // b3's request, b2's bundle expired at 5,000; b1's bundle lives until 90,000.
        #expect(try storage.deleteExpiredLinks(now: 6_000) == 2)
        #expect(try storage.deleteLinkBundle(userID: fixture.bob, signatureKey: [50]))
        #expect(try !storage.deleteLinkBundle(userID: fixture.bob, signatureKey: [50]))
        #expect(try storage.linkBundle(userID: fixture.bob, signatureKey: [50], now: 6_000, keepUntil: 90_000) == nil)
    }

    /// Two nodes checked commits of the same epoch against their own copy of the group: the one
    /// stored first wins, the other is refused with the group's current epoch, and so is a
    /// proposal of the old epoch; an application message is not (the previous epoch's grace).
    @Test func theFirstCommitOfAnEpochWinsAcrossNodes() throws {
        let fixture = try Fixture(.postgres)
        defer { fixture.storage.closeForTest() }
        let other = try PostgresStorage(url: (fixture.storage as! PostgresStorage).url, maxConnections: 2)
        defer { other.close() }
        func commit(_ byte: UInt8, epoch: UInt64) -> LogAppend {
            var append = LogAppend(
                groupID: fixture.group,
                time: 2_000,
                senderDevice: fixture.aliceDevice,
                data: [byte],
                newState: [byte]
            )
            append.epoch = epoch
            return append
        }
        #expect(try fixture.storage.append(commit(2, epoch: 0)) == 2)
        #expect(throws: StorageError.staleEpoch(current: 1)) { try other.append(commit(3, epoch: 0)) }
        var proposal = LogAppend(groupID: fixture.group, time: 2_000, senderDevice: fixture.bobDevice, data: [4])
        (proposal.isProposal, proposal.epoch) = (true, 0)
        #expect(throws: StorageError.staleEpoch(current: 1)) { try other.append(proposal) }
        var application = LogAppend(groupID: fixture.group, time: 2_000, senderDevice: fixture.bobDevice, data: [5])
        application.epoch = 0
        #expect(try other.append(application) == 3)
        #expect(try other.append(commit(6, epoch: 1)) == 4)
        #expect(try fixture.storage.group(id: fixture.group)?.state == [6])
    }
}

/// What an attacker or a careless log could get out of the PostgreSQL storage.
@Suite(.storageThreads) struct PostgresExposureTests {
    /// Names are bound parameters, never SQL text: a name that is SQL is stored and found as text.
    @Test(arguments: StorageKind.allCases)
    func aNameThatIsSQLIsJustAName(_ kind: StorageKind) throws {
        let storage = try kind.make()
        defer { storage.closeForTest() }
        let name = "o'hara\"; DROP TABLE users; --"
        let id = try storage.createUser(name: name, passwordHash: [1], salt: [2])
        #expect(try storage.user(named: name)?.id == id)
        #expect(try storage.user(named: "o'hara") == nil)
        _ = try storage.createUser(name: "after", passwordHash: [1], salt: [2])
        #expect(try storage.users().count == 2)
    }

    /// The password of a database URL appears in no description, debug output, reflection, error
    /// or the server's startup line (the test cluster trusts loopback, so any password logs in).
    @Test func theDatabasePasswordIsNeverShown() throws {
        let base = try TestPostgres.freshDatabase()
        let url = try DatabaseURL("postgres://\(base.username):hunter2@\(base.host):\(base.port)/\(base.database)")
        #expect(url.password == "hunter2")
        let storage = try PostgresStorage(url: url, maxConnections: 1)
        defer { storage.close() }
        let unreachable = try DatabaseURL("postgres://parley:hunter2@127.0.0.1:1/parley")
        var refusal = ""
        do { _ = try PostgresStorage(url: unreachable) } catch { refusal = "\(error) \(String(reflecting: error))" }
        var dumped = ""
        dump(url, to: &dumped)
        for shown in [
            "\(storage.url)", String(reflecting: url), dumped, refusal,
            "\(ServerError.configuration("x"))",
        ] {
            #expect(!shown.contains("hunter2"), "\(shown)")
        }
        #expect(refusal.contains("127.0.0.1:1"), "the refusal names where it tried: \(refusal)")
        var configuration = ServerConfiguration()
        configuration.database = "postgres://u:hunter2@[::1"
        #expect(throws: ServerError.self) { try configuration.validate() }
        do { try configuration.validate() } catch { #expect(!"\(error)".contains("hunter2")) }
    }
}
