import Foundation
import GRDB
import MLS
import Testing

@testable import ParleyClient

/// Finding 20: what a stolen home file shows without the password.
@Suite(.serialized) struct AtRestTests {
    static func homeBytes(_ directory: String) throws -> [UInt8] {
        try FileManager.default.contentsOfDirectory(atPath: directory).flatMap {
            [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: directory + "/" + $0))) ?? Data())
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let bytes = Array(needle.utf8)
        return haystack.count >= bytes.count
            && (0...(haystack.count - bytes.count)).contains { haystack[$0..<($0 + bytes.count)].elementsEqual(bytes) }
    }

    @Test func theHomeFileHoldsNoTokenGroupNameOrSenderInClear() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let sender = try await harness.registered("bartholomew")
        try await alice.createGroup("midnight-plans")
        try await alice.add(["bartholomew"], to: "midnight-plans")
        try await sender.sync()
        _ = try await sender.send("see you there", to: "midnight-plans")
        try await alice.sync()
        #expect(try await alice.history("midnight-plans").last?.sender == "bartholomew")
        let token = try #require(await alice.token)
        await alice.close()

        let bytes = try Self.homeBytes(harness.root + "/alice")
        for secret in [token, "midnight-plans", "bartholomew", "see you there"] {
            #expect(!Self.contains(bytes, secret), "\(secret)")
        }
        let reopened = try harness.client("alice")
        await #expect(throws: ClientError.wrongPassword) { try await reopened.unlock(password: "wrong") }
        try await reopened.unlock(password: "password of alice")
        #expect(try await reopened.history("midnight-plans").last?.text == "see you there")
        for client in [sender, reopened] { await client.close() }
        await harness.stop()
    }

    /// A v1 home (scrypt 2^15, names and metadata in clear) is re-sealed when
    /// next unlocked, and keeps its groups, history, queue and session.
    @Test func aHomeFromBeforeSealedMetadataIsMigrated() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        try await alice.createGroup("midnight-plans")
        let state = try await alice.group("midnight-plans").serialized()
        let keys = try await alice.signatureKeys()
        await alice.close()

        let home = harness.root + "/legacy"
        let store = try ClientStore(directory: home)
        let salt = [UInt8](repeating: 7, count: SealingKey.saltLength)
        let old = try SealingKey(password: "pw", salt: salt, cost: SealingKey.legacyCost)
        let queue = try DatabaseQueue(path: home + "/parley-client.sqlite")
        try await queue.write { db in
            let settings: [(String, [UInt8])] = [
                ("salt", salt), ("check", try old.seal(Array("parley".utf8), context: "check")),
                ("username", Array("alice".utf8)),
                ("server", Array(harness.url.utf8)), ("token", Array("legacy-token-value".utf8)),
                ("updated:midnight-plans", Array("1.5".utf8)),
                ("signature_private", try old.seal(keys.privateKey.bytes, context: "signature")),
                ("signature_public", keys.publicKey.bytes),
            ]
            for (key, value) in settings {
                try db.execute(sql: "INSERT INTO settings VALUES (?, ?)", arguments: [key, Data(value)])
            }
            try db.execute(
                sql: "INSERT INTO groups VALUES (?, ?, ?, 0)",
                arguments: [
                    "midnight-plans", Data(try old.seal(state, context: "group:midnight-plans")), 42,
                ]
            )
            try db.execute(
                sql:
                    "INSERT INTO history (group_name, seq, time, sender, kind, sealed) VALUES (?, 41, 1000, ?, 'text', ?)",
                arguments: [
                    "midnight-plans", "bartholomew",
                    Data(try old.seal(Array("old text".utf8), context: "history:midnight-plans")),
                ]
            )
            try db.execute(
                sql: "INSERT INTO outbox VALUES ('id-1', 'midnight-plans', ?, 5)",
                arguments: [Data(try old.seal(Array("queued text".utf8), context: "outbox"))]
            )
        }
        _ = store

        let client = try ParleyClient(home: home)
        try await client.unlock(password: "pw")
        #expect(await client.token == "legacy-token-value")
        let entry = try #require(try await client.history("midnight-plans").first)
        #expect(entry.seq == 41 && entry.sender == "bartholomew" && entry.text == "old text")
        #expect(await client.groupSummaries().first?.lastSeq == 42)
        #expect(try await client.outbox().first?.item.text == "queued text")
        #expect(try await client.signatureKeys().publicKey == keys.publicKey)
        let bytes = try Self.homeBytes(home)
        for secret in ["legacy-token-value", "midnight-plans", "bartholomew"] {
            #expect(!Self.contains(bytes, secret), "\(secret)")
        }
        // Unlocks again with the new key and cost.
        let again = try ParleyClient(home: home)
        try await again.unlock(password: "pw")
        #expect(try await again.history("midnight-plans").count == 1)
        await harness.stop()
    }
}
