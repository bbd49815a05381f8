import Foundation
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyClient

/// Client homes whose server is a ``HostileServerProxy``, with the helpers the attack
/// tests share.
final class HostileHomes: Sendable {
    let root = NSTemporaryDirectory() + "parley-hostile-" + UUID().uuidString
    let proxy: HostileServerProxy

    init() async throws {
        Harness.cheapKeyDerivation()
        proxy = try await HostileServerProxy.start(directory: root)
    }

    func registered(_ name: String) async throws -> ParleyClient {
        let client = try ParleyClient(home: root + "/" + name)
        try await client.register(server: proxy.url, username: name, password: "password of \(name)")
        return client
    }

    /// alice (admin) and bob in group "g", bob joined.
    func aliceAndBob() async throws -> (alice: ParleyClient, bob: ParleyClient) {
        let alice = try await registered("alice")
        let bob = try await registered("bob")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        try await bob.sync()
        return (alice, bob)
    }

    /// alice (admin), bob and carol in "g", everyone's joins and key refreshes processed
    /// by everyone: all three have seen the same log up to the same seq.
    func trio() async throws -> (alice: ParleyClient, bob: ParleyClient, carol: ParleyClient) {
        let (alice, bob) = try await aliceAndBob()
        let carol = try await registered("carol")
        try await alice.add(["carol"], to: "g")
        try await carol.sync()
        for client in [alice, bob, carol] { try await client.sync() }
        return (alice, bob, carol)
    }

    func texts(_ client: ParleyClient, _ group: String = "g") async throws -> [String] {
        try await client.history(group).filter { $0.kind == .text }.map(\.text)
    }

    func lines(_ client: ParleyClient, _ group: String = "g") async throws -> [String] {
        try await client.history(group).map(\.text)
    }

    func summary(_ client: ParleyClient, _ group: String = "g") async throws -> GroupSummary {
        try #require(await client.groupSummaries().first { $0.name == group })
    }

    func stop(_ clients: [ParleyClient]) async {
        for client in clients { await client.close() }
        await proxy.stop()
    }
}

/// Counts frames a rule has seen, across the proxy's connection tasks.
final class FrameCounter: Sendable {
    private let value = Mutex(0)
    /// The count after this one.
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}

/// The first value offered, kept: a rule picks its victim once and hits it on every
/// connection (a reconnect replays what was dropped on the previous one).
final class FirstValue: Sendable {
    private let value = Mutex<UInt64?>(nil)
    func keep(_ offered: UInt64) -> UInt64 {
        value.withLock { value in
            let kept = value ?? offered
            value = kept
            return kept
        }
    }
}

/// One frame kept by a rule for a later delivery (a reorder).
final class FrameStash: Sendable {
    private let value = Mutex<ServerFrame?>(nil)
    func keep(_ frame: ServerFrame) { value.withLock { $0 = frame } }
    func take() -> ServerFrame? { value.withLock { $0 } }
}
