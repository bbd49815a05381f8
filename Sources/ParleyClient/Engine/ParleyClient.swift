import Crypto
import Foundation
import MLS
import ParleyProtocol

/// One device of a Parley account, kept in a home directory.
///
/// A command opens the home, unlocks it with the password, syncs with the
/// server (Welcomes, messages in server order, acknowledgements, queued
/// messages, pending admin duties), does its work and closes.
public actor ParleyClient {
    let store: ClientStore
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    var key: SealingKey?
    var api: ServerAPI?
    var socket: ServerSocket?
    var groups: [String: Group] = [:]
    /// Every group this home knows, by name, including ones it can no longer follow.
    var records: [String: GroupRecord] = [:]
    /// Frames that arrived while waiting for an answer, handled in order later.
    var inbox: [ServerFrame] = []
    /// How long to wait for the server's answer to one request.
    public var timeout: Duration = ParleyClient.defaultTimeout

    /// 20 s, or `PARLEY_CLIENT_TIMEOUT_SECONDS` (1 to 600) for slow links and loaded test machines.
    static var defaultTimeout: Duration {
        let configured = ProcessInfo.processInfo.environment["PARLEY_CLIENT_TIMEOUT_SECONDS"].flatMap { Int($0) }
        guard let configured, (1...600).contains(configured) else { return .seconds(20) }
        return .seconds(configured)
    }
    /// How old this device's leaf in a group may get before `sync` refreshes
    /// it with a self-update (forward secrecy and post-compromise security).
    public var selfUpdateInterval: TimeInterval = 7 * 86400

    public func setSelfUpdateInterval(_ interval: TimeInterval) { selfUpdateInterval = interval }

    public init(home: String) throws {
        store = try ClientStore(directory: home)
    }

    /// `$XDG_DATA_HOME/parley`, else `~/.local/share/parley`.
    public static func defaultHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base =
            environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/share")
        return (base as NSString).appendingPathComponent("parley")
    }

    public var username: String? { try? store.string("username") }
    public var serverURL: String? { try? store.string("server") }
    /// The session token (for the package's own load generator).
    package var token: String? { sessionToken }
    var policy: GroupPolicy { ParleyGroupPolicy.groupPolicy() }

    // MARK: Account

    /// Creates the account, then logs this home in as its first device.
    public func register(server: String, username: String, password: String, invite: String? = nil) async throws {
        let api = try await connectAPI(server: server, acceptNewCertificate: false)
        try await api.request(
            .POST,
            "/v1/accounts",
            body: WireJSON.encode(API.Register(username: username, password: password, invite: invite))
        )
        try await login(server: server, username: username, password: password)
    }

    /// Logs this home in: pins the server certificate on first use, creates
    /// this device's keys if the home has none (a new home is a new device),
    /// opens a session and publishes KeyPackages.
    public func login(
        server: String? = nil,
        username: String,
        password: String,
        acceptNewCertificate: Bool = false
    ) async throws {
        guard let server = server ?? serverURL else {
            throw ClientError.invalid("Give the server with --server https://host:port.")
        }
        if let existing = self.username, existing != username {
            throw ClientError.invalid("This home belongs to \(existing); use another --home for \(username).")
        }
        let api = try await connectAPI(server: server, acceptNewCertificate: acceptNewCertificate)
        let key = try unlockOrInitialise(password: password)
        if try store.setting("signature_public") == nil {
            let pair = suite.generateSignatureKeyPair()
            try store.set("signature_private", try key.seal(pair.privateKey.bytes, context: "signature"))
            try store.set("signature_public", pair.publicKey.bytes)
        }
        let session = try await Self.openSession(
            api: api,
            username: username,
            password: password,
            keys: try signatureKeys()
        )
        try store.set("server", string: server)
        try store.set("username", string: username)
        try setSessionToken(session.token)
        try store.set("device", string: String(session.deviceID))
        try await topUpKeyPackages(minimum: 10)
    }

    /// Proves possession of the device's signature key: signs a fresh server challenge,
    /// bound to the username and to the pinned server certificate (`API.Login`).
    package static func openSession(
        api: ServerAPI,
        username: String,
        password: String,
        keys: SignatureKeyPair
    ) async throws -> API.Session {
        let challenge = try await api.call(
            .POST,
            "/v1/sessions/challenge",
            json: API.LoginChallengeRequest(username: username),
            as: API.LoginChallenge.self
        )
        let login = try API.Login(
            username: username,
            password: password,
            challenge: challenge.challenge,
            signatureKeys: keys,
            serverCertificate: api.certificate
        )
        return try await api.call(.POST, "/v1/sessions", json: login, as: API.Session.self)
    }

    public func logout() async throws {
        if let api = try? await connectAPI(server: serverURL, acceptNewCertificate: false), let token {
            _ = try? await api.request(.DELETE, "/v1/sessions", token: token)
        }
        try setSessionToken(nil)
        await close()
    }

    /// Unlocks an existing home.
    public func unlock(password: String) throws {
        guard username != nil, try store.setting("salt") != nil else { throw ClientError.notLoggedIn }
        _ = try unlockOrInitialise(password: password)
        try loadGroups()
    }

    func sealingKey() throws -> SealingKey {
        guard let key else { throw ClientError.notLoggedIn }
        return key
    }

    func signatureKeys() throws -> SignatureKeyPair {
        guard let sealed = try store.setting("signature_private"), let publicKey = try store.setting("signature_public")
        else { throw ClientError.notLoggedIn }
        return SignatureKeyPair(
            privateKey: SignaturePrivateKey(try sealingKey().open(sealed, context: "signature")),
            publicKey: SignaturePublicKey(publicKey)
        )
    }

    var credential: Credential { .basic(identity: Array((username ?? "").utf8)) }

    // MARK: Connection

    /// An HTTP client for the server with its certificate pinned (trust on first use).
    func connectAPI(server: String?, acceptNewCertificate: Bool) async throws -> ServerAPI {
        if let api, server == nil || server == api.baseURL { return api }
        guard let server else { throw ClientError.notLoggedIn }
        let (host, port) = try ServerAPI.hostAndPort(server)
        var pinned = try store.setting("certificate")
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
        if pinned == nil { try store.set("certificate", presented) }
        let api = try ServerAPI(url: server, certificate: presented)
        self.api = api
        return api
    }

    func requireAPI() async throws -> (ServerAPI, String) {
        guard let token else { throw ClientError.notLoggedIn }
        return (try await connectAPI(server: serverURL, acceptNewCertificate: false), token)
    }

    /// Opens the WebSocket and processes the replay up to `replayFinished`; returns the
    /// groups the replay touched (none when the socket was already open).
    @discardableResult
    func connect() async throws -> Set<String> {
        // A closed socket is replaced (a lost connection must not fail every later command):
        // the new one replays from the acknowledged cursors, so nothing is lost.
        if let socket, !socket.isClosed { return [] }
        let (api, token) = try await requireAPI()
        let socket = try ServerSocket(api: api, token: token)
        self.socket = socket
        var touched = Set<String>()
        while true {
            guard let frame = try await socket.next(timeout: timeout) else { throw ClientError.timedOut }
            if frame == .replayFinished { return touched }
            if case .error(let error) = frame, error.error.code == .unauthorized {
                throw ClientError.server(error.error)
            }
            if let name = frame.changedGroup { touched.insert(name) }
            try await apply(frame)
        }
    }

    /// Brings the home up to date with the server, then does what is due:
    /// self-updates after joining, admin commits of a member's own leave,
    /// queued messages, acknowledgements, KeyPackage stock. Each group's part
    /// is isolated: one group's failure is a line in that group, not an error.
    public func sync() async throws {
        // A fresh connection replays everything after the acknowledged cursor,
        // so nothing pushed to an older connection can be missed; frames seen
        // twice are dropped by seq.
        socket?.close()
        socket = nil
        try await connect()
        let now = Date().timeIntervalSince1970
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) where group.isActive {
            guard let record = records[name], record.problem == nil,
                record.needsUpdate || now - record.updated >= selfUpdateInterval
            else { continue }
            try await isolated(name, "Refreshing your keys") {
                try await commit(in: name) { try $0.selfUpdate() }
                records[name]?.needsUpdate = false
                records[name]?.updated = now
                records[name]?.reported = nil
                try persist(name)
            }
        }
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) where group.isActive && isAdmin(group) {
            let leaving = Self.leaveRequests(in: group)
            guard !leaving.isEmpty, records[name]?.problem == nil else { continue }
            try await isolated(name, "Completing a member's leave") {
                try await commit(in: name) {
                    try $0.commit(CommitOptions(remove: leaving, includePendingProposals: false))
                }
            }
        }
        try await flushOutbox()
        try acknowledgeAll()
        try await topUpKeyPackages(minimum: 5)
    }

    /// Runs one group's duty; a failure becomes a system line of that group
    /// (said once) instead of failing the command. Only losing the server is
    /// everyone's problem.
    func isolated(_ name: String, _ what: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ClientError where error.isConnectionLoss {
            throw error
        } catch {
            try report(name, "\(what) failed: \(error)")
        }
    }

    public func close() async {
        socket?.close()
        socket = nil
        await api?.shutdown()
        api = nil
    }

    func acknowledgeAll() throws {
        guard let socket else { return }
        for (name, record) in records where record.lastSeq > 0 {
            try socket.send(.ack(.init(group: name, seq: record.lastSeq)))
        }
    }

    /// The most KeyPackages this device keeps on the server, whatever it asks.
    static let maxKeyPackageStock = 100

    /// Uploads KeyPackages when the server holds fewer than `minimum`.
    func topUpKeyPackages(minimum: Int) async throws {
        let (api, token) = try await requireAPI()
        let stock = try await api.call(.GET, "/v1/keypackages", token: token, as: API.KeyPackageStock.self)
        // The server's numbers are clamped: a hostile one cannot make the
        // arithmetic trap or this device mint millions of KeyPackages.
        let watermark = min(max(minimum, stock.lowWatermark), Self.maxKeyPackageStock)
        let available = max(0, stock.available)
        guard available < watermark else { return }
        let count = watermark * 2 - available
        let key = try sealingKey()
        let signature = try signatureKeys()
        var packages: [Data] = []
        for index in 0...count {
            let bundle = try KeyPackageBundle(
                suite,
                credential: credential,
                signatureKeys: signature,
                lifetime: Lifetime(notBefore: 0, notAfter: Self.nowMilliseconds() / 1000 + 90 * 86400),
                lastResort: index == count
            )
            try store.storeKeyPackage(
                reference: try bundle.keyPackage.reference(suite),
                sealed: try key.seal(try encode(bundle), context: "keypackage")
            )
            packages.append(Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded()))
        }
        let lastResort = packages.removeLast()
        _ = try await api.call(
            .POST,
            "/v1/keypackages",
            token: token,
            json: API.UploadKeyPackages(keyPackages: packages, lastResort: lastResort),
            as: API.KeyPackageStock.self
        )
    }

    /// The members asking to leave: Remove proposals whose sender is the
    /// removed leaf itself (RFC 9420 §12.1.3), naming a current member other
    /// than this one. Only these are ever committed on someone else's behalf;
    /// every other cached proposal (an Add, a Remove of someone else, a
    /// GroupContextExtensions naming a new admin) is left alone, so a member
    /// cannot make an admin's client commit a takeover or fail its commits.
    ///
    /// They are committed by value: the MLS API can include cached proposals
    /// only all together (`includePendingProposals`), not a chosen subset by
    /// reference. The removal is the same; the commit names the admin as its
    /// proposer.
    static func leaveRequests(in group: Group) -> [LeafIndex] {
        let members = Set(group.members.map(\.index))
        let leaving = group.pendingProposals.compactMap { cached -> LeafIndex? in
            guard case .remove(let leaf) = cached.proposal, cached.sender == .member(leaf),
                leaf != group.ownLeaf, members.contains(leaf)
            else { return nil }
            return leaf
        }
        return Array(Set(leaving)).sorted { $0.rawValue < $1.rawValue }
    }

    func isAdmin(_ group: Group) -> Bool {
        guard let username, let admins = try? ParleyGroupPolicy.admins(in: group.context.extensions) else {
            return false
        }
        return admins.contains(username)
    }
}

extension ServerFrame {
    /// The group whose history a frame changes, if any.
    var changedGroup: String? {
        switch self {
        case .message(let message): message.group
        case .welcome(let welcome): welcome.group
        case .groupDestroyed(let destroyed): destroyed.group
        case .error, .replayFinished: nil
        }
    }
}
