import Foundation
import Logging
import MLS
import ParleyProtocol

/// Registration, login, sessions (RFC-free, plain account management).
///
/// Every expensive step is bounded: registrations per address and server-wide, login
/// attempts per address, password hashing on its own few threads (``PasswordWork``).
/// Failed logins are limited per (address, account) and per address, so nobody can lock
/// an owner out of their own account from elsewhere (finding 14).
final class AccountService: Sendable {
    let storage: any ServerStorage
    let configuration: ServerConfiguration
    let hub: ConnectionHub
    let logger: Logger
    let challenges: any LoginChallengeStore
    /// The server certificate, which login proofs are bound to.
    private let certificateDER: [UInt8]
    private let hasher: PasswordHasher
    /// Each server hashes on two threads, with eight more requests allowed to wait.
    private let work = PasswordWork(threads: 2, waiting: 8)
    private let limits: AccountLimits
    /// Identity keys and signed device lists.
    let directory: DeviceDirectory

    init(
        storage: any ServerStorage,
        configuration: ServerConfiguration,
        hub: ConnectionHub,
        certificateDER: [UInt8],
        logger: Logger
    ) {
        self.storage = storage
        self.configuration = configuration
        self.hub = hub
        self.certificateDER = certificateDER
        self.logger = logger
        hasher = PasswordHasher(rounds: 1 << configuration.passwordHashCost)
        limits = AccountLimits(configuration, storage: storage)
        challenges = LoginChallengeStores.make(for: storage)
        directory = DeviceDirectory(storage: storage, configuration: configuration, hub: hub, logger: logger)
    }

    // MARK: Registration

    /// Creates an account for a client at `address`, within the registration limits.
    func register(_ request: API.Register, address: String) async throws {
        try checkRegistrationPolicy(request)
        try validate(request)
        let firstList = try request.deviceList.map { try directory.checkFirst($0, user: request.username) }
        guard try limits.registrationsPerAddress.allow(address), try limits.registrationsServerWide.allow("server")
        else {
            logger.notice("registration rate-limited", metadata: ["address": "\(address)"])
            throw ErrorBody(.rateLimited)
        }
        let (hasher, password) = (self.hasher, request.password)
        let salt = hasher.newSalt()
        let hash = try await work.run { try hasher.hash(password, salt: salt) }
        let userID = try create(request.username, hash: hash, salt: salt)
        if let firstList { try storage.storeDeviceList(userID: userID, firstList) }
    }

    /// The operator's `admin add-user`: no registration policy, no rate limit, hashed inline.
    func addUser(name: String, password: String) throws {
        let request = API.Register(username: name, password: password)
        try validate(request)
        let salt = hasher.newSalt()
        try create(name, hash: try hasher.hash(password, salt: salt), salt: salt)
    }

    private func checkRegistrationPolicy(_ request: API.Register) throws {
        switch configuration.registration {
        case .open: break
        case .closed: throw ErrorBody(.registrationClosed)
        case .invite:
            guard let expected = configuration.inviteToken, let given = request.invite,
                constantTimeEquals(Array(given.utf8), Array(expected.utf8))
            else { throw ErrorBody(.invalidInvite) }
        }
    }

    private func validate(_ request: API.Register) throws {
        guard Username.isValid(request.username) else { throw ErrorBody(.invalidUsername) }
        guard request.password.count >= 8 else { throw ErrorBody(.weakPassword) }
        // scrypt takes any length; a bound keeps a megabyte "password" from costing more than a normal one.
        guard request.password.utf8.count <= 1024 else { throw ErrorBody(.tooLarge) }
    }

    @discardableResult
    private func create(_ name: String, hash: [UInt8], salt: [UInt8]) throws -> Int64 {
        let id: Int64
        do {
            id = try storage.createUser(name: name, passwordHash: hash, salt: salt)
        } catch StorageError.conflict {
            throw ErrorBody(.usernameTaken)
        } catch StorageError.retired {
            throw ErrorBody(.usernameRetired)
        }
        logger.info("user registered", metadata: ["user": "\(name)"])
        return id
    }

    // MARK: Login

    /// A login challenge for `username`; asking is limited per address (each holds a little memory).
    func challenge(_ request: API.LoginChallengeRequest, address: String) throws -> API.LoginChallenge {
        guard request.username.utf8.count <= 64 else { throw ErrorBody(.invalidUsername) }
        guard try limits.challengesPerAddress.allow(address) else { throw ErrorBody(.rateLimited) }
        let nonce = try challenges.issue(for: request.username, now: .now)
        let expiresAt = Clock.milliseconds() + UInt64(challenges.lifetime.components.seconds) * 1000
        return API.LoginChallenge(challenge: Data(nonce), expiresAt: expiresAt)
    }

    /// Checks the proof of possession and the password, registers the device's signature key
    /// under the account if new, and opens a session for that device.
    func login(_ request: API.Login, address: String) async throws -> API.Session {
        let user = try await checkCredentials(request, address: address)
        // Only a device the account's signed list names may log in (docs/PROTOCOL.md, "Device directory").
        guard try directory.isListed(userID: user.id, signatureKey: [UInt8](request.signatureKey)) else {
            throw ErrorBody(.deviceNotListed)
        }
        let deviceID = try registerDevice(of: user, key: [UInt8](request.signatureKey))
        let token = SessionToken.generate()
        let expiresAt = sessionExpiry()
        try storage.createSession(tokenHash: SessionToken.hash(token), deviceID: deviceID, expiresAt: expiresAt)
        logger.info("device logged in", metadata: ["user": "\(user.name)", "device": "\(deviceID)"])
        return API.Session(token: token, deviceID: deviceID, expiresAt: expiresAt)
    }

