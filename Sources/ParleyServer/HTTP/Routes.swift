import Foundation
import Hummingbird
import ParleyProtocol

/// The HTTP API (docs/PROTOCOL.md).
struct Routes {
    let accounts: AccountService
    let directory: KeyPackageDirectory
    let delivery: DeliveryService
    let metrics: ServerMetrics
    let hub: ConnectionHub
    let configuration: ServerConfiguration

    func router() -> Router<ParleyRequestContext> {
        let router = Router(context: ParleyRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        router.get("healthz") { _, _ in "ok\n" }
        router.get("metrics") { request, context in
            guard metricsAllowed(request, context) else { throw ErrorBody(.notFound) }
            metrics.connections(hub.count)
            return metrics.exposition()
        }
        let v1 = router.group("v1")
        v1.post("accounts") { request, context -> Response in
            let body = try await request.decode(as: API.Register.self, context: context)
            try await accounts.register(body, address: context.address)
            return Response(status: .created)
        }
        v1.post("sessions/challenge") { request, context in
            let body = try await request.decode(as: API.LoginChallengeRequest.self, context: context)
            return try json(try accounts.challenge(body, address: context.address))
        }
        v1.post("sessions") { request, context in
            let body = try await request.decode(as: API.Login.self, context: context)
            return try json(try await accounts.login(body, address: context.address))
        }
        v1.delete("sessions") { request, _ -> Response in
            try accounts.logout(token: Self.token(from: request.headers[.authorization]) ?? "")
            return Response(status: .noContent)
        }
        v1.post("keypackages") { request, context in
            let device = try authenticate(request)
            return try json(
                try directory.upload(
                    try await request.decode(as: API.UploadKeyPackages.self, context: context),
                    from: device
                )
            )
        }
        v1.get("keypackages") { request, _ in
            try json(try directory.stock(of: try authenticate(request)))
        }
        v1.post("users/:name/keypackages/claim") { request, context in
            let device = try authenticate(request)
            return try json(try directory.claim(username: try Self.name(context), by: device))
        }
        v1.get("users/:name") { request, context in
            _ = try authenticate(request)
            let name = try Self.name(context)
            guard let user = try accounts.storage.user(named: name) else { throw ErrorBody(.userNotFound) }
            return try json(
                API.User(
                    username: name,
                    signatureKeys: try accounts.storage.devices(ofUser: user.id).map { Data($0.signatureKey) }
                )
            )
        }
        v1.post("groups") { request, context in
            let device = try authenticate(request)
            return try json(
                try await delivery.createGroup(
                    try await request.decode(as: API.CreateGroup.self, context: context),
                    by: device
                ),
                status: .created
            )
        }
        v1.get("groups") { request, _ in
            try json(API.Groups(groups: try await delivery.groups(of: try authenticate(request))))
        }
        v1.get("groups/:name") { request, context in
            let device = try authenticate(request)
            // notMember whether or not the group exists: no name oracle (finding 18).
            return try json(try await delivery.describe(named: try Self.name(context), for: device))
        }
        v1.get("groups/:name/tree") { request, context in
            try json(try await delivery.ratchetTree(of: try Self.name(context), for: try authenticate(request)))
        }
        v1.delete("groups/:name") { request, context -> Response in
            try await delivery.destroy(name: try Self.name(context), by: try authenticate(request))
            return Response(status: .noContent)
        }
        return router
    }

    /// Metrics reveal load and user counts: only to this machine, or to a scraper with the token.
    private func metricsAllowed(_ request: Request, _ context: ParleyRequestContext) -> Bool {
        if context.isLoopback { return true }
        guard let expected = configuration.metricsToken, !expected.isEmpty,
            let given = Self.token(from: request.headers[.authorization])
        else { return false }
        return constantTimeEquals(Array(given.utf8), Array(expected.utf8))
    }

    private func authenticate(_ request: Request) throws -> DeviceRecord {
        try accounts.authenticate(token: Self.token(from: request.headers[.authorization]))
    }

    /// The `{name}` path segment, percent-decoded: Hummingbird hands parameters over as they
    /// appear in the raw path, so without this a group named "caf\u{E9}" or "our team" could
    /// never be described, fetched or destroyed (clients encode every byte outside a-z 0-9 - . _ ~).
    static func name(_ context: ParleyRequestContext) throws -> String {
        guard let name = try context.parameters.require("name").removingPercentEncoding else {
            throw ErrorBody(.malformedRequest, "The name in the path is not valid percent-encoded UTF-8.")
        }
        return name
    }

    static func token(from header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst("Bearer ".count))
    }

    private func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try WireJSON.encode(value)))
        )
    }
}
