import Foundation
import Hummingbird
import MLS
import ParleyProtocol

extension Routes {
    /// The KeyPackage directory: a device's own stock, and claims of other users' packages.
    func addKeyPackages(to v1: RouterGroup<AuthenticatedContext>) {
        v1.post("keypackages") { request, context in
            let upload = try await request.decode(as: API.UploadKeyPackages.self, context: context)
            return try json(try directory.upload(upload, from: context.device))
        }
        v1.get("keypackages") { request, context in
            // `?suite=N`: the stock of that cipher suite (RFC 9420 §10); the standard suite without it.
            let suite = try request.uri.queryParameters["suite"].map { text -> CipherSuite in
                guard let value = UInt16(String(text)) else { throw ErrorBody(.malformedRequest, "suite is a number.") }
                return CipherSuite(rawValue: value)
            }
            return try json(try directory.stock(of: context.device, suite: suite ?? ParleySuites.standard))
        }
        v1.post("users/:name/keypackages/claim") { request, context in
            // The body is optional (devices to skip); an empty one skips none.
            let claim: API.ClaimKeyPackages
            do {
                let body = try await request.body.collect(upTo: 64 << 10)
                claim =
                    body.readableBytes == 0
                    ? API.ClaimKeyPackages(skip: [])
                    : try WireJSON.decode(API.ClaimKeyPackages.self, from: Data(buffer: body))
            } catch {
                throw ErrorBody(.malformedRequest, "The claim's body is not a list of devices to skip.")
            }
            guard claim.skip.count <= API.ClaimKeyPackages.maxSkipped else { throw ErrorBody(.tooLarge) }
            return try json(
                try directory.claim(
                    username: try Self.name(context),
                    by: context.device,
                    skipping: Set(claim.skip.map { [UInt8]($0) }),
                    suite: claim.suite.map(CipherSuite.init(rawValue:)) ?? ParleySuites.standard
                )
            )
        }
    }
}
