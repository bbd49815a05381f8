import ParleyProtocol

/// Client-side failures, each with a sentence that says what to do next.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    case notLoggedIn
    case wrongPassword
    case server(ErrorBody)
    case unreachable(String)
    case certificateChanged(pinned: String, presented: String)
    case noSuchGroup(String)
    /// Several of this device's groups are called `name`; `candidates` are the names that
    /// tell them apart.
    case ambiguousGroup(String, candidates: [String])
    case noSuchMember(String, group: String)
    /// Every listed device of the user is already in the group.
    case alreadyMember(String, group: String)
    case timedOut
    /// A failure described only by its sentence (tools and tests); the client's own
    /// failures have cases of their own, so nothing ever matches on this text.
    case invalid(String)
    /// A command that needs the server URL got none (and the home remembers none).
    case serverRequired
    /// This home is logged in as `owner`; `requested` needs a home of its own.
    case homeBelongsToSomeoneElse(owner: String, requested: String)
    case badServerURL
    case noServerCertificate
    /// Something stored in this home does not decode (damage, or a bug in an older version).
    case damagedHome(HomeDamage)
    /// A message from the server that is not an MLS message at all.
    case notAnMLSMessage
    /// A Welcome this device cannot use; the case says why.
    case unusableWelcome(WelcomeProblem)
    /// The directory handed out a KeyPackage whose credential is not the user's.
    case foreignKeyPackage(user: String)
    /// The directory handed out a KeyPackage of another cipher suite than the group's.
    case wrongSuiteKeyPackage(user: String)
    /// `parley upgrade` cannot run; the case says why (GroupEngine+Upgrade.swift).
    case upgrade(UpgradeProblem)
    /// `user`'s signed device list was refused; the case says why.
    case deviceList(user: String, DeviceListError)
    /// None of the devices the server offered for `user` is in their signed device list.
    case noListedDevices(user: String)
    /// This device does not hold the account's identity key (or the account has none).
    case noAccountIdentity
    /// No active device of this account has that name.
    case noSuchDevice(String)
    /// A device does not revoke itself: revoke it from another device of the account.
    case cannotRevokeThisDevice

    public enum HomeDamage: Sendable, Equatable {
        case groupRecord, keyPackage, keyDerivationCost, oversizedGroupRecord, sealing
    }

    public enum WelcomeProblem: Sendable, Equatable {
        /// Its seq does not fit any group's log (≥ 2^63).
        case seqBeyondLog(UInt64)
        case notAWelcome
        case noKeyPackageOfThisDevice
        /// It is for an MLS group this device already follows under another name.
        case groupAlreadyFollowed(String)
    }
    /// This member can no longer follow the group; the reason says why.
    case groupUnusable(String, reason: String)
    /// The server sent one frame larger than the client accepts; the connection was closed.
    case frameTooLarge(limit: Int)

    /// The server is gone: nothing else can work until it is back. A server that does not
    /// answer in time counts as gone (its connection is closed, GroupEngine.nextFrame).
    var isConnectionLoss: Bool {
        switch self {
        case .unreachable, .frameTooLarge, .timedOut: true
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
        case .ambiguousGroup(let name, let candidates):
            "\(candidates.count) of your groups are called \(name); use "
                + candidates.dropLast().joined(separator: ", ") + " or \(candidates.last ?? name) to say which."
        case .noSuchMember(let user, let group):
            "\(user) is not a member of \(group)."
        case .alreadyMember(let user, let group):
            "\(user) is already in \(group) with every device their signed list names."
        case .timedOut:
            "The server did not answer in time; try again."
        case .invalid(let message):
            message
        case .serverRequired:
            "Give the server with --server https://host:port."
        case .homeBelongsToSomeoneElse(let owner, let requested):
            "This home belongs to \(owner); use another --home for \(requested)."
        case .badServerURL:
            "The server URL must look like https://host:port."
        case .noServerCertificate:
            "The server presented no certificate."
        case .damagedHome(let damage):
            Self.sentence(damage)
        case .notAnMLSMessage:
            "it is not an MLS message"
        case .unusableWelcome(let problem):
            Self.sentence(problem)
        case .foreignKeyPackage, .wrongSuiteKeyPackage, .upgrade: keyPackageSentence
        case .deviceList(let user, let reason):
            Self.sentence(deviceList: reason, of: user)
        case .noListedDevices(let user):
            "The server offered only devices for \(user) that \(user)'s signed device list does not contain; "
                + "none was added."
        case .noAccountIdentity:
            "This device does not hold the account's identity key, so it cannot sign the device list; "
                + "use the device you registered with."
        case .noSuchDevice(let name):
            "This account has no active device called \(name); `parley devices` lists them."
        case .cannotRevokeThisDevice:
            "A device cannot revoke itself; revoke it from another device of the account."
        case .frameTooLarge(let limit):
            "The server sent a frame larger than \(limit) bytes, which this client does not accept, so the "
                + "connection was closed; the next command reconnects. If it keeps happening, tell the operator."
        case .groupUnusable(let name, let reason):
            "You can no longer follow \(name): \(reason) Ask an admin to remove you and add you again."
        }
    }

    private static func sentence(_ problem: WelcomeProblem) -> String {
        switch problem {
        case .seqBeyondLog(let seq): "its seq \(seq) is beyond any group's log"
        case .notAWelcome: "it is not a Welcome"
        case .noKeyPackageOfThisDevice: "it names none of this device's key packages"
        case .groupAlreadyFollowed(let name): "it is for the group you are already in as \(name)"
        }
    }

    private static func sentence(deviceList reason: DeviceListError, of user: String) -> String {
        switch reason {
        case .identityKeyChanged:
            "\(user)'s identity key changed since you first saw it, so their device list was refused and nothing "
                + "was added. If \(user) confirms (in person) that they restored their account, compare safety "
                + "numbers; otherwise the server may be trying to add its own device."
        case .badSignature:
            "\(user)'s device list is not signed by their identity key, so it was refused and nothing was added."
        case .staleVersion(let known, let offered):
            "The server sent an older device list for \(user) (version \(offered), you have seen \(known)); "
                + "it was refused and nothing was added."
        case .userMismatch(_, let found):
            "The server sent \(found)'s device list when asked for \(user)'s; it was refused and nothing was added."
        default:
            "The server sent a device list for \(user) that could not be read or is missing; nothing was added."
        }
    }

    private static func sentence(_ damage: HomeDamage) -> String {
        switch damage {
        case .groupRecord: "A stored group record is corrupt."
        case .keyPackage: "A stored key package is corrupt."
        case .keyDerivationCost: "The home's key-derivation cost is corrupt."
        case .oversizedGroupRecord: "A group record is too large."
        case .sealing: "AES-GCM produced no sealed box."
        }
    }
}

extension ClientError {
    /// The sentences of the KeyPackage and upgrade cases (``description`` stays short).
    fileprivate var keyPackageSentence: String {
        switch self {
        case .foreignKeyPackage(let user): "The server handed out a key package that is not \(user)'s."
        case .wrongSuiteKeyPackage(let user):
            "The server handed out a key package of \(user)'s of another cipher suite than the group's; nothing was changed."
        case .upgrade(let problem): problem.sentence
        default: "\(self)"
        }
    }
}
