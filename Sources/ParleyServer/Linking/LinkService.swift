import Foundation
import Logging
import MLS
import ParleyProtocol

/// Pending link requests and sealed history bundles (docs/PROTOCOL.md, "Linking a device").
///
/// The server only relays: it cannot make an approving device accept other keys than the new
/// device's (the code's check digits bind them) nor read or forge a bundle (sealed to the new
/// device, signed by the approving one, which must be on the account's signed list). The new
/// device posts its request before any list names it, so without a session; the request carries
/// a login proof instead (password and key, under the login rate limits). What the server bounds:
/// requests live 10 minutes, an account has at most 3 pending (one per key), lookups and state
/// polls are rate-limited, and a bundle is one blob of at most 8 MiB per key and 16 MiB per
/// account, kept until the new device acknowledges it (`DELETE /v1/link/bundle`, after it
/// processed it: a failure in between loses nothing), for the request's lifetime if the device
/// never fetches it (it never logged in), else a day; the hourly sweep deletes expired ones.
final class LinkService: Sendable {
    let storage: any ServerStorage
    let accounts: AccountService
    let logger: Logger
    /// Per account: 10 lookups at once, 10 more a minute, over all nodes (a lookup tries a code).
    private let lookups: SharedRateLimiter
    /// Per account: 5 new requests at once, 5 more an hour, over all nodes.
    private let creations: SharedRateLimiter
    /// Per address: the new device's polls for its approval, about one every two seconds, over
    /// all nodes (a poll tries a lookup id).
    private let statePolls: SharedRateLimiter

    static let requestLifetime: UInt64 = 10 * 60 * 1000
    static let bundleLifetime: UInt64 = 24 * 60 * 60 * 1000
    static let maxPendingPerAccount = 3
    /// Sealed bytes waiting per account, over all its new devices: two full bundles.
    static let maxBundleBytesPerAccount = 2 * HistoryBundle.maxSealedBytes

    init(storage: any ServerStorage, accounts: AccountService, logger: Logger) {
        self.storage = storage
        self.accounts = accounts
        self.logger = logger
        lookups = SharedRateLimiter("link-lookups", .perMinute(capacity: 10, 10), storage: storage)
        creations = SharedRateLimiter("link-requests", .perHour(capacity: 5, 5), storage: storage)
        statePolls = SharedRateLimiter("link-polls", .perMinute(capacity: 60, 60), storage: storage)
    }

    /// Stores a new device's request under a fresh lookup id. The login proof must pass (password,
    /// and the challenge signed by the request's key) and name the request's account and key: the
    /// server vouches for nothing, but relays no request for keys the poster does not hold.
    func create(_ post: API.PostLinkRequest, address: String) async throws -> API.LinkRequestCreated {
        let request = post.request
        do {
            try request.validate()
        } catch {
            throw ErrorBody(.malformedRequest, error.description)
        }
        guard request.username == post.login.username, request.signatureKey == post.login.signatureKey else {
            throw ErrorBody(.malformedRequest, "A link request must name the account and key of its login proof.")
        }
        let user = try await accounts.checkCredentials(post.login, address: address)
        guard
            try !accounts.directory.isListed(userID: user.id, signatureKey: [UInt8](request.signatureKey))
                || storage.deviceList(ofUser: user.id) == nil
        else { throw ErrorBody(.malformedRequest, "This device is on the account's list already; log in instead.") }
        guard try creations.allow(user.name) else { throw ErrorBody(.rateLimited) }
        let now = Clock.milliseconds()
        for _ in 0..<8 {
            let stored = StoredLinkRequest(
                lookupID: LinkCode.randomLookupID(API.Login.suite.randomBytes(3)),
                userID: user.id,
                userName: user.name,
                signatureKey: [UInt8](request.signatureKey),
                deviceName: request.deviceName,
                hpkeKey: [UInt8](request.hpkePublicKey),
                nonce: [UInt8](request.nonce),
                expiresAt: now + Self.requestLifetime
            )
            do {
                try storage.createLinkRequest(stored, maxPending: Self.maxPendingPerAccount, now: now)
                logger.info("link request created", metadata: ["user": "\(user.name)"])
                return API.LinkRequestCreated(lookupID: stored.lookupID, expiresAt: stored.expiresAt)
            } catch StorageError.conflict {
                continue
            } catch StorageError.limitReached {
                throw ErrorBody(.rateLimited, "This account has as many pending link requests as the server keeps.")
            }
        }
        throw ErrorBody(.rateLimited, "The server has too many pending link requests; try again in a few minutes.")
    }

