import Hummingbird
import Logging
import NIOCore
import ParleyProtocol

/// The one place errors become what a client is told: every HTTP response's and WebSocket
/// frame's ``ErrorBody`` comes from here. Each layer throws its own typed errors; the code is
/// chosen by their case, never by their text. Anything unforeseen is logged and answered as
/// `internalError`, without its details.
enum WireError {
    static func body(for error: any Error, logger: Logger) -> ErrorBody {
        switch error {
        case let body as ErrorBody: return body
        case let error as DeliveryError: return error.errorBody
        case let error as ParleyPolicyError: return error.errorBody
        case let error as HTTPError:
            switch error.status.code {
            case 413: return ErrorBody(.tooLarge)
            case 404: return ErrorBody(.notFound)
            case 401: return ErrorBody(.unauthorized)
            case 400..<500: return ErrorBody(.malformedRequest)
            default: return ErrorBody(.internalError)
            }
        case is NIOTooManyBytesError:
            // A body over the request context's upload limit, found while it is collected.
            return ErrorBody(.tooLarge)
        case is DecodingError: return ErrorBody(.malformedRequest)
        default:
            logger.error("request failed", metadata: ["error": "\(error)"])
            return ErrorBody(.internalError)
        }
    }
}
