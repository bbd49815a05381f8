import Foundation
import Testing

@testable import ParleyServer

/// TLS to the database: required off this machine unless turned off in so many words, always
/// verified, with a private CA when one is named.
@Suite(.storageThreads) struct DatabaseTLSTests {
    @Test func tlsIsRequiredForAnyHostThatIsNotLoopback() throws {
        for host in ["db.example.com", "10.0.0.7", "[2001:db8::1]", "127.0.0.1.example.com"] {
            #expect(try DatabaseURL("postgres://parley@\(host)/parley").requireTLS, "\(host)")
        }
        for host in ["localhost", "127.0.0.1", "127.1.2.3", "[::1]"] {
            #expect(try !DatabaseURL("postgres://parley@\(host)/parley").requireTLS, "\(host)")
        }
        #expect(try !DatabaseURL("postgres://parley@db.example.com/parley?sslmode=disable").requireTLS)
        #expect(try DatabaseURL("postgres://parley@localhost/parley?sslmode=require").requireTLS)
        let privateCA = try DatabaseURL(
            "postgres://parley@db.example.com/parley?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        )
        #expect(privateCA.requireTLS && privateCA.rootCertificate == "/etc/ca.pem")
        #expect(privateCA.description == "postgres://parley@db.example.com:5432/parley?sslrootcert=/etc/ca.pem")
        #expect(
            try DatabaseURL("postgres://parley:secret@db.example.com/parley?sslmode=disable").description
                == "postgres://parley:***@db.example.com:5432/parley?sslmode=disable"
        )
        for refused in ["sslmode=prefer", "sslmode=allow", "sslrootcert=", "sslmode=disable&sslrootcert=/ca.pem"] {
            #expect(throws: PostgresStorageError.self) {
                try DatabaseURL("postgres://parley@db.example.com/p?\(refused)")
            }
        }
    }

    /// The test cluster speaks no TLS: a URL that requires it is refused at connection, never
    /// silently downgraded to plain text.
    @Test func aServerWithoutTLSIsRefusedWhenTLSIsRequired() throws {
        var url = try TestPostgres.freshDatabase()
        url.requireTLS = true
        #expect(throws: PostgresStorageError.self) { try PostgresStorage(url: url, maxConnections: 1) }
        url.requireTLS = false
        try PostgresStorage(url: url, maxConnections: 1).close()
    }

    /// A CA file that cannot be read stops the start with a sentence, not a trap.
    @Test func anUnreadableRootCertificateIsRefused() throws {
        var url = try TestPostgres.freshDatabase()
        url.requireTLS = true
        url.rootCertificate = "/nonexistent/ca.pem"
        #expect(throws: PostgresStorageError.self) { try PostgresStorage(url: url, maxConnections: 1) }
    }
}
