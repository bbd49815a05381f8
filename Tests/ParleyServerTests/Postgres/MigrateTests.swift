import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// `parley admin migrate`: a server's SQLite data directory, copied into PostgreSQL, serves on.
@Suite(.serialized, .storageThreads) struct MigrateTests {
    @Test func anSQLiteDataDirectoryServesOnFromPostgreSQL() async throws {
        let first = try await TestServer.start()
        let alice = try await TestUser.ready("alice", on: first)
        let bob = try await TestUser.ready("bob", on: first)
        await alice.connect()
        try await alice.createGroup("g")
        _ = try await alice.add(["bob"], to: "g")
        _ = try await alice.sendText("before", to: "g")
        alice.socket?.close()
        try await first.stop()

        let url = try TestPostgres.freshDatabase()
        let path = first.server.configuration.databasePath
        let summary = try SQLiteToPostgres.copy(sqlitePath: path, to: url)
        #expect(summary.first { $0.table == "messages" }?.rows == 2)
        #expect(summary.first { $0.table == "users" }?.rows == 2)
        #expect(throws: PostgresStorageError.targetNotEmpty) { try SQLiteToPostgres.copy(sqlitePath: path, to: url) }

        let second = try await TestServer.start(
            directory: first.directory,
            configure: { $0.database = TestPostgres.string(url) }
        )
        do {
            try await serveOn(second, alice: alice, bob: bob)
        } catch {
            try? await second.stop()
            throw error
        }
        try await second.stop()
    }

    /// Sessions, the Welcome, the log, seqs and the epoch all carried over; new rows get new ids.
    private func serveOn(_ server: TestServer, alice: TestUser, bob: TestUser) async throws {
        let (aliceAgain, bobAgain) = (TestUser("alice", server: server), TestUser("bob", server: server))
        for (old, new) in [(alice, aliceAgain), (bob, bobAgain)] {
            (new.session, new.bundles, new.groups) = (old.session, old.bundles, old.groups)
        }
        let replay = await bobAgain.connect()
        guard case .welcome(let welcome)? = replay.first, case .message(let message)? = replay.last else {
            Issue.record("expected the Welcome and the message, got \(replay)")
            return
        }
        try bobAgain.join(welcome)
        #expect(try bobAgain.apply(message) == "before")
        #expect(try await bobAgain.sendText("after", to: "g").accepted?.seq == 3)
        // The stored epoch was read from the group's state: a commit of the current epoch is taken.
        await aliceAgain.connect()
        let update = try aliceAgain.groups["g"]!.selfUpdate()
        #expect(try await aliceAgain.submit(update.message, to: "g").accepted?.seq == 4)
        // PostgreSQL's id sequences continue after the copied ids.
        _ = try await TestUser.ready("carol", on: server)
    }
}
