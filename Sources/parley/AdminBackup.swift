import ArgumentParser
import Foundation
import ParleyServer

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the data directory consistently, also while the server runs.",
        discussion: """
            DEST must be a new or empty directory; it becomes a data directory of its own \
            (parley serve --data DEST). The database is copied with SQLite's online backup API \
            as of one moment, and checked; the TLS certificate and key are copied beside it.
            """
    )
    @Argument(help: "The directory to write the backup to.") var destination: String
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let configuration = try options.configuration()
            let summary = try DataBackup.run(dataDirectory: configuration.dataDirectory, destination: destination)
            let files = summary.files.isEmpty ? "" : " and " + summary.files.joined(separator: ", ")
            print(
                "Backed up \(configuration.dataDirectory) to \(destination): database (\(summary.databaseBytes) bytes)\(files)."
            )
        }
    }
}
