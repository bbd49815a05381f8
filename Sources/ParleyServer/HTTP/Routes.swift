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

    func router() -> Router<ParleyRequestContext> {
        let router = Router(context: ParleyRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        router.get("healthz") { _, _ in "ok\n" }
        router.get("metrics") { _, _ in
            metrics.connections(hub.count)
            return metrics.exposition()
        }
        let v1 = router.group("v1")
        v1.post("accounts") { request, context -> Response in
            let body = try await request.decode(as: API.Register.self, context: context)
            try accounts.register(body)
            return Response(status: .created)
        }
        v1.post("sessions") { request, context in
            try json(try accounts.login(try await request.decode(as: API.Login.self, context: context), address: context.address))
        }
        v1.delete("sessions") { request, _ -> Response in
            try accounts.logout(token: try bearer(request).token)
            return Response(status: .noContent)
        }
        v1.post("keypackages") { request, context in
            let device = try authenticate(request)
            return try json(try directory.upload(try await request.decode(as: API.UploadKeyPackages.self, context: context), from: device))
        }
        v1.get("keypackages") { request, _ in
            try json(try directory.stock(of: try authenticate(request)))
        }
        v1.post("users/:name/keypackages/claim") { request, context in
            let device = try authenticate(request)
            return try json(try directory.claim(username: try context.parameters.require("name"), by: device))
        }
        v1.get("users/:name") { request, context in
            _ = try authenticate(request)
            let name = try context.parameters.require("name")
            guard let user = try accounts.storage.user(named: name) else { throw ErrorBody(.userNotFound) }
            return try json(API.User(username: name, signatureKeys: try accounts.storage.devices(ofUser: user.id).map { Data($0.signatureKey) }))
        }
        v1.post("groups") { request, context in
            let device = try authenticate(request)
            return try json(try await delivery.createGroup(try await request.decode(as: API.CreateGroup.self, context: context), by: device), status: .created)
        }
        v1.get("groups") { request, _ in
            try json(API.Groups(groups: try await delivery.groups(of: try authenticate(request))))
        }
        v1.get("groups/:name") { request, context in
            let device = try authenticate(request)
            // notMember whether or not the group exists: no name oracle (finding 18).
            return try json(try await delivery.describe(named: try context.parameters.require("name"), for: device))
        }
        v1.get("groups/:name/tree") { request, context in
            try json(try await delivery.ratchetTree(of: try context.parameters.require("name"), for: try authenticate(request)))
        }
        v1.delete("groups/:name") { request, context -> Response in
            try await delivery.destroy(name: try context.parameters.require("name"), by: try authenticate(request))
            return Response(status: .noContent)
        }
        return router
    }

    private func authenticate(_ request: Request) throws -> DeviceRecord {
        try bearer(request).device
    }

    private func bearer(_ request: Request) throws -> (token: String, device: DeviceRecord) {
        let token = Self.token(from: request.headers[.authorization])
        return (token ?? "", try accounts.authenticate(token: token))
    }

    static func token(from header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst("Bearer ".count))
    }

    private func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try WireJSON.encode(value))))
    }
}
