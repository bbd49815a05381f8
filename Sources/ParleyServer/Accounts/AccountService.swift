import Foundation
import Logging
import MLS
import ParleyProtocol

/// Registration, login, sessions (RFC-free, plain account management).
final class AccountService: Sendable {
    let storage: any ServerStorage
    let configuration: ServerConfiguration
    let logger: Logger
    private let hasher = PasswordHasher()
    private let perAccount = RateLimiter(capacity: 5, perMinute: 5)
    private let perAddress = RateLimiter(capacity: 20, perMinute: 20)

    init(storage: any ServerStorage, configuration: ServerConfiguration, logger: Logger) {
        self.storage = storage
        self.configuration = configuration
        self.logger = logger
    }

    /// Creates an account. `bypassPolicy` is for the operator's `admin add-user`.
    func register(_ request: API.Register, bypassPolicy: Bool = false) throws {
        if !bypassPolicy {
            switch configuration.registration {
            case .open: break
            case .closed: throw ErrorBody(.registrationClosed)
            case .invite:
                guard let expected = configuration.inviteToken, let given = request.invite,
                      constantTimeEquals(Array(given.utf8), Array(expected.utf8)) else { throw ErrorBody(.invalidInvite) }
            }
        }
        guard Username.isValid(request.username) else { throw ErrorBody(.invalidUsername) }
        guard request.password.count >= 8 else { throw ErrorBody(.weakPassword) }
        let salt = hasher.newSalt()
        do {
            _ = try storage.createUser(name: request.username, passwordHash: try hasher.hash(request.password, salt: salt), salt: salt)
        } catch StorageError.conflict {
            throw ErrorBody(.usernameTaken)
        }
        logger.info("user registered", metadata: ["user": "\(request.username)"])
    }

    /// Checks the password, registers the device's signature key under the
    /// account if new, and opens a session for that device.
    func login(_ request: API.Login, address: String) throws -> API.Session {
        // Failed logins are limited per account and per address; successful ones cost nothing.
        let addressKey = "address:" + address, accountKey = "account:" + request.username
        guard !perAddress.isExhausted(addressKey), !perAccount.isExhausted(accountKey) else {
            logger.notice("login rate-limited", metadata: ["user": "\(request.username)", "address": "\(address)"])
            throw ErrorBody(.rateLimited)
        }
        guard let user = try storage.user(named: request.username) else {
            perAddress.allow(addressKey)
            throw ErrorBody(.userNotFound)
        }
        guard try hasher.verify(request.password, hash: user.passwordHash, salt: user.salt) else {
            perAddress.allow(addressKey)
            perAccount.allow(accountKey)
            logger.notice("login failed", metadata: ["user": "\(request.username)"])
            throw ErrorBody(.invalidPassword)
        }
        guard !request.signatureKey.isEmpty, request.signatureKey.count <= 256 else {
            throw ErrorBody(.malformedRequest, "The device signature key is missing or too long.")
        }
        let deviceID: Int64
        do {
            deviceID = try storage.device(userID: user.id, signatureKey: [UInt8](request.signatureKey))
        } catch StorageError.conflict {
            throw ErrorBody(.malformedRequest, "That device key belongs to another account.")
        }
        let token = SessionToken.generate()
        let expiresAt = Clock.milliseconds() + UInt64(configuration.sessionLifetimeHours) * 3_600_000
        try storage.createSession(tokenHash: SessionToken.hash(token), deviceID: deviceID, expiresAt: expiresAt)
        logger.info("device logged in", metadata: ["user": "\(user.name)", "device": "\(deviceID)"])
        return API.Session(token: token, deviceID: deviceID, expiresAt: expiresAt)
    }

    func logout(token: String) throws {
        try storage.deleteSession(tokenHash: SessionToken.hash(token))
    }

    /// The device behind a bearer token, or `unauthorized`.
    func authenticate(token: String?) throws -> DeviceRecord {
        guard let token, token.utf8.count <= 128,
              let session = try storage.session(tokenHash: SessionToken.hash(token), now: Clock.milliseconds()) else {
            throw ErrorBody(.unauthorized)
        }
        return session.device
    }
}

/// The KeyPackage directory: devices publish, members claim one per device.
final class KeyPackageDirectory: Sendable {
    let storage: any ServerStorage
    let configuration: ServerConfiguration
    private let claims = RateLimiter(capacity: 60, perMinute: 60)

    init(storage: any ServerStorage, configuration: ServerConfiguration) {
        self.storage = storage
        self.configuration = configuration
    }

    /// Validates each KeyPackage (signature, suite, credential naming this
    /// device's user, signature key of this device) before storing it.
    func upload(_ request: API.UploadKeyPackages, from device: DeviceRecord) throws -> API.KeyPackageStock {
        guard request.keyPackages.count <= 100 else { throw ErrorBody(.tooLarge, "Upload at most 100 key packages at a time.") }
        var stored: [StoredKeyPackage] = []
        for (data, lastResort) in request.keyPackages.map({ ($0, false) }) + (request.lastResort.map { [($0, true)] } ?? []) {
            guard case .keyPackage(let keyPackage) = try? MLSMessage(tlsEncoded: [UInt8](data)) else {
                throw ErrorBody(.invalidKeyPackage, "A key package could not be decoded.")
            }
            do {
                try keyPackage.validate()
            } catch {
                throw ErrorBody(.invalidKeyPackage, "A key package is invalid: \(error).")
            }
            guard keyPackage.leafNode.signatureKey.bytes == device.signatureKey,
                  ParleyGroupPolicy.username(of: keyPackage.leafNode.credential) == device.userName else {
                throw ErrorBody(.invalidKeyPackage, "A key package does not belong to this device.")
            }
            stored.append(StoredKeyPackage(reference: try keyPackage.reference(keyPackage.cipherSuite.provider()), data: [UInt8](data), lastResort: lastResort))
        }
        do {
            try storage.addKeyPackages(deviceID: device.id, stored)
        } catch {
            throw ErrorBody(.invalidKeyPackage, "A key package was uploaded before.")
        }
        return try stock(of: device)
    }

    func stock(of device: DeviceRecord) throws -> API.KeyPackageStock {
        API.KeyPackageStock(available: try storage.availableKeyPackages(deviceID: device.id), lowWatermark: configuration.keyPackageLowWatermark)
    }

    /// One KeyPackage for every device of `username`.
    func claim(username: String, by claimer: DeviceRecord) throws -> API.ClaimedKeyPackages {
        guard claims.allow("claim:\(claimer.id)") else { throw ErrorBody(.rateLimited) }
        guard let user = try storage.user(named: username) else { throw ErrorBody(.userNotFound) }
        let entries = try storage.devices(ofUser: user.id).compactMap { device in
            try storage.claimKeyPackage(deviceID: device.id).map { API.ClaimedKeyPackages.Entry(deviceID: device.id, keyPackage: Data($0.data)) }
        }
        guard !entries.isEmpty else { throw ErrorBody(.noKeyPackages) }
        return API.ClaimedKeyPackages(username: username, keyPackages: entries)
    }
}
