import Foundation
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
        v1.post("users/:name/keypackages/claim") { request, context in
            // The body is optional (devices to skip); an empty one skips none.
            let skip: [Data]
            do {
                let body = try await request.body.collect(upTo: 64 << 10)
                skip =
                    body.readableBytes == 0
                    ? [] : try WireJSON.decode(API.ClaimKeyPackages.self, from: Data(buffer: body)).skip
            } catch {
                throw ErrorBody(.malformedRequest, "The claim's body is not a list of devices to skip.")
            }
            guard skip.count <= API.ClaimKeyPackages.maxSkipped else { throw ErrorBody(.tooLarge) }
            return try json(
                try directory.claim(
                    username: try Self.name(context),
                    by: context.device,
                    skipping: Set(skip.map { [UInt8]($0) })
                )
            )
        }
    }
}
