import Foundation
import MLS
import ParleyProtocol

/// This device's secrets, unlocked: the sealing key derived from the password (scrypt, see
/// ``SealingKey``), and through it the device's signature key pair and session token. The
/// group engine never sees the password or the sealing key; it gets a ``HomeStore`` that
/// seals with it and a ``LocalIdentity`` holding the signature keys.
struct KeyVault: Sendable {
    let database: ClientStore
    let sealing: SealingKey

    /// Unlocks the home with `password`; the first time, creates its salt, cost and check
    /// value. A home from before sealed metadata (no stored cost) is re-sealed on the way.
    static func open(password: String, database: ClientStore, suite: CipherSuiteProvider) throws -> KeyVault {
        guard let salt = try database.setting(.salt), let check = try database.setting(.check) else {
            let key = try freshKey(password: password, database: database, suite: suite)
            try database.set(.check, try key.seal(Array("parley".utf8), context: "check"))
            return KeyVault(database: database, sealing: key)
        }
        let cost = try database.setting(.kdf).map { stored -> Int in
            guard stored.count == 1 else { throw ClientError.damagedHome(.keyDerivationCost) }
            return Int(stored[0])
        }
        let key = try SealingKey(password: password, salt: salt, cost: cost ?? SealingKey.legacyCost)
        guard try key.open(check, context: "check") == Array("parley".utf8) else { throw ClientError.wrongPassword }
        guard cost != nil else {
            let new = try migrateLegacyHome(database: database, from: key, password: password, suite: suite)
            return KeyVault(database: database, sealing: new)
        }
        return KeyVault(database: database, sealing: key)
    }

    /// A new salt at today's cost, stored (the check value is the caller's).
    private static func freshKey(
        password: String,
        database: ClientStore,
        suite: CipherSuiteProvider
    ) throws -> SealingKey {
        let salt = suite.randomBytes(SealingKey.saltLength)
        let cost = SealingKey.costForNewHomes
        let key = try SealingKey(password: password, salt: salt, cost: cost)
        try database.set(.salt, salt)
        try database.set(.kdf, [UInt8(cost)])
        return key
    }

    /// The store the group engine uses: records sealed with this vault's key.
    var store: SealedHomeStore { SealedHomeStore(database: database, key: sealing) }

    // MARK: Signature keys (the device's identity in every group)

    var hasSignatureKeys: Bool { (try? database.setting(.signaturePublic)) != nil }

    /// Creates the device's signature key pair if the home has none (a new home is a new device).
    func createSignatureKeysIfNeeded(suite: CipherSuiteProvider) throws {
        guard try database.setting(.signaturePublic) == nil else { return }
        let pair = suite.generateSignatureKeyPair()
        try database.set(.signaturePrivate, try sealing.seal(pair.privateKey.bytes, context: "signature"))
        try database.set(.signaturePublic, pair.publicKey.bytes)
    }

    func signatureKeys() throws -> SignatureKeyPair {
        guard let sealed = try database.setting(.signaturePrivate),
            let publicKey = try database.setting(.signaturePublic)
        else { throw ClientError.notLoggedIn }
        return SignatureKeyPair(
            privateKey: SignaturePrivateKey(try sealing.open(sealed, context: "signature")),
            publicKey: SignaturePublicKey(publicKey)
        )
    }

    // MARK: Account identity (signs the account's device list; never sent)

    /// The account's identity, if this device holds it (the registering device does).
    func accountIdentity() throws -> AccountIdentity? {
        guard let sealed = try database.setting(.identityPrivate) else { return nil }
        return try AccountIdentity(seed: try sealing.open(sealed, context: "identity"))
    }

    func setAccountIdentity(_ identity: AccountIdentity) throws {
        try database.set(.identityPrivate, try sealing.seal(identity.seed, context: "identity"))
    }

    // MARK: Session token

    var sessionToken: String? {
        guard let sealed = try? database.setting(.token), let plain = try? sealing.open(sealed, context: "token")
        else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }

    func setSessionToken(_ token: String?) throws {
        try database.set(.token, try token.map { try sealing.seal(Array($0.utf8), context: "token") })
    }
}
