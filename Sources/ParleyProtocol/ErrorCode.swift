/// Every error the server reports, with a stable code for programs and a
/// sentence for people. The same codes appear in HTTP error bodies and in
/// WebSocket `error` frames.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    case userNotFound
    case invalidPassword
    case usernameTaken
    case invalidUsername
    case weakPassword
    case registrationClosed
    case invalidInvite
    case unauthorized
    case rateLimited
    case groupNameInUse
    case groupNotFound
    case notMember
    case notPermitted
    case wrongEpoch
    case invalidMessage
    case invalidGroupInfo
    case invalidKeyPackage
    case noKeyPackages
    case tooLarge
    case tooManyMembers
    case malformedRequest
    case notFound
    case internalError
    case quotaExceeded
    case tooManyProposals
    case invalidLoginProof
    case usernameRetired
    case signatureKeyInUse
    case tooManyDevices
    case deviceNotListed
    case invalidDeviceList
    /// A ReInit closed the group (`parley upgrade`): nothing more goes to it; its successor follows.
    case groupClosed

    /// What happened and what to do, in one sentence.
    public var sentence: String {
        switch self {
        case .userNotFound: "That user does not exist; check the spelling or ask them to register."
        case .invalidPassword: "The password is wrong; try again."
        case .usernameTaken: "That username is taken; pick another."
        case .invalidUsername: "Usernames are 3 to 32 characters of a-z, 0-9, '.', '_' and '-'."
        case .weakPassword: "Passwords need at least 8 characters."
        case .registrationClosed: "This server does not accept new registrations; ask its operator for an account."
        case .invalidInvite: "The invite token is missing or not valid; ask the operator for a new one."
        case .unauthorized: "You are not logged in or your session expired; log in again."
        case .rateLimited: "Too many attempts; wait a minute and try again."
        case .groupNameInUse: "A group with that name already exists; pick another name."
        case .groupNotFound: "That group does not exist."
        case .notMember: "You are not a member of that group."
        case .notPermitted: "Only a group admin may do that."
        case .wrongEpoch: "The group changed before your message arrived; catch up and send it again."
        case .invalidMessage: "The server rejected the message as invalid for this group."
        case .invalidGroupInfo: "The group description is invalid; the client should create the group again."
        case .invalidKeyPackage: "A key package is invalid; the client should generate new ones."
        case .noKeyPackages: "That user has no key packages left; they need to come online once."
        case .tooLarge: "The request or message is larger than this server accepts."
        case .tooManyMembers: "The group has reached this server's member limit."
        case .malformedRequest: "The request could not be understood."
        case .notFound: "Nothing is here."
        case .internalError: "The server failed to handle the request; try again later."
        case .quotaExceeded: "This group or account stores as much as this server allows; wait until members catch up."
        case .tooManyProposals: "This group has as many pending proposals as the server keeps; an admin must commit."
        case .invalidLoginProof: "The login proof is missing, expired or not signed by this device's key; log in again."
        case .usernameRetired: "That username belonged to a removed account and cannot be used again; pick another."
        case .signatureKeyInUse:
            "That device key belongs to another account or to a removed one; log in from a new home (a new device)."
        case .tooManyDevices:
            "This account has as many devices as this server allows; log in from a device you already use."
        case .deviceNotListed:
            "This device is not in the account's signed device list; approve it from a device of the account."
        case .invalidDeviceList:
            "The device list was refused: it is malformed, not signed by the account's identity key, or not newer."
        case .groupClosed:
            "This group is being upgraded: nothing more is sent to it; sync to join its successor, then send again."
        }
    }
}

/// An error as it travels: the code, a sentence, and the current epoch for `wrongEpoch`.
public struct ErrorBody: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var epoch: UInt64?

    public init(_ code: ErrorCode, _ message: String? = nil, epoch: UInt64? = nil) {
        self.code = code
        self.message = message ?? code.sentence
        self.epoch = epoch
    }

    public var description: String { message }
}
