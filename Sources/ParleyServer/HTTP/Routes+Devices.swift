import Hummingbird
import ParleyProtocol

extension Routes {
    /// The signed device directory: anyone logged in reads a user's list; a device of the
    /// account publishes a newer one (docs/PROTOCOL.md, "Device directory").
    func addDevices(to v1: RouterGroup<AuthenticatedContext>) {
        v1.get("users/:name/devices") { _, context in
            try json(try accounts.directory.list(of: try Self.name(context)))
        }
        v1.get("devices") { _, context in
            try json(try accounts.directory.activity(of: context.device))
        }
        v1.put("devices") { request, context -> Response in
            let body = try await request.decode(as: API.DeviceListBody.self, context: context)
            try accounts.directory.publish(body.deviceList, from: context.device)
            return Response(status: .noContent)
        }
    }
}