    /// Whether the request's key is on its account's signed list yet. Says nothing but that
    /// (no names), to whoever knows the lookup id.
    func state(_ lookupID: String, address: String) throws -> API.LinkRequestState {
        guard try statePolls.allow(address) else { throw ErrorBody(.rateLimited) }
        guard LinkCode.isLookupID(lookupID),
            let stored = try storage.linkRequest(lookupID: lookupID, now: Clock.milliseconds())
        else { throw ErrorBody(.notFound, "No pending link request has that code; link again.") }
        return API.LinkRequestState(
            approved: try storage.deviceList(ofUser: stored.userID) != nil
                && accounts.directory.isListed(userID: stored.userID, signatureKey: stored.signatureKey)
        )
    }

    /// The pending request, for another device of the same account; `notFound` for anyone else,
    /// so a lookup id says nothing about other accounts.
    func lookup(_ lookupID: String, by device: DeviceRecord) throws -> API.PendingLinkRequest {
        let stored = try pending(lookupID, by: device)
        let request = LinkRequest(
            username: stored.userName,
            deviceName: stored.deviceName,
            signatureKey: Data(stored.signatureKey),
            hpkePublicKey: Data(stored.hpkeKey),
            nonce: Data(stored.nonce)
        )
        return API.PendingLinkRequest(request: request, expiresAt: stored.expiresAt)
    }

    /// Stores the approving device's sealed bundle for the new device and retires the request.
    func answer(_ lookupID: String, bundle: [UInt8], by device: DeviceRecord) throws {
        guard bundle.count <= HistoryBundle.maxSealedBytes else { throw ErrorBody(.tooLarge) }
        _ = try pending(lookupID, by: device)
        let now = Clock.milliseconds()
        let stored: Bool
        do {
            stored = try storage.answerLinkRequest(
                lookupID: lookupID,
                bundle: bundle,
                expiresAt: now + Self.requestLifetime,
                maxAccountBytes: Self.maxBundleBytesPerAccount,
                now: now
            )
        } catch StorageError.limitReached {
            throw ErrorBody(
                .tooLarge,
                "History for your other new devices already waits on the server; let them finish, or send fewer messages."
            )
        }
        guard stored else { throw ErrorBody(.notFound, "That link request is no longer pending.") }
        logger.info("link request answered", metadata: ["user": "\(device.userName)", "bytes": "\(bundle.count)"])
    }

    /// The bundle waiting for this device, as often as it asks until it acknowledges it;
    /// `notFound` while there is none.
    func bundle(for device: DeviceRecord) throws -> [UInt8] {
        guard
            let bundle = try storage.linkBundle(
                userID: device.userID,
                signatureKey: device.signatureKey,
                now: Clock.milliseconds(),
                keepUntil: Clock.milliseconds() + Self.bundleLifetime
            )
        else { throw ErrorBody(.notFound, "No history bundle is waiting for this device yet.") }
        return bundle
    }

    /// The new device processed its bundle (or gave it up): the server forgets it.
    func acknowledgeBundle(of device: DeviceRecord) throws {
        guard try storage.deleteLinkBundle(userID: device.userID, signatureKey: device.signatureKey) else {
            throw ErrorBody(.notFound, "No history bundle is waiting for this device.")
        }
    }

    private func pending(_ lookupID: String, by device: DeviceRecord) throws -> StoredLinkRequest {
        guard try lookups.allow(device.userName) else { throw ErrorBody(.rateLimited) }
        guard LinkCode.isLookupID(lookupID),
            let stored = try storage.linkRequest(lookupID: lookupID, now: Clock.milliseconds()),
            stored.userID == device.userID
        else { throw ErrorBody(.notFound, "No pending link request has that code; check it, or link again.") }
        guard stored.signatureKey != device.signatureKey else {
            throw ErrorBody(.notPermitted, "A device cannot approve itself; approve it from another of your devices.")
        }
        return stored
    }
}
