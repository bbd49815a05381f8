import Foundation
import Hummingbird
import NIOCore
import ParleyProtocol

/// Turns every error into `{"error": {"code", "message"}}` with a fitting status,
/// so clients see one shape whatever failed.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ErrorBody {
            return try Self.response(error)
        } catch let error as HTTPError {
            let code: ErrorCode =
                switch error.status.code {
                case 413: .tooLarge
                case 404: .notFound
                case 401: .unauthorized
                case 400..<500: .malformedRequest
                default: .internalError
                }
            return try Self.response(ErrorBody(code), status: error.status)
        } catch is NIOTooManyBytesError {
            // A body over the request context's upload limit, found while it is collected.
            return try Self.response(ErrorBody(.tooLarge))
        } catch is DecodingError {
            return try Self.response(ErrorBody(.malformedRequest))
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return try Self.response(ErrorBody(.internalError))
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
