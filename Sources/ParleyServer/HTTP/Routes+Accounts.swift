import Hummingbird
import ParleyProtocol

extension Routes {
    /// Registration, login and logout: the routes that work without a session.
    func addSessions(to v1: RouterGroup<ParleyRequestContext>) {
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
    }

    /// Other users' public records, for a logged-in device.
    func addUsers(to v1: RouterGroup<AuthenticatedContext>) {
        v1.get("users/:name") { _, context in
            try json(try accounts.publicRecord(of: try Self.name(context)))
        }
    }
}
