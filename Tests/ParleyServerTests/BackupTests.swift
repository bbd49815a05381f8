import Foundation
import MLS
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyServer

/// `parley admin backup` (DataBackup): a copy taken while messages are being stored is the
/// database as of one commit, opens as a data directory, and serves.
@Suite struct BackupTests {
    /// The group's log in `storage`, checked whole: seqs 1…last_seq with nothing missing.
    static func log(of group: String, in storage: any ServerStorage) throws -> (last: UInt64, entries: [LogEntry]) {
        let record = try #require(try storage.group(named: group))
        let entries = try storage.messages(groupID: record.id, after: 0, through: nil, limit: 100_000)
        try #require(record.lastSeq > 0)
        #expect(entries.map(\.seq) == Array(1...record.lastSeq))
        return (record.lastSeq, entries)
    }

    @Test func aBackupTakenUnderLoadIsConsistentAndServes() async throws {
        let server = try await TestServer.start()
        let (alice, bob, _) = try await HostileMemberTests.aliceAndBob(on: server)
        let destination = NSTemporaryDirectory() + "parley-backup-" + UUID().uuidString + "/copy"
        let done = Atomic<Bool>(false)
        let (source, fingerprint) = (server.directory, server.server.fingerprint)
        let backup = Task.detached {
            defer { done.store(true, ordering: .sequentiallyConsistent) }
            try await Task.sleep(for: .milliseconds(300))
            return try DataBackup.run(dataDirectory: source, destination: destination)
        }
        // Alice sends throughout the backup and for a while after it.
        var sent = 0
        var after = 0
        while after < 10 {
            #expect(try await alice.sendText("m\(sent)", to: "g").accepted != nil)
            sent += 1
            if done.load(ordering: .sequentiallyConsistent) { after += 1 }
        }
        let summary = try await backup.value
        #expect(summary.files.contains("tls-private-key.pem"))
        let original = try Self.log(of: "g", in: server.server.storage)
        try await server.stop()

        let restored = try await TestServer.start(directory: destination)
        let copy = try Self.log(of: "g", in: restored.server.storage)
        // A snapshot taken mid-load: some of the messages, the oldest ones, byte for byte.
        #expect(copy.last > 1 && copy.last < original.last)
        #expect(copy.entries == Array(original.entries.prefix(copy.entries.count)))
        #expect(restored.server.fingerprint == fingerprint)
        // It serves: bob's session was copied; his replay is the copied log, and he decrypts it.
        bob.socket = TestSocket(server: restored, token: bob.token)
        var texts: [String] = []
        while let message = await bob.nextMessage(in: "g", timeout: .seconds(5)) {
            // Alice's texts (PrivateMessages); the commit that added bob is before them.
            let decoded = try MLSMessage(tlsEncoded: [UInt8](message.message))
            if case .privateMessage = decoded, case .application(let text) = try bob.groups["g"]!.process(decoded) {
                texts.append(String(decoding: text.data, as: UTF8.self))
            }
            if message.seq == copy.last { break }
        }
        #expect(texts == (0..<texts.count).map { "m\($0)" } && !texts.isEmpty)
        alice.socket = TestSocket(server: restored, token: alice.token)
        #expect(try await alice.sendText("after the restore", to: "g").accepted?.seq == copy.last + 1)
        try await restored.stop()
    }

    @Test func aBackupNeverWritesIntoADirectoryInUse() async throws {
        let server = try await TestServer.start()
        let destination = NSTemporaryDirectory() + "parley-backup-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        try Data("someone's file".utf8).write(to: URL(fileURLWithPath: destination + "/notes"))
        #expect(throws: DataBackup.Failure.destinationInUse(destination)) {
            try DataBackup.run(dataDirectory: server.directory, destination: destination)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: destination) == ["notes"])
        #expect(throws: DataBackup.Failure.noDatabase(destination + "/parley.sqlite")) {
            try DataBackup.run(dataDirectory: destination, destination: destination + "/copy")
        }
        try await server.stop()
    }

    /// `parley admin backup` itself: it copies a data directory into a new one and refuses a
    /// destination in use with a non-zero exit, leaving it as it was.
    @Test func theCommandBacksUpAndRefusesADestinationInUse() async throws {
        let parley = CrashSoakTests.products.appendingPathComponent("parley").path
        try #require(FileManager.default.isExecutableFile(atPath: parley), "build parley first (`swift build`)")
        let server = try await TestServer.start()
        _ = try await TestUser.ready("alice", on: server)
        try await server.stop()
        let destination = NSTemporaryDirectory() + "parley-backup-" + UUID().uuidString
        func backup() throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: parley)
            process.arguments = ["admin", "backup", destination, "--data", server.directory]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try backup() == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: destination).sorted()
        #expect(files == ["parley.sqlite", "tls-certificate.pem", "tls-private-key.pem"])
        let key = try FileManager.default.attributesOfItem(atPath: destination + "/tls-private-key.pem")
        #expect((key[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let before = try Data(contentsOf: URL(fileURLWithPath: destination + "/parley.sqlite"))
        #expect(try backup() != 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: destination + "/parley.sqlite")) == before)
        let restored = try await TestServer.start(directory: destination)
        #expect(try restored.server.listUsers().map(\.name) == ["alice"])
        try await restored.stop()
    }
}
