import Hummingbird
import ParleyProtocol

extension Routes {
    /// The new device's half of linking, without a session (no device list names it yet): its
    /// request, carrying a login proof, and its polls for the approval.
    func addLinkRequests(to v1: RouterGroup<ParleyRequestContext>) {
        v1.post("link/requests") { request, context in
            let body = try await request.decode(as: API.PostLinkRequest.self, context: context)
            return try json(try await linking.create(body, address: context.address), status: .created)
        }
        v1.get("link/requests/:id/state") { _, context in
            try json(try linking.state(try context.parameters.require("id"), address: context.address))
        }
    }

    /// The approving device's lookup and sealed answer, and the new device's fetch of the bundle
    /// once it has logged in, and its acknowledgement (docs/PROTOCOL.md, "Linking a device").
    func addLinking(to v1: RouterGroup<AuthenticatedContext>) {
        v1.get("link/requests/:id") { _, context in
            try json(try linking.lookup(try context.parameters.require("id"), by: context.device))
        }
        v1.post("link/requests/:id/bundle") { request, context -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: HistoryBundle.maxSealedBytes)
            } catch {
                throw ErrorBody(.tooLarge)
            }
            try linking.answer(try context.parameters.require("id"), bundle: Array(buffer: body), by: context.device)
            return Response(status: .noContent)
        }
        v1.get("link/bundle") { _, context in
            Response(
                status: .ok,
                headers: [.contentType: "application/octet-stream"],
                body: .init(byteBuffer: ByteBuffer(bytes: try linking.bundle(for: context.device)))
            )
        }
        v1.delete("link/bundle") { _, context -> Response in
            try linking.acknowledgeBundle(of: context.device)
            return Response(status: .noContent)
        }
    }
}
