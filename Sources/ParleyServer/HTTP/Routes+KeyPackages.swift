import Hummingbird
import ParleyProtocol

extension Routes {
    /// The KeyPackage directory: a device's own stock, and claims of other users' packages.
    func addKeyPackages(to v1: RouterGroup<AuthenticatedContext>) {
        v1.post("keypackages") { request, context in
            let upload = try await request.decode(as: API.UploadKeyPackages.self, context: context)
            return try json(try directory.upload(upload, from: context.device))
        }
        v1.get("keypackages") { _, context in
            try json(try directory.stock(of: context.device))
        }
        v1.post("users/:name/keypackages/claim") { _, context in
            try json(try directory.claim(username: try Self.name(context), by: context.device))
        }
    }
}
