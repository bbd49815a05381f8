import Foundation
import MLS
import ParleyProtocol
import PostgresNIO
import Testing

@testable import MLS
@testable import ParleyClient
@testable import ParleyServer

/// `parley upgrade` end to end on a real server: a classical group with history moves to the
/// post-quantum suite by ReInit (RFC 9420 §11.2, §12.1.5) and keeps its name, members, admins
/// and history on every device; a member offline during the upgrade follows when it returns;
/// and the attacks: a non-admin's ReInit, a second successor from a member, a message to the
/// closed group.
@Suite(.serialized) struct UpgradeTests {
    static func texts(_ history: [HistoryEntry]) -> [String] { history.filter { $0.kind == .text }.map(\.text) }

    /// alice (admin, two devices: phone and linked laptop) and bob in the classical group "g",
    /// with three messages of history; every device has post-quantum KeyPackages on the server.
    static func classicalGroup(_ harness: Harness) async throws -> (ParleyClient, ParleyClient, ParleyClient) {
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        try await bob.sync()
        let laptop = try harness.client("alice-laptop")
        _ = try await PostQuantumTests.linkDevice(laptop, approvedBy: alice, user: "alice", url: harness.url)
        for client in [laptop, bob, alice] { try await client.sync() }
        _ = try await alice.send("before 1", to: "g")
        _ = try await bob.send("before 2", to: "g")
        _ = try await laptop.send("before 3", to: "g")
        for client in [alice, bob, laptop] { try await client.sync() }
        return (alice, bob, laptop)
    }

