import Foundation
import HummingbirdWSClient
import ParleyProtocol
import Testing

@testable import ParleyServer

@Suite(.serialized) struct StorageAndShutdownTests {
    @Test func shutdownClosesWebSocketsWithGoingAway() async throws {
        let server = try await TestServer.start()
        let alice: TestUser
        do {
            alice = try await TestUser.ready("alice", on: server)
        } catch {
            // Stopped either way: a TestServer dropped while running traps in its HTTP client's deinit.
            try? await server.stop()
            throw error
        }
        await alice.connect()
        try await server.stop()
        let close = try await alice.socket!.closed.value
        #expect(close?.closeCode == .goingAway)
    }

    @Test func acknowledgedAndExpiredMessagesArePruned() throws {
        let directory = NSTemporaryDirectory() + "parley-storage-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let storage = try SQLiteStorage(path: directory + "/db.sqlite")
        let alice = try storage.createUser(name: "alice", passwordHash: [1], salt: [2])
        let bob = try storage.createUser(name: "bob", passwordHash: [1], salt: [2])
        let aliceDevice = try storage.device(userID: alice, signatureKey: [1])
        let bobDevice = try storage.device(userID: bob, signatureKey: [2])
        let group = try storage.createGroup(
            GroupRecord(id: 0, name: "g", mlsGroupID: [9], state: [0], lastSeq: 0, createdAt: 0),
            creatorDevice: aliceDevice
        )
        _ = try storage.append(
            LogAppend(groupID: group, time: 1_000, senderDevice: aliceDevice, data: [1], joinedDevices: [bobDevice])
        )
        for index in 2...5 {
            #expect(
                try storage.append(
                    LogAppend(
                        groupID: group,
                        time: UInt64(index) * 1_000,
                        senderDevice: aliceDevice,
                        data: [UInt8(index)]
                    )
                ) == UInt64(index)
            )
        }
        // Storing moves no cursor, not even the sender's: alice acknowledges her echoes up to 5,
        // bob (joined at 1) up to 3.
        #expect(try storage.prune(olderThan: 0) == 0)
        try storage.acknowledge(deviceID: aliceDevice, groupID: group, seq: 5)
        try storage.acknowledge(deviceID: bobDevice, groupID: group, seq: 3)
        #expect(try storage.prune(olderThan: 0) == 3)
        #expect(try storage.messages(groupID: group, after: 0, through: nil, limit: 10).map(\.seq) == [4, 5])
        // Past retention, unacknowledged messages go too.
        #expect(try storage.prune(olderThan: 10_000) == 2)
        #expect(try storage.messages(groupID: group, after: 0, through: nil, limit: 10).isEmpty)
    }

    @Test func configurationComesFromFileThenEnvironment() throws {
        let file = NSTemporaryDirectory() + "parley-config-" + UUID().uuidString + ".json"
        try Data(#"{"port": 9000, "registration": "invite", "invite_token": "abc", "data": "/srv/parley"}"#.utf8).write(
            to: URL(fileURLWithPath: file)
        )
        let fromFile = try ServerConfiguration.load(file: file, environment: [:])
        #expect(
            fromFile.port == 9000 && fromFile.registration == .invite && fromFile.inviteToken == "abc"
                && fromFile.dataDirectory == "/srv/parley"
        )
        let overridden = try ServerConfiguration.load(
            file: file,
            environment: ["PARLEY_PORT": "9100", "PARLEY_REGISTRATION": "closed"]
        )
        #expect(overridden.port == 9100 && overridden.registration == .closed && overridden.host == "127.0.0.1")
        #expect(throws: (any Error).self) {
            try ServerConfiguration.load(file: file, environment: ["PARLEY_REGISTRATION": "sometimes"])
        }
    }
}
