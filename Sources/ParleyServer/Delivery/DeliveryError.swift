import MLS
import ParleyProtocol

/// Why the delivery service refused a submitted message. Thrown by the submission pipeline
/// (``DeliveryService/submit(_:from:)``) and turned into the wire's ``ErrorBody`` in one
/// place, ``WireError``, at the HTTP and WebSocket edge; nothing depends on the sentences.
enum DeliveryError: Error, Hashable, Sendable {
    enum Quota: Hashable, Sendable {
        case user, group
    }

    case rateLimited
    /// The message or its Welcome is over the frame limit.
    case tooLarge
    /// The device is not a member of the group (or the group does not exist: no name oracle).
    case notMember
    /// The client id is empty or longer than ``DeliveryService/maxClientIDBytes``.
    case invalidClientID
    /// The device already used this id in this group for a different message.
    case clientIDReused
    case undecodable
    /// A Welcome, GroupInfo or KeyPackage sent as a group message.
    case notAGroupMessage
    /// A proposal or commit sent encrypted, where the server cannot check it.
    case handshakeNotPublic
    /// A PrivateMessage whose group ID is another group's.
    case otherGroup
    case wrongEpoch(current: UInt64)
    case quotaExceeded(Quota)
    /// A handshake message signed by another leaf than the submitting device's.
    case notOwnHandshake
    /// A Remove names a leaf outside the tree (finding 10).
    case leafOutsideTree(LeafIndex)
    case tooManyProposals
    case tooManyMembers
    /// A commit that adds devices came without a usable Welcome.
    case missingWelcome
    /// An Add carries a KeyPackage the added device did not upload.
    case foreignKeyPackage
    /// The Welcome is addressed to a KeyPackage of no added device.
    case misaddressedWelcome
    /// The Welcome does not cover every added device.
    case incompleteWelcome
    /// The public view refused the message.
    case rejected(MLSError)
    /// The public view failed on it with an error of no known kind.
    case unprocessable
    /// The log writer's queue is full: the server is saturated (issue 15's bounded queues).
    case busy
    /// A send with the same id is still being stored; its echo follows.
    case resendInFlight
    /// Storage refused it, or the server is stopping: nothing was stored.
    case notStored
    /// A ReInit closed the group; only its successor follows (DeliveryShard+Successor).
    case groupClosed
    /// A successor the server does not adopt; the case says why.
    case invalidSuccessor(SuccessorProblem)

    var errorBody: ErrorBody {
        switch self {
        case .rateLimited: ErrorBody(.rateLimited)
        case .tooLarge: ErrorBody(.tooLarge)
        case .notMember: ErrorBody(.notMember)
        case .invalidClientID:
            ErrorBody(.malformedRequest, "A send's id must be 1 to \(DeliveryService.maxClientIDBytes) bytes.")
        case .clientIDReused:
            ErrorBody(.malformedRequest, "This id was already used for another message in this group; use a new id.")
        case .undecodable: ErrorBody(.invalidMessage, "The message could not be decoded.")
        case .notAGroupMessage:
            ErrorBody(.invalidMessage, "Only PublicMessage and PrivateMessage can be sent to a group.")
        case .handshakeNotPublic:
            ErrorBody(
                .invalidMessage,
                "Proposals and commits must be sent as PublicMessage so the server can check them."
            )
        case .otherGroup: ErrorBody(.invalidMessage, "The message is for another group.")
        case .wrongEpoch(let current): ErrorBody(.wrongEpoch, epoch: current)
        case .quotaExceeded(.user):
            ErrorBody(
                .quotaExceeded,
                "Your account stores as much as this server allows; wait until your messages are read."
            )
        case .quotaExceeded(.group):
            ErrorBody(.quotaExceeded, "This group stores as much as this server allows; wait until members catch up.")
        case .notOwnHandshake:
            ErrorBody(.invalidMessage, "A device may only submit handshake messages it signed itself.")
        case .leafOutsideTree(let leaf): ErrorBody(.invalidMessage, "A Remove names \(leaf), outside the group's tree.")
        case .tooManyProposals: ErrorBody(.tooManyProposals)
        case .tooManyMembers: ErrorBody(.tooManyMembers)
        case .missingWelcome: ErrorBody(.invalidMessage, "A commit that adds members must come with their Welcome.")
        case .foreignKeyPackage:
            ErrorBody(.invalidMessage, "An Add carries a KeyPackage the added device did not upload.")
        case .misaddressedWelcome:
            ErrorBody(.invalidMessage, "The Welcome is addressed to a key package of no added device.")
        case .incompleteWelcome: ErrorBody(.invalidMessage, "The Welcome does not cover every added device.")
        case .rejected(.wrongEpoch(_, let current)): ErrorBody(.wrongEpoch, epoch: current)
        case .rejected(.rejectedByPolicy(let rejection)): ParleyPolicyError.errorBody(for: rejection)
        case .rejected(let error): ErrorBody(.invalidMessage, "The server rejected the message: \(error).")
        case .unprocessable: ErrorBody(.invalidMessage, "The server could not process the message.")
        case .busy: ErrorBody(.rateLimited, "The server is busy; send again in a moment.")
        case .resendInFlight:
            ErrorBody(.rateLimited, "A message with this id is still being stored; its echo follows.")
        case .notStored: ErrorBody(.internalError, "The message was not stored; send it again.")
        case .groupClosed: ErrorBody(.groupClosed)
        case .invalidSuccessor(let problem): problem.errorBody
        }
    }
}
