import Foundation

/// Everything the server persists, behind one protocol so SQLite (the
/// default) and PostgreSQL (for several nodes, later) are interchangeable.
/// Every method is one transaction; a method that returns has made its
/// writes durable.
public protocol ServerStorage: Sendable {
    // Accounts
    /// Throws `StorageError.conflict` for a taken name, `.retired` for a removed account's name.
    func createUser(name: String, passwordHash: [UInt8], salt: [UInt8]) throws -> Int64
    func user(named name: String) throws -> UserRecord?
    func users() throws -> [UserRecord]
    /// Deletes the account and tombstones its name and its devices' signature keys,
    /// so neither can ever be registered again.
    func removeUser(named name: String) throws -> Bool

    // Devices and sessions
    func devices(ofUser userID: Int64) throws -> [DeviceRecord]
    func device(withSignatureKey key: [UInt8]) throws -> DeviceRecord?
    func createSession(tokenHash: [UInt8], deviceID: Int64, expiresAt: UInt64) throws
    func session(tokenHash: [UInt8], now: UInt64) throws -> SessionRecord?
    func deleteSession(tokenHash: [UInt8]) throws
    /// The device behind the key, registering it under the user if new: `.conflict` when the
    /// key is another user's, `.retired` when it was a removed account's, `.limitReached` when
    /// the user already has `maxDevices` devices.
    func registerDevice(userID: Int64, signatureKey: [UInt8], maxDevices: Int) throws -> Int64
    /// Ends every session of the device (logout).
    func deleteSessions(deviceID: Int64) throws
    /// Deletes one device of the user (with its sessions, KeyPackages, memberships and pending
    /// Welcomes) and tombstones its signature key; false when the user has no such device.
    func removeDevice(userID: Int64, deviceID: Int64) throws -> Bool

    // Device directory
    /// The account's identity key and latest signed device list, nil for an account without one.
    func deviceList(ofUser userID: Int64) throws -> StoredDeviceList?
    /// Stores `list` as the account's latest, atomically: `.conflict` unless the account has no
    /// list yet, or its stored identity key equals `list`'s and `list`'s version is higher.
    func storeDeviceList(userID: Int64, _ list: StoredDeviceList) throws

    // KeyPackage directory
    // A device keeps one pool per cipher suite (RFC 9420 §10: a KeyPackage is for one suite,
    // its `cipher_suite` field). `suite` is that field's value; the packages' `data` is the
    // uploaded MLSMessage, whose bytes 6–7 are the field (StoredKeyPackage.suiteOffset).
    /// Stores the packages; a last-resort one replaces the device's last-resort one of its suite.
    func addKeyPackages(deviceID: Int64, _ packages: [StoredKeyPackage]) throws
    func availableKeyPackages(deviceID: Int64, suite: UInt16) throws -> Int
    /// Hands out one KeyPackage of the device in `suite`, never the same one-time package
    /// twice; the last-resort package of that suite when none is left.
    func claimKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage?
    /// The device's last-resort KeyPackage in `suite`, leaving its one-time packages alone.
    func lastResortKeyPackage(deviceID: Int64, suite: UInt16) throws -> StoredKeyPackage?
    /// The device that uploaded the KeyPackage with this reference.
    func keyPackageOwner(reference: [UInt8]) throws -> Int64?

