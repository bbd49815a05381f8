import Foundation
import Hummingbird
import ParleyProtocol

extension Routes {
    /// `parley upgrade`: the successor of a group a ReInit closed (DeliveryShard+Successor).
    func addUpgrade(to v1: RouterGroup<AuthenticatedContext>) {
        v1.post("groups/:name/successor") { request, context in
            // Two messages of up to max_frame_bytes each, base64 in JSON: more than the usual body.
            let successor: API.Successor
            do {
                let body = try await request.body.collect(upTo: configuration.maxFrameBytes * 3)
                successor = try WireJSON.decode(API.Successor.self, from: Data(buffer: body))
            } catch {
                throw ErrorBody(.malformedRequest, "The successor must be JSON with an id, a groupInfo and a welcome.")
            }
            let seq = try await delivery.registerSuccessor(successor, of: try Self.name(context), by: context.device)
            return try json(API.SuccessorAccepted(seq: seq))
        }
    }
}
