import Foundation
import MLS
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyClient

/// A home whose process dies at a chosen write: that write and every later one never reach
/// the disk (``InMemoryHomeStore`` underneath is what a restart finds). Or whose disk
/// refuses one write (full, busy) and then works again.
final class DyingHomeStore: HomeStore {
    let disk = InMemoryHomeStore()
    /// `armed`: the next group save fails; `dies`: and every write after it; `dead`: it died.
    private let state = Mutex((armed: false, dies: false, dead: false))

    struct Died: Error {}

    func dieAtNextSave() { state.withLock { $0 = (armed: true, dies: true, dead: false) } }
    func failNextSave() { state.withLock { $0 = (armed: true, dies: false, dead: false) } }

    private func write<T>(_ body: () throws -> T, isSave: Bool = false) throws -> T {
        try state.withLock { state in
            if state.dead { throw Died() }
            if isSave && state.armed {
                state.armed = false
                state.dead = state.dies
                throw Died()
            }
        }
        return try body()
    }

    func groups() throws -> [StoredGroup] { try disk.groups() }
    func save(
        _ group: StoredGroup,
        appending lines: [HistoryEntry],
        confirming confirmed: Int64?,
        consuming consumed: [UInt8]?
    ) throws {
        try write({ try disk.save(group, appending: lines, confirming: confirmed, consuming: consumed) }, isSave: true)
    }
    func deleteGroup(named name: String) throws { try write { try disk.deleteGroup(named: name) } }
    func history(of name: String) throws -> [HistoryEntry] { try disk.history(of: name) }
    func appendHistory(_ entry: HistoryEntry, to name: String) throws {
        try write { try disk.appendHistory(entry, to: name) }
    }
    func outbox() throws -> [QueuedMessage] { try disk.outbox() }
    @discardableResult func enqueue(_ item: OutboxItem) throws -> Int64 { try write { try disk.enqueue(item) } }
    func update(_ queued: QueuedMessage) throws { try write { try disk.update(queued) } }
    func park(_ queued: QueuedMessage, line: HistoryEntry) throws { try write { try disk.park(queued, line: line) } }
    func storeKeyPackage(_ bundle: KeyPackageBundle, reference: [UInt8]) throws {
        try write { try disk.storeKeyPackage(bundle, reference: reference) }
    }
    func keyPackage(reference: [UInt8]) throws -> KeyPackageBundle? { try disk.keyPackage(reference: reference) }
    func deleteKeyPackage(reference: [UInt8]) throws { try write { try disk.deleteKeyPackage(reference: reference) } }
    func knownKeys(of user: String) throws -> [UInt8]? { try disk.knownKeys(of: user) }
    func setKnownKeys(_ digest: [UInt8], of user: String) throws {
        try write { try disk.setKnownKeys(digest, of: user) }
    }
    func contactPin(of user: String) throws -> ContactPin? { try disk.contactPin(of: user) }
    func setContactPin(_ pin: ContactPin, of user: String) throws {
        try write { try disk.setContactPin(pin, of: user) }
    }
}

@Suite struct WelcomeCrashTests {
    /// The process dies as it saves the group a Welcome opened. The Welcome was not
    /// acknowledged, so the server replays it after the restart; the one-time KeyPackage it
    /// needs must still be there (it is deleted in the save's transaction, not before).
    @Test func dyingWhileJoiningKeepsTheKeyPackageTheReplayedWelcomeNeeds() async throws {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let server = FakeServer(user: "bob")
        let home = DyingHomeStore()
        let bobKeys = suite.generateSignatureKeyPair()
        func engine(_ store: any HomeStore) throws -> GroupEngine {
            try GroupEngine(
                identity: LocalIdentity(username: "bob", signatureKeys: bobKeys),
                store: store,
                transport: server,
                suite: suite,
                timeout: .seconds(5)
            )
        }
        let bob = try engine(home)
        var alice = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            extensions: [try ParleyGroupPolicy.adminsExtension(["alice"])],
            policy: ParleyGroupPolicy.groupPolicy()
        )
        try await bob.topUpKeyPackages(minimum: 1)
        guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](server.uploaded[0])) else {
            throw ClientError.invalid("no KeyPackage")
        }
        let added = try alice.addMembers([package])
        _ = try alice.process(added.message)
        let welcome = ServerFrame.welcome(
            .init(group: "g", seq: 1, time: 1, welcome: Data(try #require(added.welcome).tlsEncoded()))
        )
        home.dieAtNextSave()
        server.deliver(welcome)
        _ = try? await bob.pump(timeout: .milliseconds(1))
        // Nothing of the join reached the disk.
        #expect(try home.disk.groups().isEmpty)
        await bob.close()

        // The restart: a new engine on what reached the disk. The dead process never
        // acknowledged the Welcome (this simulation runs on past the death point, so its
        // ack is not evidence), so the server replays it.
        let restarted = try engine(home.disk)
        server.deliver(welcome)
        _ = try await restarted.pump(timeout: .milliseconds(1))
        let group = await restarted.groupSummaries().first { $0.name == "g" }
        #expect(group?.problem == nil && group?.active == true)
        let text = try alice.encrypt(try ApplicationContent.text("after the crash").encoded())
        server.deliver(
            .message(.init(group: "g", seq: 2, time: 2, sender: "alice", message: Data(try text.tlsEncoded())))
        )
        _ = try await restarted.pump(timeout: .milliseconds(1))
        #expect(try await restarted.history("g").filter { $0.kind == .text }.map(\.text) == ["after the crash"])
        await restarted.close()
    }

    /// The disk refuses the save of a received message once (full, or another process holds
    /// the home past the busy timeout). The message is not skipped, nor acknowledged: the
    /// engine goes back to what is stored, and the next connection replays it.
    @Test func aSaveThatFailsOnceLosesNoMessage() async throws {
        let scene = try await EngineScene()
        await scene.bob.close()
        let home = DyingHomeStore()
        for stored in try scene.store.groups() { try home.disk.save(stored, appending: [], confirming: nil) }
        let bob = try GroupEngine(
            identity: LocalIdentity(username: "bob", signatureKeys: scene.bobKeys),
            store: home,
            transport: scene.server,
            suite: scene.suite,
            timeout: .seconds(5)
        )
        let kept = try scene.fromAlice("kept")
        home.failNextSave()
        scene.server.deliver(kept)
        await #expect(throws: HomeWriteFailure.self) { try await bob.pump(timeout: .milliseconds(1)) }
        #expect(scene.server.state.withLock { $0.acks["g"] ?? 0 } < scene.seq)
        // The server replays what was not acknowledged, then the next message.
        scene.server.deliver(kept, try scene.fromAlice("next"))
        _ = try await bob.pump(timeout: .milliseconds(1))
        #expect(try await bob.history("g").filter { $0.kind == .text }.map(\.text) == ["kept", "next"])
        #expect(await bob.groupSummaries().first?.problem == nil)
        await bob.close()
    }
}