    // Groups and their logs
    func createGroup(_ group: GroupRecord, creatorDevice: Int64) throws -> Int64
    func group(named name: String) throws -> GroupRecord?
    func group(id: Int64) throws -> GroupRecord?
    func groups(ofDevice deviceID: Int64) throws -> [GroupRecord]
    /// Appends one accepted message; with it, atomically: the group's new
    /// public state, Welcomes for added devices, and membership changes.
    func append(_ append: LogAppend) throws -> UInt64
    /// Several appends made durable together (group commit): one result per entry, in order. An
    /// entry that fails is refused, and so is every later entry of its group in the batch
    /// (`StorageError.earlierRefused`: they were checked as if it had been stored), unless
    /// ``LogAppend/refusalSpares(_:)``; the others are stored. A throw means none was.
    func append(batch: [LogAppend]) throws -> [Result<UInt64, any Error>]
    func messages(groupID: Int64, after seq: UInt64, through last: UInt64?, limit: Int) throws -> [LogEntry]
    /// The message the device submitted to the group under this client id, while the log keeps it.
    func message(groupID: Int64, senderDevice: Int64, clientID: String) throws -> LogEntry?
    func memberships(ofDevice deviceID: Int64) throws -> [MembershipRecord]
    /// The device's membership row in the group, also after it left; nil if it never joined.
    func membership(groupID: Int64, deviceID: Int64) throws -> MembershipRecord?
    /// Bytes of message data kept for the group, and sent by the user's devices, for quotas.
    func storedBytes(groupID: Int64) throws -> Int64
    func storedBytes(userID: Int64) throws -> Int64
    func welcomes(forDevice deviceID: Int64) throws -> [WelcomeRecord]
    func acknowledge(deviceID: Int64, groupID: Int64, seq: UInt64) throws
    /// Several devices' acknowledgements made durable together (the log writer's, issue 15): one
    /// result per entry, in order. An entry is refused (``AcknowledgementRefusal``) when its
    /// device is not and never was a member of the group, or names a seq past the last message
    /// meant for it; the others are kept. A throw means none was.
    func acknowledge(batch: [LogAcknowledgement]) throws -> [Result<Void, any Error>]
    /// Deletes the group and its log; each of `devices` is told once, with `notice` (the
    /// admin's signed destroy message) when there is one.
    func destroyGroup(id: Int64, notify devices: [Int64], notice: Data?) throws
    func notices(forDevice deviceID: Int64) throws -> [DestroyNotice]
    /// Deletes the device's notices with these ids (``DestroyNotice/id``, the ones it was sent),
    /// never one stored since they were read (another node may destroy a group meanwhile).
    func clearNotices(forDevice deviceID: Int64, ids: [Int64]) throws
    /// Deletes messages every member device has acknowledged, and any older than `cutoff`.
    func prune(olderThan cutoff: UInt64) throws -> Int

    // Linking a device (SQLiteStorage+Linking.swift)
    /// Stores a pending request, replacing one for the same account and key; expired requests are
    /// deleted first. `.conflict` when the lookup id is taken, `.limitReached` when the account
    /// already has `maxPending` pending requests for other keys.
    func createLinkRequest(_ request: StoredLinkRequest, maxPending: Int, now: UInt64) throws
    /// The pending request with this lookup id, unless it expired.
    func linkRequest(lookupID: String, now: UInt64) throws -> StoredLinkRequest?
    /// Deletes the request and stores the sealed bundle for its account and key, in one
    /// transaction; false when the request is gone or a bundle already waits for that key;
    /// `.limitReached` when the account's live bundles would pass `maxAccountBytes` together.
    func answerLinkRequest(
        lookupID: String,
        bundle: [UInt8],
        expiresAt: UInt64,
        maxAccountBytes: Int,
        now: UInt64
    ) throws -> Bool
    /// The sealed bundle waiting for the account's key, unless it expired; kept until
    /// ``deleteLinkBundle(userID:signatureKey:)`` (the device acknowledges it) or its expiry. The
    /// first fetch moves the expiry to `keepUntil` (the device logged in; it may need retries).
    func linkBundle(userID: Int64, signatureKey: [UInt8], now: UInt64, keepUntil: UInt64) throws -> [UInt8]?
    /// Deletes the bundle waiting for the account's key; false when there was none.
    func deleteLinkBundle(userID: Int64, signatureKey: [UInt8]) throws -> Bool
    /// Deletes expired link requests and bundles, and rate-limit buckets that are full again (the
    /// server's hourly sweep); how many link rows.
    func deleteExpiredLinks(now: UInt64) throws -> Int

