import Hummingbird
import ParleyProtocol

/// Finds the device behind a request's bearer token and puts it in the context; a request
/// without a valid session is answered `unauthorized` before any route runs.
struct DeviceAuthenticator: RouterMiddleware {
    typealias Context = ParleyRequestContext
    let accounts: AccountService

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.device = try accounts.authenticate(token: Routes.token(from: request.headers[.authorization]))
        return try await next(request, context)
    }
}

/// The context of routes that need a logged-in device: the device is there, not optional, so a
/// route cannot forget to authenticate, and none reaches into storage to find it.
struct AuthenticatedContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    let device: DeviceRecord
    private let maxBody: Int

    init(context: ParleyRequestContext) throws {
        // Only reachable behind `DeviceAuthenticator`; refused rather than trusted if it is not.
        guard let device = context.device else { throw ErrorBody(.unauthorized) }
        coreContext = context.coreContext
        self.device = device
        maxBody = context.maxUploadSize
    }

    var maxUploadSize: Int { maxBody }
}
