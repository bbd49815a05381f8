import Foundation
import Logging
import ParleyDemo
import ParleyProtocol
import Testing

@testable import ParleyClient
@testable import ParleyServer

/// A real server plus several client homes, all in this process.
final class Harness: @unchecked Sendable {
    let root = NSTemporaryDirectory() + "parley-e2e-" + UUID().uuidString
    var server: ParleyServer!
    var task: Task<Void, Error>?
    var port = 0
    var url: String { "https://127.0.0.1:\(port)" }

    init() { Harness.cheapKeyDerivation() }

    /// The servers tests start hash passwords at a cheap scrypt cost too (2^10, not 2^15).
    static let passwordHashCost = 10

    /// Homes made by tests use a cheap scrypt cost, so suites stay fast.
    static func cheapKeyDerivation() {
        SealingKey.testCost.withLock { $0 = 10 }
        // The whole suite runs in parallel on two cores: give clients (and the
        // `parley` binary the tests start, which inherits this) time to be answered.
        setenv("PARLEY_CLIENT_TIMEOUT_SECONDS", "90", 1)
    }

    func start(port requested: Int = 0, dataDirectory: String? = nil, database: String? = nil) async throws {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = dataDirectory ?? root + "/server"
        configuration.port = requested
        configuration.database = database
        configuration.passwordHashCost = Harness.passwordHashCost
        var logger = Logger(label: "e2e")
        logger.logLevel = .error
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        task = Task { try await server.run(handleSignals: false) { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        port = await iterator.next() ?? 0
        self.server = server
    }

    func stop() async {
        await server?.shutdown()
        _ = try? await task?.value
    }

    func client(_ name: String, home: String? = nil) throws -> ParleyClient {
        try ParleyClient(home: root + "/" + (home ?? name))
    }

    func registered(_ name: String) async throws -> ParleyClient {
        let client = try client(name)
        try await client.register(server: url, username: name, password: "password of \(name)")
        return client
    }

    /// alice and bob in group "g", alice its admin, bob joined.
    func aliceAndBob() async throws -> (alice: ParleyClient, bob: ParleyClient) {
        let alice = try await registered("alice")
        let bob = try await registered("bob")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        try await bob.sync()
        return (alice, bob)
    }
}

@Suite(.serialized) struct EndToEndTests {
    @Test func theDemoScenarioKeepsRemovedMembersAndTheServerInTheDark() async throws {
        Harness.cheapKeyDerivation()
        let outcome = try await DemoScenario().run()
        let texts = { (name: String) in (outcome.views[name] ?? []).filter { $0.kind == .text }.map(\.text) }
        let all = DemoScenario.conversation.map(\.text)
        #expect(texts("bob") == all + [DemoScenario.afterRemoval])
        #expect(texts("alice") == all + [DemoScenario.afterRemoval])
        #expect(texts("charlie") == all)
        #expect(outcome.views["charlie"]?.contains { $0.text == "You were removed from the group." } == true)
        #expect(outcome.leakedPlaintexts.isEmpty)
        #expect(outcome.storedMessages.count >= 8)
    }

    @Test func anOfflineMemberCatchesUpOnMessagesAndACommit() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        await bob.close()

        for index in 0..<3 { _ = try await alice.send("while you were away \(index)", to: "g") }
        try await alice.update("g")
        _ = try await alice.send("after the commit", to: "g")

        // Bob comes back: a fresh process on the same home.
        let bobAgain = try harness.client("bob")
        try await bobAgain.unlock(password: "password of bob")
        try await bobAgain.sync()
        let texts = try await bobAgain.history("g").filter { $0.kind == .text }.map(\.text)
        #expect(
            texts == ["while you were away 0", "while you were away 1", "while you were away 2", "after the commit"]
        )
        #expect(try await bobAgain.send("back", to: "g") != .queued)
        try await alice.sync()
        #expect(try await alice.history("g").last?.text == "back")
        for client in [alice, bobAgain] { await client.close() }
        await harness.stop()
    }

    @Test func twoConcurrentCommitsBothEndUpApplied() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        let dave = try await harness.registered("dave")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        try await bob.sync()
        try await alice.sync()
        let before = await alice.groupSummaries()[0].epoch

        // Both commit at once: one wins the epoch, the other gets wrongEpoch, catches up and retries.
        async let adding: Void = alice.add(["dave"], to: "g")
        async let updating: Void = bob.update("g")
        _ = try await (adding, updating)

