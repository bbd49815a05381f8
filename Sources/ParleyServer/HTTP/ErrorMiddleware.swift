import Foundation
import Hummingbird
import ParleyProtocol

/// Turns every error into `{"error": {"code", "message"}}` (the body from ``WireError``) with a
/// fitting status, so clients see one shape whatever failed.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var logger = context.logger
            logger[metadataKey: "path"] = "\(request.uri.path)"
            // Hummingbird's own errors keep their status (405, 414, ...); ours take the code's.
            return try Self.response(WireError.body(for: error, logger: logger), status: (error as? HTTPError)?.status)
        }
    }

    static func response(_ error: ErrorBody, status: HTTPResponse.Status? = nil) throws -> Response {
        Response(
            status: status ?? Self.status(for: error.code),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try WireJSON.encode(API.ErrorResponse(error: error))))
        )
    }

    static func status(for code: ErrorCode) -> HTTPResponse.Status {
        switch code {
        case .userNotFound, .groupNotFound, .noKeyPackages, .notFound: .notFound
        case .invalidPassword, .unauthorized: .unauthorized
        case .usernameTaken, .groupNameInUse, .wrongEpoch, .tooManyMembers: .conflict
        case .usernameRetired, .signatureKeyInUse: .conflict
        case .registrationClosed, .invalidInvite, .notMember, .notPermitted, .tooManyDevices: .forbidden
        case .deviceNotListed: .forbidden
        case .invalidDeviceList, .groupClosed: .conflict
        case .invalidLoginProof: .unauthorized
        case .rateLimited: .tooManyRequests
        case .quotaExceeded: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .tooManyProposals: .conflict
        case .tooLarge: .contentTooLarge
        case .internalError: .internalServerError
        case .invalidUsername, .weakPassword, .invalidMessage, .invalidGroupInfo, .invalidKeyPackage, .malformedRequest:
            .badRequest
        }
    }
}