    @Test func anUpgradedGroupKeepsItsNameMembersAdminsAndHistoryAndAnOfflineMemberFollows() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob, laptop) = try await Self.classicalGroup(harness)
        let classicalID = try await alice.group("g").groupID
        await bob.close()  // bob is offline during the upgrade

        try await alice.upgrade("g")
        _ = try await alice.send("after the upgrade", to: "g")
        // The laptop types before it has seen the upgrade: the server answers groupClosed and the
        // message goes to the successor once the laptop is in it.
        #expect(try await laptop.send("typed before seeing it", to: "g") == .queued)
        try await laptop.sync()

        let bobAgain = try harness.client("bob")
        try await bobAgain.unlock(password: "password of bob")
        try await bobAgain.sync()
        _ = try await bobAgain.send("bob is back", to: "g")
        for client in [alice, laptop, bobAgain] { try await client.sync() }

        for client in [alice, laptop, bobAgain] {
            let group = try await client.group("g")
            #expect(group.suite.suite == ParleySuites.postQuantum)
            #expect(group.groupID != classicalID)
            #expect(group.members.count == 3)
            let summary = try #require(await client.groupSummaries().first { $0.name == "g" })
            #expect(summary.postQuantum && summary.members == ["alice", "bob"] && summary.admins == ["alice"])
            #expect(await client.groupSummaries().count == 1)  // one conversation, no "g#2"
            let history = try await client.history("g")
            #expect(
                Self.texts(history) == [
                    "before 1", "before 2", "before 3", "after the upgrade", "typed before seeing it", "bob is back",
                ]
            )
            #expect(history.contains { $0.kind == .system && $0.text.contains("upgraded this group to post-quantum") })
            // No fork warning, nothing undecryptable: the successor continues the log.
            #expect(!history.contains { $0.text.hasPrefix("Warning") || $0.text.contains("could not") })
        }
        for client in [alice, laptop, bobAgain] { await client.close() }
        await harness.stop()
    }

    /// bob, not an admin: his client refuses, and a ReInit commit he builds himself (his own
    /// policy switched off) is refused by the server; the group carries on, classical.
    @Test func aNonAdminCannotUpgrade() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob, laptop) = try await Self.classicalGroup(harness)
        await #expect(throws: ClientError.upgrade(.notAdmin(group: "g"))) { try await bob.upgrade("g") }

        let reInit = ReInit(
            groupID: Array(repeating: 7, count: ParleyGroupPolicy.groupIDLength),
            cipherSuite: ParleySuites.postQuantum,
            extensions: try await bob.group("g").context.extensions
        )
        let refused = await #expect(throws: ClientError.self) {
            try await bob.submit(in: "g") { group in
                group.policy = GroupPolicy()
                return (try group.commit(CommitOptions(includePendingProposals: false, reInit: reInit)).message, nil)
            }
        }
        guard case .server(let body)? = refused else {
            Issue.record("expected the server's refusal, got \(String(describing: refused))")
            return
        }
        #expect(body.code == .notPermitted)
        _ = try await alice.send("still classical", to: "g")
        for client in [alice, bob, laptop] { try await client.sync() }
        #expect(try await bob.group("g").suite.suite == ParleySuites.standard)
        #expect(Self.texts(try await bob.history("g")).last == "still classical")
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// alice commits the ReInit; before she registers the successor (and across a server restart),
    /// bob (a member: he holds the reinit PSK too) builds his own successor for it and registers
    /// it: refused, as is any message to the closed group. alice's upgrade then completes and
    /// everyone follows hers.
    @Test func aMembersSecondSuccessorAndMessagesToTheClosedGroupAreRefused() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob, laptop) = try await Self.classicalGroup(harness)
        let reInit = ReInit(
            groupID: Array(repeating: 9, count: ParleyGroupPolicy.groupIDLength),
            cipherSuite: ParleySuites.postQuantum,
            extensions: try await alice.group("g").context.extensions
        )
        let bobBefore = try await bob.group("g")
        try await alice.requireEngine().commit(in: "g", CommitOptions(includePendingProposals: false, reInit: reInit))
        try await bob.sync()
        // The server restarts while the group is closed: it still is (the closure is stored with
        // the group's state, not only in the log, which pruning may empty).
        await harness.stop()
        try await harness.start(port: harness.port, dataDirectory: harness.root + "/server")
        var closed = try await bob.group("g")
        #expect(closed.reInit == reInit)
        closed.policy = GroupPolicy()  // bob's own client would not build it: he is no admin

        // bob's successor: post-quantum KeyPackages of alice's two devices, his own leaf first.
        let engine = try await bob.requireEngine()
        let packages = try await engine.transport.claimKeyPackages(
            of: "alice",
            skipping: [],
            suite: ParleySuites.postQuantum
        ).map { data -> KeyPackage in
            guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](data)) else {
                throw ClientError.notAnMLSMessage
            }
            return package
        }
        let (successor, welcome) = try closed.createSuccessor(
            signatureKeys: try await bob.signatureKeys(),
            keyPackages: packages
        )
        let hijack = API.Successor(
            id: "hijack",
            groupInfo: Data(try MLSMessage.groupInfo(successor.groupInfo()).tlsEncoded()),
            welcome: Data(try MLSMessage.welcome(try #require(welcome)).tlsEncoded())
        )
        let refused = await #expect(throws: ClientError.self) {
            _ = try await engine.transport.registerSuccessor(of: "g", hijack)
        }
        guard case .server(let body)? = refused else {
            Issue.record("expected the server's refusal, got \(String(describing: refused))")
            return
        }
        #expect(body.code == .notPermitted)

        // Nothing more goes to the closed group (RFC 9420 §12.1.5).
        let closedSend = await #expect(throws: ClientError.self) {
            // Encrypted with bob's state from before the ReInit (his closed group would not encrypt).
            try await bob.submit(in: "g") { _ in
                var open = bobBefore
                return (try open.encrypt(Array("into the closed group".utf8)), nil)
            }
        }
        guard case .server(let closedBody)? = closedSend else {
            Issue.record("expected the server's refusal, got \(String(describing: closedSend))")
            return
        }
        #expect(closedBody.code == .groupClosed)

        try await alice.upgrade("g")  // resumes: registers her successor for her ReInit
        for client in [bob, laptop, alice] { try await client.sync() }
        for client in [alice, bob, laptop] {
            let group = try await client.group("g")
            #expect(group.suite.suite == ParleySuites.postQuantum && group.groupID == reInit.groupID)
            #expect(group.tree.leafNode(at: LeafIndex(0))?.credential == .basic(identity: Array("alice".utf8)))
        }
        _ = try await bob.send("in alice's successor", to: "g")
        for client in [alice, laptop] {
            try await client.sync()
            #expect(Self.texts(try await client.history("g")).last == "in alice's successor")
        }
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
    }

    /// A hostile server swaps the successor's Welcome in bob's log for one of a group it made
    /// itself, in the classical suite (a downgrade), with a real KeyPackage of bob's and a
    /// credential naming alice: bob joins nothing, says so, and stays in his closed group.
    @Test func aServersOwnGroupInPlaceOfTheSuccessorIsNotJoined() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        let classicalID = try await bob.group("g").groupID
        let standard = try ParleySuites.standard.provider()
        let bobsPackage = try await alice.requireEngine().transport.claimKeyPackages(
            of: "bob",
            skipping: [],
            suite: ParleySuites.standard
        ).map { data -> KeyPackage in
            guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](data)) else {
                throw ClientError.notAnMLSMessage
            }
            return package
        }
        var forgedGroup = try Group.create(
            standard,
            groupID: standard.randomBytes(32),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: standard.generateSignatureKeyPair(),
            extensions: try await bob.group("g").context.extensions
        )
        let forged = try #require(try forgedGroup.addMembers(bobsPackage).welcome)
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame,
                case .welcome? = try? MLSMessage(tlsEncoded: [UInt8](message.message))
            else { return .deliver([frame]) }
            message.message = (try? Data(forged.tlsEncoded())) ?? message.message
            return .deliver([.message(message)])
        }
        try await alice.upgrade("g")
        try await bob.sync()
        let group = try await bob.group("g")
        #expect(group.reInit != nil && group.groupID == classicalID && group.suite.suite == ParleySuites.standard)
        #expect(await bob.groupSummaries().map(\.name) == ["g"])
        #expect(
            try await bob.history("g").contains { $0.kind == .system && $0.text.contains("could not be processed") }
        )
        for client in [alice, bob] { await client.close() }
        await homes.proxy.stop()
    }

    /// The collusion SECURITY.md used to leave open. alice (admin) closes "g" with a ReInit; bob
    /// (a member, so he holds the reinit PSK) builds a successor for it holding exactly the group's
    /// devices, alice's first (her own post-quantum KeyPackage leaf, signed by her), and signs its
    /// GroupInfo himself; the hostile server hands carol that Welcome in place of alice's. Every
    /// check carol made before passes it (PSK, parameters, devices, leaf 0 an admin's device); she
    /// now refuses it because its signer is not the device that committed the ReInit, says who
    /// made it, and stays in her closed group. alice and bob follow alice's real successor.
    @Test func aMembersSuccessorWithTheAdminFirstButSignedByHimIsRefused() async throws {
        let homes = try await HostileHomes()
        let (alice, bob, carol) = try await homes.trio()
        let reInit = ReInit(
            groupID: Array(repeating: 5, count: ParleyGroupPolicy.groupIDLength),
            cipherSuite: ParleySuites.postQuantum,
            extensions: try await alice.group("g").context.extensions
        )
        try await alice.requireEngine().commit(in: "g", CommitOptions(includePendingProposals: false, reInit: reInit))
        try await bob.sync()
        let closed = try await bob.group("g")
        #expect(closed.reInit == reInit && closed.reInitCommitter != nil)
        let engine = try await bob.requireEngine()
        let claim = { (user: String) async throws -> KeyPackage in
            let offered = try await engine.transport.claimKeyPackages(
                of: user,
                skipping: [],
                suite: ParleySuites.postQuantum
            )
            guard case .keyPackage(let package)? = offered.first.flatMap({ try? MLSMessage(tlsEncoded: [UInt8]($0)) })
            else { throw ClientError.notAnMLSMessage }
            return package
        }
        let forged = try Self.successor(
            of: closed,
            first: try await claim("alice"),
            signedBy: try await bob.signatureKeys(),
            adding: [try await claim("carol")]
        )
        #expect(forged.tree.leafNode(at: LeafIndex(0))?.credential == .basic(identity: Array("alice".utf8)))
        homes.proxy.setRule { recipient, frame in
            guard recipient == "carol", case .message(var message) = frame,
                case .welcome? = try? MLSMessage(tlsEncoded: [UInt8](message.message))
            else { return .deliver([frame]) }
            message.message = (try? Data(MLSMessage.welcome(forged.welcome).tlsEncoded())) ?? message.message
            return .deliver([.message(message)])
        }
        try await alice.upgrade("g")  // registers alice's own successor for her ReInit
        for client in [bob, carol] { try await client.sync() }

        let carols = try await carol.group("g")
        #expect(carols.reInit == reInit && carols.suite.suite == ParleySuites.standard)
        let refusal = SuccessorRefusal.notCreatedByCommitter(creator: "bob", committer: "alice")
        #expect(try await homes.lines(carol).contains { $0.contains(refusal.description) })
        #expect(refusal.description.contains("created by bob, not by alice"))
        for client in [alice, bob] {
            let group = try await client.group("g")
            #expect(group.suite.suite == ParleySuites.postQuantum && group.groupID == reInit.groupID)
        }
        #expect(
            try await bob.history("g").contains {
                $0.kind == .system
                    && $0.text.hasPrefix(
                        "alice upgraded this group to post-quantum encryption (the new group is signed"
                    )
            }
        )
        for client in [alice, bob, carol] { await client.close() }
        await homes.proxy.stop()
    }

    /// bob's forgery for ``aMembersSuccessorWithTheAdminFirstButSignedByHimIsRefused``: the
    /// successor `closed`'s ReInit asks for, at epoch 0 holding `first` (another device's
    /// KeyPackage leaf, as its owner signed it) then bob's own leaf, and bob's commit adding
    /// `others` with the reinit PSK; its Welcome's GroupInfo is signed by bob (leaf 1). Built from
    /// the library's internals: the public API always puts the creator first.
    static func successor(
        of closed: Group,
        first: KeyPackage,
        signedBy keys: SignatureKeyPair,
        adding others: [KeyPackage]
    ) throws -> (tree: RatchetTree, welcome: Welcome) {
        let reInit = try #require(closed.reInit)
        let suite = try reInit.cipherSuite.provider()
        let credential = try #require(closed.ownCredential)
        let psk = try closed.reInitPSK()
        var policy = GroupPolicy()
        policy.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk
        let own = try KeyPackageBundle(
            suite,
            credential: credential,
            signatureKeys: keys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        var group = try Group.create(
            suite,
            groupID: reInit.groupID,
            credential: credential,
            signatureKeys: keys,
            extensions: reInit.extensions,
            policy: policy
        )
        var tree = try RatchetTree(suite, firstLeaf: first.leafNode)
        let leaf = try tree.add(own.keyPackage.leafNode)
        group.publicGroup.tree = tree
        group.publicGroup.context.treeHash = tree.treeHash
        group.ownLeaf = leaf
        group.treeKeys = TreeKEMPrivateKeys(leafIndex: leaf, leafKey: own.encryptionPrivateKey)
        let output = try group.commit(
            CommitOptions(add: others, includePendingProposals: false, preSharedKeys: [psk.id])
        )
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("no Welcome") }
        _ = try group.process(output.message)
        return (group.tree, welcome)
    }

    /// The upgrade with the server's state in PostgreSQL (PARLEY_TEST_POSTGRES, as scripts/test
    /// sets it): the stored epoch, which several nodes check, follows the successor's own epochs,
    /// so commits in the successor are stored after it.
    @Test func theUpgradeOnPostgreSQLAndCommitsInTheSuccessor() async throws {
        let harness = Harness()
        try await harness.start(database: try Self.freshPostgresDatabase())
        let (alice, bob, laptop) = try await Self.classicalGroup(harness)
        try await alice.upgrade("g")
        try await bob.update("g")  // a commit in the successor, at its epoch 1
        // The laptop has not seen the upgrade yet: its message is sent once it has (groupClosed first).
        _ = try await laptop.send("after two commits", to: "g")
        for client in [laptop, alice, bob] { try await client.sync() }
        for client in [alice, bob, laptop] {
            let group = try await client.group("g")
            #expect(group.suite.suite == ParleySuites.postQuantum && group.epoch >= 2)
            let history = try await client.history("g")
            #expect(Self.texts(history).last == "after two commits", "\(history.map(\.text))")
        }
        for client in [alice, bob, laptop] { await client.close() }
        await harness.stop()
        (harness.server.storage as? PostgresStorage)?.close()
    }

    /// A new database on the test cluster named by PARLEY_TEST_POSTGRES.
    static func freshPostgresDatabase() throws -> String {
        guard let text = ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES"], !text.isEmpty else {
            throw ClientError.invalid("PARLEY_TEST_POSTGRES is not set: run scripts/test, or scripts/postgres start")
        }
        var url = try DatabaseURL(text)
        let name = "parley_upgrade_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let pool = try PostgresConnectionPool(url: url, maxConnections: 1)
        defer { pool.close() }
        _ = try pool.withConnection { try $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)")) }
        url.database = name
        return "postgres://\(url.username)@\(url.host):\(url.port)/\(url.database)"
    }
}
