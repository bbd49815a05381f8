import Foundation
import Hummingbird
import ParleyProtocol

/// The HTTP API (docs/PROTOCOL.md), grouped by concern: operations (health, metrics), sessions
/// and accounts, key packages, groups. Routes that act for a device run behind
/// ``DeviceAuthenticator`` with an ``AuthenticatedContext``.
struct Routes {
    let accounts: AccountService
    let directory: KeyPackageDirectory
    let delivery: DeliveryService
    let metrics: ServerMetrics
    let hub: ConnectionHub
    let configuration: ServerConfiguration
    let linking: LinkService

    func router() -> Router<ParleyRequestContext> {
        let router = Router(context: ParleyRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        addOperations(to: router)
        addSessions(to: router.group("v1"))
        addLinkRequests(to: router.group("v1"))
        let authenticated = router.group("v1")
            .add(middleware: DeviceAuthenticator(accounts: accounts))
            .group(context: AuthenticatedContext.self)
        addUsers(to: authenticated)
        addDevices(to: authenticated)
        addKeyPackages(to: authenticated)
        addGroups(to: authenticated)
        addUpgrade(to: authenticated)
        addLinking(to: authenticated)
        return router
    }

    // MARK: Operations

    private func addOperations(to router: Router<ParleyRequestContext>) {
        router.get("healthz") { _, _ in "ok\n" }
        router.get("metrics") { request, context in
            guard metricsAllowed(request, context) else { throw ErrorBody(.notFound) }
            metrics.connections(hub.count)
            return metrics.exposition()
        }
    }

    /// Metrics reveal load and user counts: only to this machine, or to a scraper with the token.
    private func metricsAllowed(_ request: Request, _ context: ParleyRequestContext) -> Bool {
        if context.isLoopback { return true }
        guard let expected = configuration.metricsToken, !expected.isEmpty,
            let given = Self.token(from: request.headers[.authorization])
        else { return false }
        return constantTimeEquals(Array(given.utf8), Array(expected.utf8))
    }

    // MARK: Helpers

    /// The `{name}` path segment, percent-decoded: Hummingbird hands parameters over as they
    /// appear in the raw path, so without this a group named "caf\u{E9}" or "our team" could
    /// never be described, fetched or destroyed (clients encode every byte outside a-z 0-9 - . _ ~).
    static func name(_ context: some RequestContext) throws -> String {
        guard let name = try context.parameters.require("name").removingPercentEncoding else {
            throw ErrorBody(.malformedRequest, "The name in the path is not valid percent-encoded UTF-8.")
        }
        // No user's or group's name holds a control character; "g%00" must not reach a storage
        // whose text comparison could stop at the NUL and take it for "g".
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ErrorBody(.malformedRequest, "The name in the path contains a control character.")
        }
        return name
    }

    static func token(from header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst("Bearer ".count))
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try WireJSON.encode(value)))
        )
    }
}
