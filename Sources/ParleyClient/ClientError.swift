import ParleyProtocol

/// Client-side failures, each with a sentence that says what to do next.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    case notLoggedIn
    case wrongPassword
    case server(ErrorBody)
    case unreachable(String)
    case certificateChanged(pinned: String, presented: String)
    case noSuchGroup(String)
    case noSuchMember(String, group: String)
    case timedOut
    case invalid(String)
    /// This member can no longer follow the group; the reason says why.
    case groupUnusable(String, reason: String)
    /// The server sent one frame larger than the client accepts; the connection was closed.
    case frameTooLarge(limit: Int)

    /// The server is gone: nothing else can work until it is back.
    var isConnectionLoss: Bool {
        switch self {
        case .unreachable, .frameTooLarge: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .notLoggedIn:
            "This home is not logged in; run `parley register NAME` or `parley login NAME` first."
        case .wrongPassword:
            "The password does not unlock this home's keys."
        case .server(let error):
            error.message
        case .unreachable(let detail):
            "The server cannot be reached (\(detail)); check the URL and that it is running."
        case .certificateChanged(let pinned, let presented):
            "The server's TLS certificate changed (pinned \(pinned), now \(presented)). "
                + "If the operator confirms the change, run `parley login NAME --accept-new-certificate`; "
                + "otherwise someone may be intercepting the connection."
        case .noSuchGroup(let name):
            "You are not in a group called \(name); `parley groups` lists yours."
        case .noSuchMember(let user, let group):
            "\(user) is not a member of \(group)."
        case .timedOut:
            "The server did not answer in time; try again."
        case .invalid(let message):
            message
        case .frameTooLarge(let limit):
            "The server sent a frame larger than \(limit) bytes, which this client does not accept, so the "
                + "connection was closed; the next command reconnects. If it keeps happening, tell the operator."
        case .groupUnusable(let name, let reason):
            "You can no longer follow \(name): \(reason) Ask an admin to remove you and add you again."
        }
    }
}
