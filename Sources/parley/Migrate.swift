import ArgumentParser
import ParleyServer

/// `parley admin migrate --database postgres://…`: the data directory's SQLite database, copied
/// into an empty PostgreSQL database. The TLS certificate stays in the data directory.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the data directory's SQLite database into an empty PostgreSQL database.",
        discussion: """
            Stop the server first. Then start it with the same --database (or PARLEY_DATABASE) and data \
            directory, which still holds the TLS certificate.
            """
    )
    @OptionGroup var options: ServerOptions

    func run() async throws {
        try Operator.run {
            let configuration = try options.configuration()
            guard let database = configuration.database else {
                throw Operator.Failure(
                    description: "Name the PostgreSQL database: --database postgres://user@host:port/db."
                )
            }
            let url = try DatabaseURL(database)
            let summary = try SQLiteToPostgres.copy(sqlitePath: configuration.databasePath, to: url)
            for (table, rows) in summary { print("\(table): \(rows)") }
            print("Copied \(configuration.dataDirectory) into \(url).")
        }
    }
}
