import Foundation
import GRDB

/// `parley admin backup DEST`: a consistent copy of an SQLite data directory, also while the
/// server runs. The database is copied with SQLite's online backup API from one read
/// transaction, so the copy is the database as of one commit: no message without its group's
/// `last_seq`, no half of a batch (https://www.sqlite.org/backup.html). In WAL mode that read
/// never blocks the server's writer. The directory's other files (the TLS certificate and
/// key) are copied beside it, owner-only.
public enum DataBackup {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The data directory has no database to back up.
        case noDatabase(String)
        /// The destination exists and is not an empty directory: a backup never overwrites.
        case destinationInUse(String)
        /// The copy failed SQLite's check (`PRAGMA quick_check`); it was not kept.
        case copyDamaged(String)
        /// A file of the data directory could not be written into the destination.
        case cannotWrite(String)

        public var description: String {
            switch self {
            case .noDatabase(let path):
                "There is no Parley database at \(path); give the server's data directory with --data."
            case .destinationInUse(let path):
                "\(path) already exists and is not empty; give a new directory for the backup."
            case .copyDamaged(let path):
                "The copy of the database failed SQLite's check and was removed; try again (\(path))."
            case .cannotWrite(let path):
                "Could not write \(path); check the space and permissions of the destination."
            }
        }
    }

    /// What a backup copied.
    public struct Summary: Sendable, Equatable {
        /// Bytes of the database copy.
        public var databaseBytes: Int64
        /// The other files copied, by name.
        public var files: [String]
    }

    static let databaseName = "parley.sqlite"

    /// Backs up `dataDirectory` into `destination`, a new (or empty) directory that then
    /// serves as a data directory: `parley serve --data DEST` runs on it.
    public static func run(dataDirectory: String, destination: String) throws -> Summary {
        let manager = FileManager.default
        let source = (dataDirectory as NSString).appendingPathComponent(databaseName)
        guard manager.fileExists(atPath: source) else { throw Failure.noDatabase(source) }
        if manager.fileExists(atPath: destination) {
            guard (try? manager.contentsOfDirectory(atPath: destination))?.isEmpty == true else {
                throw Failure.destinationInUse(destination)
            }
        }
        try manager.createDirectory(
            atPath: destination,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        // An empty directory given by the operator may have been made readable to others: the
        // copy holds password hashes and the TLS key, so it is owner-only like the original.
        try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: destination)
        let copied = try copyOtherFiles(from: dataDirectory, to: destination)
        let bytes = try copyDatabase(from: source, to: (destination as NSString).appendingPathComponent(databaseName))
        return Summary(databaseBytes: bytes, files: copied)
    }

    /// The database through the backup API into `target`.partial, checked, then renamed:
    /// an interrupted backup never leaves a file named like a finished one.
    static func copyDatabase(from source: String, to target: String) throws -> Int64 {
        let partial = target + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        // Not opened read-only: a WAL database whose server has stopped may lack its -shm
        // file, which a read-only connection cannot create. Nothing is written through it.
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        do {
            let reader = try DatabasePool(path: source, configuration: configuration)
            let copy = try DatabaseQueue(path: partial)
            try reader.backup(to: copy)
            let verdict = try copy.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            try copy.close()
            try reader.close()
            guard verdict == "ok" else { throw Failure.copyDamaged(target) }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: partial)
            try FileManager.default.moveItem(atPath: partial, toPath: target)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        let size = try FileManager.default.attributesOfItem(atPath: target)[.size] as? NSNumber
        return size?.int64Value ?? 0
    }

    /// Every regular file of the data directory but the database and its WAL, shared-memory
    /// and journal files (the backup API copies the database's content), owner-only.
    static func copyOtherFiles(from directory: String, to destination: String) throws -> [String] {
        let manager = FileManager.default
        let skipped = Set(["", "-wal", "-shm", "-journal", ".partial"].map { databaseName + $0 })
        var copied: [String] = []
        for name in try manager.contentsOfDirectory(atPath: directory).sorted() where !skipped.contains(name) {
            let path = (directory as NSString).appendingPathComponent(name)
            let attributes = try manager.attributesOfItem(atPath: path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            let target = (destination as NSString).appendingPathComponent(name)
            // Created owner-only from the start: the key is never, even briefly, readable by others.
            let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o600
            guard
                manager.createFile(
                    atPath: target,
                    contents: try Data(contentsOf: URL(fileURLWithPath: path)),
                    attributes: [.posixPermissions: permissions & 0o700]
                )
            else { throw Failure.cannotWrite(target) }
            copied.append(name)
        }
        return copied
    }
}
