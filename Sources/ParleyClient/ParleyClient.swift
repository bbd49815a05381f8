import Foundation
import MLS
import ParleyProtocol

/// One device of a Parley account, kept in a home directory: the public face of the client.
///
/// It wires the seams together and owns the account: ``KeyVault`` (the password-derived
/// sealing key and the device's signature keys), the pinned ``ServerAPI`` and sessions, and
/// a ``GroupEngine`` built on a ``SealedHomeStore`` and a ``LiveServerTransport``, which
/// does everything about groups. A command opens the home, unlocks it, syncs, does its
/// work and closes.
public actor ParleyClient {
    let database: ClientStore
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    var vault: KeyVault?
    var api: ServerAPI?
    var engine: GroupEngine?
    /// How long to wait for the server's answer to one request.
    public var timeout: Duration = ParleyClient.defaultTimeout
    private var selfUpdateInterval: TimeInterval?

    /// 20 s, or `PARLEY_CLIENT_TIMEOUT_SECONDS` (1 to 600) for slow links and loaded test machines.
    static var defaultTimeout: Duration {
        let configured = ProcessInfo.processInfo.environment["PARLEY_CLIENT_TIMEOUT_SECONDS"].flatMap { Int($0) }
        guard let configured, (1...600).contains(configured) else { return .seconds(20) }
        return .seconds(configured)
    }

    /// How old this device's leaf in a group may get before `sync` refreshes it with a
    /// self-update (forward secrecy and post-compromise security); 7 days unless set.
    public func setSelfUpdateInterval(_ interval: TimeInterval) async {
        selfUpdateInterval = interval
        await engine?.setSelfUpdateInterval(interval)
    }

    public init(home: String) throws {
        database = try ClientStore(directory: home)
    }

    /// `$XDG_DATA_HOME/parley`, else `~/.local/share/parley`.
    public static func defaultHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/share")
        return (base as NSString).appendingPathComponent("parley")
    }

    public var username: String? { try? database.string(.username) }
    public var serverURL: String? { try? database.string(.server) }
    /// The session token (for the package's own load generator).
    package var token: String? { vault?.sessionToken }

    // MARK: Account

    /// Creates the account with a new identity key and a signed device list naming this home,
    /// then logs this home in as its first device. Returns the recovery code (the identity
    /// key's seed, docs/SECURITY.md "Recovery"): show it once and never store it elsewhere.
    @discardableResult
    public func register(
        server: String,
        username: String,
        password: String,
        invite: String? = nil,
        deviceName: String = "first device"
    ) async throws -> String {
        if let existing = self.username, existing != username {
            throw ClientError.homeBelongsToSomeoneElse(owner: existing, requested: username)
        }
        let api = try await connectAPI(server: server, acceptNewCertificate: false)
        let vault = try KeyVault.open(password: password, database: database, suite: suite)
        try vault.createSignatureKeysIfNeeded(suite: suite)
        let identity = try vault.accountIdentity() ?? AccountIdentity()
        let signed = try Self.firstDeviceList(
            username: username,
            identity: identity,
            deviceKey: try vault.signatureKeys().publicKey.bytes,
            deviceName: deviceName
        )
        try vault.setAccountIdentity(identity)
        let request = API.Register(
            username: username,
            password: password,
            invite: invite,
            deviceList: Data(try signed.encoded())
        )
        try await api.request(.POST, "/v1/accounts", body: WireJSON.encode(request))
        try await login(server: server, username: username, password: password)
        // This home pins its own account like a contact's: safety numbers read both pins.
        try requireEngine().store.setContactPin(ContactPin(identityKey: identity.publicKey, list: signed), of: username)
        return identity.recoveryCode
    }

    static func nowMilliseconds() -> UInt64 {
        UInt64(exactly: (Date().timeIntervalSince1970 * 1000).rounded(.down)) ?? 0
    }

    static func firstDeviceList(
        username: String,
        identity: AccountIdentity,
        deviceKey: [UInt8],
        deviceName: String
    ) throws -> SignedDeviceList {
        let entry = DeviceEntry(signatureKey: deviceKey, name: deviceName, addedAt: Self.nowMilliseconds())
        let list = try DeviceList.first(user: username, identityKey: identity.publicKey, device: entry)
        return try identity.sign(list)
    }

    /// Logs this home in: pins the server certificate on first use, creates this device's
    /// keys if the home has none (a new home is a new device), opens a session and
    /// publishes KeyPackages.
    public func login(
        server: String? = nil,
        username: String,
        password: String,
        acceptNewCertificate: Bool = false
    ) async throws {
        guard let server = server ?? serverURL else {
            throw ClientError.serverRequired
        }
        if let existing = self.username, existing != username {
            throw ClientError.homeBelongsToSomeoneElse(owner: existing, requested: username)
        }
        let api = try await connectAPI(server: server, acceptNewCertificate: acceptNewCertificate)
        let vault = try KeyVault.open(password: password, database: database, suite: suite)
        self.vault = vault
        try vault.createSignatureKeysIfNeeded(suite: suite)
        let session = try await Self.openSession(
            api: api,
            username: username,
            password: password,
            keys: try vault.signatureKeys()
        )
        try database.set(.server, string: server)
        try database.set(.username, string: username)
        try vault.setSessionToken(session.token)
        try database.set(.device, string: String(session.deviceID))
        try await startEngine().topUpKeyPackages(minimum: 10)
    }

    /// Proves possession of the device's signature key: signs a fresh server challenge,
    /// bound to the username and to the pinned server certificate (`API.Login`).
    package static func openSession(
        api: ServerAPI,
        username: String,
        password: String,
        keys: SignatureKeyPair
    ) async throws -> API.Session {
        try await API.openSession(
            via: api,
            username: username,
            password: password,
            keys: keys,
            serverCertificate: api.certificate
        )
    }

    public func logout() async throws {
        if let api = try? await connectAPI(server: serverURL, acceptNewCertificate: false), let token {
            _ = try? await api.request(.DELETE, "/v1/sessions", token: token)
        }
        try vault?.setSessionToken(nil)
        await close()
    }

    /// Unlocks an existing home.
    public func unlock(password: String) async throws {
        guard username != nil, try database.setting(.salt) != nil else { throw ClientError.notLoggedIn }
        vault = try KeyVault.open(password: password, database: database, suite: suite)
        _ = try await startEngine()
    }

    /// The group engine for this unlocked home, on its sealed store and the live server.
    private func startEngine() async throws -> GroupEngine {
        guard let vault, let username else { throw ClientError.notLoggedIn }
        let identity = LocalIdentity(username: username, signatureKeys: try vault.signatureKeys())
        // Weak: the engine outlives no client, and a strong capture would be a cycle.
        let transport = LiveServerTransport(session: { [weak self] in
            guard let self else { throw ClientError.notLoggedIn }
            return try await self.requireAPI()
        })
        let engine = try GroupEngine(
            identity: identity,
            store: vault.store,
            transport: transport,
            suite: suite,
            timeout: timeout
        )
        if let selfUpdateInterval { await engine.setSelfUpdateInterval(selfUpdateInterval) }
        await self.engine?.close()
        self.engine = engine
        return engine
    }

    func requireEngine() throws -> GroupEngine {
        guard let engine else { throw ClientError.notLoggedIn }
        return engine
    }

    func signatureKeys() throws -> SignatureKeyPair {
        guard let vault else { throw ClientError.notLoggedIn }
        return try vault.signatureKeys()
    }

    // MARK: Connection

    /// An HTTP client for the server with its certificate pinned (trust on first use).
    func connectAPI(server: String?, acceptNewCertificate: Bool) async throws -> ServerAPI {
        if let api, server == nil || server == api.baseURL { return api }
        guard let server else { throw ClientError.notLoggedIn }
        let (host, port) = try ServerAPI.hostAndPort(server)
        var pinned = try database.setting(.certificate)
        let presented: [UInt8]
        do {
            presented = try await CertificatePin.presented(host: host, port: port)
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError.unreachable("\(error)")
        }
        if let current = pinned, current != presented {
            guard acceptNewCertificate else {
                throw ClientError.certificateChanged(
                    pinned: CertificatePin.fingerprint(current),
                    presented: CertificatePin.fingerprint(presented)
                )
            }
            pinned = nil
        }
        if pinned == nil { try database.set(.certificate, presented) }
        let api = try ServerAPI(url: server, certificate: presented)
        self.api = api
        return api
    }

    func requireAPI() async throws -> (ServerAPI, String) {
        guard let token else { throw ClientError.notLoggedIn }
        return (try await connectAPI(server: serverURL, acceptNewCertificate: false), token)
    }

    public func close() async {
        await engine?.close()
        await api?.shutdown()
        api = nil
    }
}