    // Rate limits every node shares
    /// The token bucket `key` under `rule`, one for all nodes sharing the storage. With `take`,
    /// takes a token if one is left, atomically (one statement: two nodes never both take the
    /// last); without, only looks.
    func rateLimit(_ key: String, _ rule: RateLimitRule, take: Bool, now: UInt64) throws -> RateLimitAnswer
}

/// A token bucket's shape: `capacity` tokens at once, one more every `interval` milliseconds.
/// Stored as the bucket's theoretical arrival time (GCRA): the moment it is full again, a row
/// that can be deleted once it has passed.
public struct RateLimitRule: Sendable, Hashable {
    public let capacity: Int64
    public let interval: Int64

    /// `capacity` at once and `perPeriod` more each `period` milliseconds; none ever, for a capacity
    /// below 1; no refill for a rate below 1. Both are clamped so `capacity * interval` fits an Int64.
    public init(capacity: Int, per period: Int64, refill perPeriod: Int) {
        let capacity = Int64(clamping: max(0, min(capacity, 1 << 30)))
        let ceiling = (Int64.max / 4) / max(1, capacity)
        self.capacity = capacity
        interval = perPeriod > 0 ? min(ceiling, max(1, period / Int64(clamping: perPeriod))) : ceiling
    }

    public static func perMinute(capacity: Int, _ count: Int) -> RateLimitRule {
        RateLimitRule(capacity: capacity, per: 60_000, refill: count)
    }

    public static func perHour(capacity: Int, _ count: Int) -> RateLimitRule {
        RateLimitRule(capacity: capacity, per: 3_600_000, refill: count)
    }

    /// The backlog (milliseconds until the bucket is full) past which no token is left.
    var burst: Int64 { capacity * interval }

    /// The answer for a bucket whose theoretical arrival time is `tat` (nil: no row, full).
    func answer(tat: Int64?, now: Int64) -> RateLimitAnswer {
        let backlog = max(0, (tat ?? now) - now)
        return RateLimitAnswer(allowed: capacity >= 1 && backlog <= burst - interval, used: backlog > 0)
    }
}

/// What a bucket said: whether a token was (with `take`) or is left, and whether any token is
/// spent and not refilled yet.
public struct RateLimitAnswer: Sendable, Hashable {
    public var allowed: Bool
    public var used: Bool
}

public struct UserRecord: Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var passwordHash: [UInt8]
    public var salt: [UInt8]
    public var createdAt: UInt64
}

/// An account's signed device list as stored: the server keeps the bytes it was given and
/// serves them unchanged (it verified them on the way in, but clients never rely on that).
public struct StoredDeviceList: Sendable, Hashable {
    public var identityKey: [UInt8]
    public var version: UInt64
    public var data: [UInt8]
}

public struct DeviceRecord: Sendable, Hashable {
    public var id: Int64
    public var userID: Int64
    public var userName: String
    public var signatureKey: [UInt8]
}

public struct SessionRecord: Sendable, Hashable {
    public var device: DeviceRecord
    public var expiresAt: UInt64
}

public struct StoredKeyPackage: Sendable, Hashable {
    public var reference: [UInt8]
    public var data: [UInt8]
    public var lastResort: Bool

    /// Where a stored KeyPackage's `cipher_suite` is: the MLSMessage's version and wire_format,
    /// then the KeyPackage's version (RFC 9420 §6, §10), two bytes each. Uploads are decoded as
    /// exactly that before they are stored, so storage can select a suite by these two bytes.
    public static let suiteOffset = 6

    /// The two bytes storage compares a package's suite with.
    public static func suiteBytes(_ suite: UInt16) -> [UInt8] { [UInt8(suite >> 8), UInt8(suite & 0xFF)] }
}

