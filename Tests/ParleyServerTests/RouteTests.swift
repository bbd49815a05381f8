import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// The HTTP routes driven in memory through Hummingbird's router test mode: no socket, no TLS.
/// The loopback suites (ServerTests and the attack suites) cover the same API end to end.
@Suite struct RouteTests {
    /// Every route that acts for a device, with a body that would be valid enough to reach it.
    static let authenticatedRoutes: [(HTTPRequest.Method, String)] = [
        (.get, "/v1/groups"), (.post, "/v1/groups"), (.get, "/v1/groups/g"), (.get, "/v1/groups/g/tree"),
        (.delete, "/v1/groups/g"), (.get, "/v1/keypackages"), (.post, "/v1/keypackages"),
        (.get, "/v1/users/alice"), (.post, "/v1/users/alice/keypackages/claim"),
    ]

    /// Runs `body` against a server's router, without starting the server.
    private static func withRouter(
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (ParleyServer, any TestClientProtocol) async throws -> Void
    ) async throws {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = NSTemporaryDirectory() + "parley-routes-" + UUID().uuidString
        configuration.passwordHashCost = TestServer.passwordHashCost
        configure(&configuration)
        defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
        var logger = Logger(label: "parley-route-test")
        logger.logLevel = .critical
        let server = try ParleyServer(configuration: configuration, logger: logger)
        let app = Application(router: server.routes.router(), logger: logger)
        try await app.test(.router) { client in try await body(server, client) }
    }

    private static func errorCode(_ response: TestResponse) -> ErrorCode? {
        try? WireJSON.decode(API.ErrorResponse.self, from: Data(buffer: response.body)).error.code
    }

    private static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    /// Registers `name` and logs in with a fresh device key; returns the session token.
    private static func login(
        _ name: String,
        server: ParleyServer,
        client: any TestClientProtocol
    ) async throws -> String {
        let password = "correct horse battery"
        let register = try WireJSON.encode(API.Register(username: name, password: password))
        try await client.execute(uri: "/v1/accounts", method: .post, body: ByteBuffer(bytes: register)) { response in
            #expect(response.status == .created)
        }
        let request = try WireJSON.encode(API.LoginChallengeRequest(username: name))
        let challenge = try await client.execute(
            uri: "/v1/sessions/challenge",
            method: .post,
            body: ByteBuffer(bytes: request)
        ) { try WireJSON.decode(API.LoginChallenge.self, from: Data(buffer: $0.body)) }
        let keys = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider().generateSignatureKeyPair()
        let login = try API.Login(
            username: name,
            password: password,
            challenge: challenge.challenge,
            signatureKeys: keys,
            serverCertificate: server.certificateDER
        )
        return try await client.execute(
            uri: "/v1/sessions",
            method: .post,
            body: ByteBuffer(bytes: try WireJSON.encode(login))
        ) { response in
            #expect(response.status == .ok)
            return try WireJSON.decode(API.Session.self, from: Data(buffer: response.body)).token
        }
    }

    @Test func everyDeviceRouteRefusesAMissingOrWrongToken() async throws {
        try await Self.withRouter { server, client in
            let valid = try await Self.login("alice", server: server, client: client)
            let wrong: [HTTPFields] = [
                [:], Self.bearer(""), Self.bearer("not-a-session"), [.authorization: "Basic \(valid)"],
                Self.bearer(String(valid.dropLast()) + "x"), Self.bearer(String(repeating: "a", count: 129)),
            ]
            for (method, uri) in Self.authenticatedRoutes {
                for headers in wrong {
                    try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: "{}"))
                    {
                        response in
                        #expect(response.status == .unauthorized, "\(method) \(uri)")
                        #expect(Self.errorCode(response) == .unauthorized, "\(method) \(uri)")
                    }
                }
            }
            // After logout the token is refused too.
            try await client.execute(uri: "/v1/sessions", method: .delete, headers: Self.bearer(valid)) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/v1/groups", method: .get, headers: Self.bearer(valid)) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func bodiesOverTheLimitAreRefusedWhetherOrNotAuthenticated() async throws {
        try await Self.withRouter { server, client in
            let token = try await Self.login("alice", server: server, client: client)
            let huge = ByteBuffer(repeating: UInt8(ascii: " "), count: (1 << 20) + 1)
            try await client.execute(uri: "/v1/accounts", method: .post, body: huge) { response in
                #expect(response.status == .contentTooLarge)
                #expect(Self.errorCode(response) == .tooLarge)
            }
            for uri in ["/v1/keypackages", "/v1/groups"] {
                try await client.execute(uri: uri, method: .post, headers: Self.bearer(token), body: huge) {
                    response in
                    #expect(response.status == .contentTooLarge, "\(uri)")
                    #expect(Self.errorCode(response) == .tooLarge, "\(uri)")
                }
            }
            // Just under the limit, the body is read and judged on its content.
            let padded = ByteBuffer(string: "{}" + String(repeating: " ", count: (1 << 20) - 2))
            try await client.execute(uri: "/v1/groups", method: .post, headers: Self.bearer(token), body: padded) {
                response in
                #expect(response.status == .badRequest)
                #expect(Self.errorCode(response) == .malformedRequest)
            }
        }
    }

    @Test func aLoggedInDeviceSeesItsStockAndOthersRecords() async throws {
        try await Self.withRouter { server, client in
            let alice = try await Self.login("alice", server: server, client: client)
            _ = try await Self.login("bob", server: server, client: client)
            try await client.execute(uri: "/v1/keypackages", method: .get, headers: Self.bearer(alice)) { response in
                #expect(response.status == .ok)
                let stock = try WireJSON.decode(API.KeyPackageStock.self, from: Data(buffer: response.body))
                #expect(stock.available == 0)
            }
            try await client.execute(uri: "/v1/users/bob", method: .get, headers: Self.bearer(alice)) { response in
                let user = try WireJSON.decode(API.User.self, from: Data(buffer: response.body))
                #expect(user.username == "bob" && user.signatureKeys.count == 1)
            }
            try await client.execute(uri: "/v1/users/nobody", method: .get, headers: Self.bearer(alice)) { response in
                #expect(response.status == .notFound && Self.errorCode(response) == .userNotFound)
            }
            try await client.execute(uri: "/v1/groups", method: .get, headers: Self.bearer(alice)) { response in
                let groups = try WireJSON.decode(API.Groups.self, from: Data(buffer: response.body))
                #expect(groups.groups.isEmpty)
            }
            // notMember for a group that does not exist: no name oracle (finding 18).
            try await client.execute(uri: "/v1/groups/nothing", method: .get, headers: Self.bearer(alice)) {
                response in
                #expect(response.status == .forbidden && Self.errorCode(response) == .notMember)
            }
        }
    }

    @Test func metricsAreOnlyForThisMachineOrTheScraperToken() async throws {
        try await Self.withRouter(configure: { $0.metricsToken = "scrape-secret" }) { _, client in
            // The router test channel has no peer address: not loopback.
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: Self.bearer("scrape-secreT")) {
                response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: Self.bearer("scrape-secret")) {
                response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("parley_messages_accepted_total"))
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(String(buffer: response.body) == "ok\n")
            }
        }
    }
}
