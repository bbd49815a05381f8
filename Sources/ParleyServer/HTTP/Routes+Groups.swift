import Hummingbird
import ParleyProtocol

extension Routes {
    /// Groups: creation, listing, description, ratchet tree and destruction. Non-members get
    /// `notMember` whether or not the group exists: no name oracle (finding 18).
    func addGroups(to v1: RouterGroup<AuthenticatedContext>) {
        v1.post("groups") { request, context in
            let creation = try await request.decode(as: API.CreateGroup.self, context: context)
            return try json(try await delivery.createGroup(creation, by: context.device), status: .created)
        }
        v1.get("groups") { _, context in
            try json(API.Groups(groups: try await delivery.groups(of: context.device)))
        }
        v1.get("groups/:name") { _, context in
            try json(try await delivery.describe(named: try Self.name(context), for: context.device))
        }
        v1.get("groups/:name/tree") { _, context in
            try json(try await delivery.ratchetTree(of: try Self.name(context), for: context.device))
        }
        v1.delete("groups/:name") { request, context -> Response in
            // `?notice=SEQ`: the seq of the admin's signed destroy message, kept for members.
            let notice = request.uri.queryParameters["notice"].flatMap { UInt64(String($0)) }
            try await delivery.destroy(name: try Self.name(context), by: context.device, notice: notice)
            return Response(status: .noContent)
        }
    }
}