public struct GroupRecord: Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var mlsGroupID: [UInt8]
    /// The serialized public view (MLS `PublicGroup`).
    public var state: [UInt8]
    public var lastSeq: UInt64
    public var createdAt: UInt64
    /// The seq of the last commit: `state` reflects the log up to here; later proposals are re-derived from the log.
    public var stateSeq: UInt64 = 0
}

public struct MembershipRecord: Sendable, Hashable {
    public var groupID: Int64
    public var groupName: String
    public var deviceID: Int64
    /// Messages after this seq are for the device…
    public var joinedSeq: UInt64
    /// …up to and including this one, once it has been removed.
    public var leftSeq: UInt64?
    /// Everything up to here is on the device.
    public var ackedSeq: UInt64
}

public struct WelcomeRecord: Sendable, Hashable {
    public var groupID: Int64
    public var groupName: String
    public var seq: UInt64
    public var time: UInt64
    public var data: [UInt8]
}

public struct LogEntry: Sendable, Hashable {
    public var seq: UInt64
    public var time: UInt64
    public var sender: String
    public var senderDevice: Int64
    public var data: [UInt8]
    /// The id the sending device gave it, echoed on that device's copy.
    public var clientID: String? = nil
}

/// One accepted message and everything that changes with it.
public struct LogAppend: Sendable {
    public var groupID: Int64
    public var time: UInt64
    public var senderDevice: Int64
    public var data: [UInt8]
    /// The group's new public state, for commits.
    public var newState: [UInt8]?
    /// A proposal: kept past acknowledgement until a commit, since the pending proposals of an
    /// epoch are re-derived from the log after a restart.
    public var isProposal = false
    public var welcomes: [(deviceID: Int64, data: [UInt8])]
    public var joinedDevices: [Int64]
    public var leftDevices: [Int64]
    /// The sender's id for it: unique per sending device and group while the log keeps it.
    public var clientID: String?
    /// The epoch the message was checked in. Storage that several nodes share refuses a proposal
    /// or commit whose epoch is no longer the group's (`StorageError.staleEpoch`): another node
    /// stored a commit first. A commit moves the stored epoch to this one + 1.
    public var epoch: UInt64?
    /// The stored epoch after this entry, when it is not `epoch + 1`: a successor group
    /// (`parley upgrade`, DeliveryShard+Successor) starts again at its own epoch 1.
    public var epochAfter: UInt64?

    public init(
        groupID: Int64,
        time: UInt64,
        senderDevice: Int64,
        data: [UInt8],
        newState: [UInt8]? = nil,
        welcomes: [(deviceID: Int64, data: [UInt8])] = [],
        joinedDevices: [Int64] = [],
        leftDevices: [Int64] = [],
        clientID: String? = nil
    ) {
        self.groupID = groupID
        self.time = time
        self.senderDevice = senderDevice
        self.data = data
        self.newState = newState
        self.welcomes = welcomes
        self.joinedDevices = joinedDevices
        self.leftDevices = leftDevices
        self.clientID = clientID
    }
}

extension LogAppend {
    /// Whether this entry's refusal leaves its group's later entries standing (in a batch, and
    /// in the log writer's queue): a plain application message refused as a duplicate of a
    /// stored one. Later entries were checked as if it had been stored, but it changes no
    /// state, membership or pending proposal they were checked against; only its seq, which
    /// was not taken. So a resend answered on the writer's duplicate path costs its group nothing.
    public func refusalSpares(_ error: any Error) -> Bool {
        guard case StorageError.duplicate = error else { return false }
        return newState == nil && !isProposal && welcomes.isEmpty && joinedDevices.isEmpty && leftDevices.isEmpty
            && epochAfter == nil
    }
}