        for client in [alice, bob] { try await client.sync() }
        let aliceView = await alice.groupSummaries()[0]
        let bobView = await bob.groupSummaries()[0]
        #expect(aliceView.members == ["alice", "bob", "dave"] && bobView.members == aliceView.members)
        #expect(aliceView.epoch == bobView.epoch && aliceView.epoch >= before + 2)
        try await dave.sync()
        _ = try await dave.send("hi, I'm in", to: "g")
        try await bob.sync()
        #expect(try await bob.history("g").last?.text == "hi, I'm in")
        for client in [alice, bob, dave] { await client.close() }
        await harness.stop()
    }

    @Test func leavesAreRefreshedAfterJoiningAndWhenTheyGetOld() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        // Epoch 1 is alice's add; bob's join self-update made epoch 2.
        try await alice.sync()
        #expect(await alice.groupSummaries()[0].epoch == 2)
        // Nothing is due now …
        try await bob.sync()
        #expect(await bob.groupSummaries()[0].epoch == 2)
        // … but once the leaf counts as old, the next sync refreshes it.
        await bob.setSelfUpdateInterval(0)
        try await bob.sync()
        #expect(await bob.groupSummaries()[0].epoch == 3)
        try await alice.sync()
        #expect(await alice.groupSummaries()[0].epoch == 3)
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }

    @Test func messagesSentWhileTheServerIsDownAreQueuedAndSentLater() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let port = harness.port
        await alice.close()
        await harness.stop()

        #expect(try await alice.send("sent while offline", to: "g") == .queued)
        await alice.close()
        try await harness.start(port: port)
        try await alice.sync()
        try await bob.sync()
        #expect(try await bob.history("g").last?.text == "sent while offline")
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }

    @Test func aChangedServerCertificateIsAHardError() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        await alice.close()
        let port = harness.port
        await harness.stop()
        // A different server (new data directory, new certificate) on the same address.
        try await harness.start(port: port, dataDirectory: harness.root + "/impostor")
        await #expect {
            try await alice.sync()
        } throws: { error in
            guard case ClientError.certificateChanged = error else { return false }
            return "\(error)".contains("--accept-new-certificate")
        }
        await harness.stop()
    }

    /// Issue 13 item 3: a member removed and added back under the same group name rejoins
    /// (groups are told apart by MLS group ID, not by name). Once after syncing the removal,
    /// once offline through both (the Welcome is replayed before the removal commit), and a
    /// fresh process does not see the Welcome again.
    @Test func aMemberRemovedAndAddedBackUnderTheSameNameRejoins() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        try await alice.remove("bob", from: "g")
        try await bob.sync()
        #expect(await bob.groupSummaries().first { $0.name == "g" }?.active == false)
        try await alice.add(["bob"], to: "g")
        _ = try await alice.send("welcome back", to: "g")
        try await bob.sync()
        #expect(await bob.groupSummaries().first { $0.name == "g" }?.active == true)
        #expect(try await bob.history("g").last?.text == "welcome back")

        await bob.close()
        try await alice.remove("bob", from: "g")
        try await alice.add(["bob"], to: "g")
        _ = try await alice.send("and again", to: "g")
        let again = try harness.client("bob")
        try await again.unlock(password: "password of bob")
        try await again.sync()
        #expect(try await again.history("g").last?.text == "and again")
        #expect(try await again.send("glad to be back", to: "g") != .queued)
        try await alice.sync()
        #expect(try await alice.history("g").last?.text == "glad to be back")
        let rejoined = try await again.history("g").filter { $0.text == "You were added to g again." }
        try await again.sync()
        #expect(try await again.history("g").filter { $0.text == "You were added to g again." } == rejoined)
        #expect(rejoined.count == 2)
        for client in [alice, bob, again] { await client.close() }
        await harness.stop()
    }

    @Test func aSecondHomeIsASecondDeviceThatReceivesToo() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        let bobLaptop = try harness.client("bob", home: "bob-laptop")
        // Only a device bob's signed list names may log in: his first device approves it.
        try await bob.approveDevice(signatureKey: bobLaptop.newDeviceKey(password: "password of bob"), name: "laptop")
        try await bobLaptop.login(server: harness.url, username: "bob", password: "password of bob")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        _ = try await alice.send("to both of bob's devices", to: "g")
        for device in [bob, bobLaptop] {
            try await device.sync()
            #expect(try await device.history("g").last?.text == "to both of bob's devices")
        }
        // Wrong passwords do not unlock a home.
        let locked = try harness.client("bob")
        await #expect(throws: ClientError.wrongPassword) { try await locked.unlock(password: "guess") }
        for client in [alice, bob, bobLaptop] { await client.close() }
        await harness.stop()
    }

    @Test func aDeviceApprovedLaterIsAddedToAGroupItsAccountIsIn() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let bobLaptop = try harness.client("bob", home: "bob-laptop")
        // Not in bob's signed list yet: the server refuses the login, and nothing else changes.
        do {
            try await bobLaptop.login(server: harness.url, username: "bob", password: "password of bob")
            Issue.record("an unlisted device logged in")
        } catch ClientError.server(let body) {
            #expect(body.code == .deviceNotListed)
        }
        try await bob.approveDevice(signatureKey: bobLaptop.newDeviceKey(password: "password of bob"), name: "laptop")
        try await bobLaptop.login(server: harness.url, username: "bob", password: "password of bob")
        // bob is already in g: adding him again adds only the device g lacks, from his own device.
        try await bob.add(["bob"], to: "g")
        _ = try await alice.send("for every device of bob", to: "g")
        try await bobLaptop.sync()
        #expect(try await bobLaptop.history("g").last?.text == "for every device of bob")
        await #expect(throws: ClientError.alreadyMember("bob", group: "g")) { try await bob.add(["bob"], to: "g") }
        for client in [alice, bob, bobLaptop] { await client.close() }
        await harness.stop()
    }

    @Test func safetyNumbersMatchOnBothSidesAndFlagChangedKeys() async throws {
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        let fromAlice = try await alice.verify("bob")
        let fromBob = try await bob.verify("alice")
        #expect(fromAlice.number == fromBob.number && !fromAlice.changed)
        #expect(fromAlice.number.split(separator: " ").count == 12)
        // Safety numbers cover identity keys: bob and alice each linking a new device changes neither.
        let bobPhone = try harness.client("bob", home: "bob-phone")
        try await bob.approveDevice(signatureKey: bobPhone.newDeviceKey(password: "password of bob"), name: "phone")
        try await bobPhone.login(server: harness.url, username: "bob", password: "password of bob")
        let alice2 = try harness.client("alice-fresh")
        try await alice.approveDevice(signatureKey: alice2.newDeviceKey(password: "password of alice"), name: "2")
        try await alice2.login(server: harness.url, username: "alice", password: "password of alice")
        try await alice.remove("bob", from: "g")
        let after = try await alice.verify("bob")
        #expect(after.number == fromAlice.number && !after.changed)
        for client in [alice, bob, bobPhone, alice2] { await client.close() }
        await harness.stop()
    }
}
