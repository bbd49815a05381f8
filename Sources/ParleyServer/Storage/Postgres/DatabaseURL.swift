import Foundation

/// Where the server keeps its state: `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`.
/// Its description never shows the password, so a URL can be logged or printed as is.
///
/// TLS: a host that is not loopback is reached over TLS unless the URL says `sslmode=disable`
/// (the password and every message would cross the network in clear otherwise). With TLS the
/// server's certificate is always verified, chain and host name (`require` and `verify-full`
/// mean the same here, stricter than libpq's `require`): against the system's roots, or against
/// the CA certificate (PEM) at `sslrootcert=PATH` for a private CA.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// TLS to the database, its certificate checked against the system's roots or ``rootCertificate``.
    public var requireTLS: Bool
    /// `sslrootcert=PATH`: the PEM file of the CA that signed the database's certificate.
    public var rootCertificate: String?

    /// Parses `string`; throws ``PostgresStorageError/invalidURL(_:)`` with a sentence that never repeats
    /// the password.
    public init(_ string: String) throws {
        guard Self.isPostgres(string) else { throw PostgresStorageError.invalidURL("it must start with postgres://") }
        guard let components = URLComponents(string: string) else {
            throw PostgresStorageError.invalidURL("it is not a URL (percent-encode special characters in the password)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresStorageError.invalidURL("it names no host (postgres://user@host:port/database)")
        }
        guard let username = components.user, !username.isEmpty else {
            throw PostgresStorageError.invalidURL("it names no user (postgres://user@host:port/database)")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw PostgresStorageError.invalidURL("its port is out of range") }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let (requireTLS, rootCertificate) = try Self.tls(components.queryItems ?? [], host: host)
        self.host = host
        self.port = port
        self.username = username
        self.password = components.password
        self.database = path.isEmpty ? username : path
        self.requireTLS = requireTLS
        self.rootCertificate = rootCertificate
    }

    /// TLS unless the host is loopback or `sslmode=disable` says otherwise.
    private static func tls(_ items: [URLQueryItem], host: String) throws -> (Bool, String?) {
        var mode: Bool?
        var rootCertificate: String?
        for item in items {
            switch (item.name, item.value) {
            case ("sslmode", "require"), ("sslmode", "verify-full"): mode = true
            case ("sslmode", "disable"): mode = false
            case ("sslrootcert", let path?) where !path.isEmpty: rootCertificate = path
            default:
                throw PostgresStorageError.invalidURL(
                    "only sslmode=disable, sslmode=require, sslmode=verify-full and sslrootcert=PATH are understood"
                )
            }
        }
        if mode == false, rootCertificate != nil {
            throw PostgresStorageError.invalidURL("sslrootcert needs TLS, which sslmode=disable turns off")
        }
        return (mode ?? !isLoopback(host), rootCertificate)
    }

    /// Names of this machine itself: traffic to them never leaves it.
    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// What the URL says about TLS, as a query string (empty for the default).
    private var tlsQuery: String {
        var items: [String] = []
        if requireTLS != !Self.isLoopback(host) { items.append(requireTLS ? "sslmode=verify-full" : "sslmode=disable") }
        if let rootCertificate { items.append("sslrootcert=\(rootCertificate)") }
        return items.isEmpty ? "" : "?" + items.joined(separator: "&")
    }

    /// Whether `string` asks for PostgreSQL rather than SQLite.
    public static func isPostgres(_ string: String) -> Bool {
        string.hasPrefix("postgres://") || string.hasPrefix("postgresql://")
    }

    /// `debugPrint`, `dump` and reflection show the redacted form too.
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["url": description]) }

    /// The URL with the password replaced by `***`: the only form that is printed or logged.
    public var description: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = username
        components.host = host
        components.port = port
        components.path = "/" + database
        let redacted = components.string ?? "postgres://\(host):\(port)"
        guard password != nil, let at = redacted.firstIndex(of: "@") else { return redacted + tlsQuery }
        return redacted[..<at] + ":***" + redacted[at...] + tlsQuery
    }
}

/// Why PostgreSQL storage could not start or answer, in terms an operator can act on.
public enum PostgresStorageError: Error, Equatable, CustomStringConvertible {
    case invalidURL(String)
    /// The database could not be reached or refused the login (the URL is shown without its password).
    case unreachable(DatabaseURL, reason: String)
    /// The database's schema is newer than this server knows: an older `parley` against a newer database.
    case schemaTooNew(found: Int, known: Int)
    /// The database does not store text as UTF-8, so names would not round-trip byte for byte.
    case notUTF8(encoding: String)
    /// A storage call was made on the storage's own event loop, where waiting would deadlock.
    case calledOnEventLoop
    /// The storage was closed.
    case closed
    /// `parley admin migrate` copies into an empty database only.
    case targetNotEmpty
    /// `parley admin migrate` found no SQLite database at this path.
    case noSource(String)
    /// COMMIT did not commit (PostgreSQL answers ROLLBACK for a transaction that failed).
    case notCommitted

    public var description: String {
        switch self {
        case .invalidURL(let reason): "The database URL is not usable: \(reason)."
        case .unreachable(let url, let reason): "Cannot use the database \(url): \(reason)."
        case .schemaTooNew(let found, let known):
            "The database's schema is version \(found), newer than this parley knows (\(known)): upgrade parley."
        case .notUTF8(let encoding):
            "The database's encoding is \(encoding); Parley needs UTF8 (createdb -E UTF8)."
        case .calledOnEventLoop: "PostgreSQL storage was called on its own event loop."
        case .closed: "PostgreSQL storage was closed."
        case .targetNotEmpty:
            "The PostgreSQL database already has accounts or groups; migrate copies into an empty database only."
        case .noSource(let path): "There is no SQLite database at \(path)."
        case .notCommitted: "PostgreSQL rolled the transaction back instead of committing it."
        }
    }
}