/// Errors storage reports in terms the service can act on.
public enum StorageError: Error, Equatable {
    case conflict(String)
    /// A stored value is impossible (e.g. a negative seq): the database is damaged.
    case corrupt(String)
    /// A value no stored row can have (e.g. a seq beyond Int64.max).
    case outOfRange(String)
    /// The name or key belonged to a removed account (tombstoned).
    case retired
    /// A bound (e.g. devices per account) is reached.
    case limitReached
    /// Not stored because an earlier entry of the same group in the batch was refused.
    case earlierRefused
    /// A proposal or commit of a past epoch: a commit of its epoch was stored first (by another node).
    case staleEpoch(current: UInt64)
    /// The sender's device is not, or no longer, a member of the group (another node stored its removal).
    case senderNotMember
    /// The sending device's message with this client id is stored already, at `seq`: the same
    /// message submitted through two nodes at once is stored once.
    case duplicate(seq: UInt64)
}

/// A device's acknowledgement of its messages in a group up to `seq`, by the group's name as the
/// device gave it (its exact bytes first, then its Unicode NFC form, as group lookups do).
public struct LogAcknowledgement: Sendable, Hashable {
    public var deviceID: Int64
    public var groupName: String
    public var seq: UInt64

    public init(deviceID: Int64, groupName: String, seq: UInt64) {
        self.deviceID = deviceID
        self.groupName = groupName
        self.seq = seq
    }

    /// The spellings of the name to look up, exact bytes first (String `==` would equate them).
    var nameSpellings: [String] {
        let composed = groupName.precomposedStringWithCanonicalMapping
        return Array(groupName.utf8) == Array(composed.utf8) ? [groupName] : [groupName, composed]
    }
}

/// Why an acknowledgement was not stored.
public enum AcknowledgementRefusal: Error, Hashable, Sendable {
    /// No such group, or the device never was a member of it (one answer: no name oracle).
    case notMember
    /// The seq lies past `last`, the last message for this device (the log's end, or its removal).
    case beyondLog(last: UInt64)
}

extension ServerStorage {
    /// One transaction per entry, for storage without batched acknowledgements.
    public func acknowledge(batch: [LogAcknowledgement]) throws -> [Result<Void, any Error>] {
        batch.map { ack in Result { try acknowledgeByName(ack) } }
    }

    /// One acknowledgement by the group's name, in a transaction of its own: the group its first
    /// spelling names, checked against the device's membership and the last message meant for it.
    func acknowledgeByName(_ ack: LogAcknowledgement) throws {
        let group = try ack.nameSpellings.lazy.compactMap { try self.group(named: $0) }.first
        guard let group, let membership = try membership(groupID: group.id, deviceID: ack.deviceID) else {
            throw AcknowledgementRefusal.notMember
        }
        let last = membership.leftSeq ?? group.lastSeq
        guard ack.seq <= last else { throw AcknowledgementRefusal.beyondLog(last: last) }
        try acknowledge(deviceID: ack.deviceID, groupID: group.id, seq: ack.seq)
    }

    /// One transaction per entry, for storage without group commit.
    public func append(batch: [LogAppend]) throws -> [Result<UInt64, any Error>] {
        var failedGroups = Set<Int64>()
        return batch.map { entry in
            guard !failedGroups.contains(entry.groupID) else { return .failure(StorageError.earlierRefused) }
            let result = Result<UInt64, any Error> { try append(entry) }
            if case .failure(let error) = result, !entry.refusalSpares(error) { failedGroups.insert(entry.groupID) }
            return result
        }
    }

    /// `registerDevice` without a device bound, for tools and tests; logins go through
    /// `AccountService`, which applies the configured bound. Tombstones still apply.
    func device(userID: Int64, signatureKey: [UInt8]) throws -> Int64 {
        try registerDevice(userID: userID, signatureKey: signatureKey, maxDevices: .max)
    }
}

/// A group destroyed while a device was away: its name and the admin's signed destroy
/// message, if the admin named one.
public struct DestroyNotice: Sendable, Hashable {
    public var group: String
    public var notice: Data?
    /// The stored notice's row, for ``ServerStorage/clearNotices(forDevice:ids:)``.
    public var id: Int64

    public init(group: String, notice: Data?, id: Int64 = 0) {
        self.group = group
        self.notice = notice
        self.id = id
    }
}