    /// A login's checks without the session: the proof of possession of the signature key and
    /// the password, under the same rate limits. Also what a new device's link request must
    /// pass, before any device list names it (docs/PROTOCOL.md, "Linking a device").
    func checkCredentials(_ request: API.Login, address: String) async throws -> UserRecord {
        // Before anything uses or logs it: the name is the client's, and may hold terminal
        // escapes, line breaks or a megabyte of text (attacker review: log injection).
        guard Username.isValid(request.username) else { throw ErrorBody(.invalidUsername) }
        let failures = FailureKeys(address: address, account: request.username)
        guard try limits.loginsPerAddress.allow(address), try !limits.failuresBlock(failures) else {
            logger.notice("login rate-limited", metadata: ["user": "\(request.username)", "address": "\(address)"])
            throw ErrorBody(.rateLimited)
        }
        try checkProof(request)
        guard let user = try storage.user(named: request.username) else {
            _ = try limits.failuresPerAddress.allow(failures.address)
            throw ErrorBody(.userNotFound)
        }
        let (hasher, password) = (self.hasher, request.password)
        guard try await work.run({ try hasher.verify(password, hash: user.passwordHash, salt: user.salt) }) else {
            try limits.recordFailure(failures)
            logger.notice("login failed", metadata: ["user": "\(request.username)", "address": "\(address)"])
            throw ErrorBody(.invalidPassword)
        }
        return user
    }

    /// Now plus the configured lifetime, saturating at the largest time storage holds (Int64).
    private func sessionExpiry() -> UInt64 {
        let hours = UInt64(clamping: configuration.sessionLifetimeHours)
        let (lifetime, tooLong) = hours.multipliedReportingOverflow(by: 3_600_000)
        let (sum, overflow) = Clock.milliseconds().addingReportingOverflow(lifetime)
        return tooLong || overflow ? UInt64(Int64.max) : min(sum, UInt64(Int64.max))
    }

    /// The signature over this server's challenge must verify under the key the device
    /// registers: only a client holding the private key can log in as that device.
    private func checkProof(_ request: API.Login) throws {
        let key = [UInt8](request.signatureKey)
        guard !key.isEmpty, key.count <= 256, request.signature.count <= 512,
            (try? challenges.redeem([UInt8](request.challenge), for: request.username, now: .now)) == true
        else {
            throw ErrorBody(.invalidLoginProof)
        }
        let content = try API.Login.proofContent(
            username: request.username,
            challenge: [UInt8](request.challenge),
            signatureKey: key,
            serverCertificate: certificateDER
        )
        let verified = try? API.Login.suite.verifyWithLabel(
            SignaturePublicKey(key),
            label: API.Login.proofLabel,
            content: content,
            signature: [UInt8](request.signature)
        )
        guard verified == true else { throw ErrorBody(.invalidLoginProof) }
    }

    private func registerDevice(of user: UserRecord, key: [UInt8]) throws -> Int64 {
        do {
            return try storage.registerDevice(
                userID: user.id,
                signatureKey: key,
                maxDevices: configuration.maxDevicesPerAccount
            )
        } catch StorageError.conflict, StorageError.retired {
            throw ErrorBody(.signatureKeyInUse)
        } catch StorageError.limitReached {
            throw ErrorBody(.tooManyDevices)
        }
    }

    // MARK: Sessions

    /// Ends every session of the token's device and closes its open WebSocket (finding 19).
    func logout(token: String) throws {
        let device = try authenticate(token: token)
        try storage.deleteSessions(deviceID: device.id)
        hub.close(deviceID: device.id)
        logger.info("device logged out", metadata: ["device": "\(device.id)"])
    }

    /// A user's public record: the signature keys of their devices, to check credentials against.
    func publicRecord(of name: String) throws -> API.User {
        guard let user = try storage.user(named: name) else { throw ErrorBody(.userNotFound) }
        return API.User(
            username: name,
            signatureKeys: try storage.devices(ofUser: user.id).map { Data($0.signatureKey) }
        )
    }

    /// Removes the account, tombstoning its name and keys, and disconnects its devices.
    func removeUser(name: String) throws -> Bool {
        let devices = try storage.user(named: name).map { try storage.devices(ofUser: $0.id) } ?? []
        let removed = try storage.removeUser(named: name)
        for device in devices { hub.close(deviceID: device.id) }
        return removed
    }

    func devices(ofUser name: String) throws -> [DeviceRecord]? {
        try storage.user(named: name).map { try storage.devices(ofUser: $0.id) }
    }

    /// The operator's `admin remove-device`: tombstones the device's key, deletes it with its
    /// sessions and KeyPackages, and closes its WebSocket. Frees a place under the device bound.
    func removeDevice(user name: String, deviceID: Int64) throws -> Bool {
        guard let user = try storage.user(named: name), try storage.removeDevice(userID: user.id, deviceID: deviceID)
        else { return false }
        hub.close(deviceID: deviceID)
        directory.forget(deviceID)
        logger.info("device removed", metadata: ["user": "\(name)", "device": "\(deviceID)"])
        return true
    }

    /// The device behind a bearer token, or `unauthorized`.
    func authenticate(token: String?) throws -> DeviceRecord {
        guard let token, token.utf8.count <= 128,
            let session = try storage.session(tokenHash: SessionToken.hash(token), now: Clock.milliseconds())
        else {
            throw ErrorBody(.unauthorized)
        }
        directory.seen(session.device.id)
        return session.device
    }
}
