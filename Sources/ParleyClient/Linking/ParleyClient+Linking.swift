import Foundation
import MLS
import ParleyProtocol

/// What approving a new device did.
public struct LinkApproval: Sendable, Equatable {
    public var deviceName: String
    /// Groups the new device was added to (or already in).
    public var addedTo: [String]
    /// Groups it could not be added to, with the sentence why.
    public var notAddedTo: [String: String]
    /// Lines sent in the history bundle, over all groups.
    public var messages: Int

    public init(deviceName: String, addedTo: [String], notAddedTo: [String: String], messages: Int) {
        self.deviceName = deviceName
        self.addedTo = addedTo
        self.notAddedTo = notAddedTo
        self.messages = messages
    }
}

/// What the new device received once approved.
public struct LinkCompletion: Sendable, Equatable {
    /// The approving device's name.
    public var from: String
    /// Lines filed per group.
    public var imported: [String: Int]
    /// Groups whose lines were not taken: this device is not in them, or the sender is not ours there.
    public var skipped: [String]
}

/// Linking a device (docs/PROTOCOL.md, "Linking a device"): the new device posts a request
/// bound to its keys (before it may log in: no device list names it yet), the user types its
/// code on an existing device, which checks it, signs the new device into the account's list,
/// adds it to its groups and sends it history and the account identity sealed to its HPKE key.
extension ParleyClient {
    /// The new device's half: creates this (new) home's keys and an HPKE key pair, and posts the
    /// link request with a login proof (password, and a server challenge signed with the key).
    /// Returns the code to show; the user types it on a device already linked.
    public func startLink(
        server: String,
        username: String,
        password: String,
        deviceName: String,
        acceptNewCertificate: Bool = false
    ) async throws -> LinkCode {
        guard self.username == nil else { throw LinkError.homeInUse }
        let api = try await connectAPI(server: server, acceptNewCertificate: acceptNewCertificate)
        let vault = try KeyVault.open(password: password, database: database, suite: suite)
        self.vault = vault
        try vault.createSignatureKeysIfNeeded(suite: suite)
        let keys = try vault.signatureKeys()
        let hpkeKeys = try suite.generateHPKEKeyPair()
        let request = LinkRequest(
            username: username,
            deviceName: deviceName,
            signatureKey: Data(keys.publicKey.bytes),
            hpkePublicKey: Data(hpkeKeys.publicKey.bytes),
            nonce: Data(suite.randomBytes(LinkRequest.nonceLength))
        )
        try request.validate()
        let asked = try WireJSON.encode(API.LoginChallengeRequest(username: username))
        let challenge = try WireJSON.decode(
            API.LoginChallenge.self,
            from: try await api.postJSON("/v1/sessions/challenge", asked)
        )
        let login = try API.Login(
            username: username,
            password: password,
            challenge: challenge.challenge,
            signatureKeys: keys,
            serverCertificate: api.certificate
        )
        let created = try WireJSON.decode(
            API.LinkRequestCreated.self,
            from: try await api.postJSON(
                "/v1/link/requests",
                WireJSON.encode(API.PostLinkRequest(login: login, request: request))
            )
        )
        guard LinkCode.isLookupID(created.lookupID) else {
            throw ClientError.server(ErrorBody(.malformedRequest, "The server answered with a malformed link id."))
        }
        let pending = PendingLink(
            request: request,
            hpkeKeys: hpkeKeys,
            code: try LinkCode(
                lookupID: created.lookupID,
                request: request,
                secret: LinkCode.randomSecret(suite.randomBytes(LinkCode.secretRandomBytes))
            )
        )
        try database.set(.server, string: server)
        try savePendingLink(pending)
        return pending.code
    }

    /// The existing device's half: fetches the request the code names, refuses it unless the
    /// code's check digits match it (the server may have swapped a key), signs the new device
    /// into the account's list, waits (up to `keyPackageWait`) for it to log in and publish
    /// KeyPackages, adds it to every group this device is in, and sends the last
    /// `messagesPerGroup` lines of each and the account identity, signed by this device and
    /// sealed to the new device's HPKE key.
    public func approveLink(
        code text: String,
        deviceName: String,
        messagesPerGroup: Int = 1_000
    ) async throws -> LinkApproval {
        try await approveLink(
            code: text,
            deviceName: deviceName,
            messagesPerGroup: messagesPerGroup,
            keyPackageWait: .seconds(60)
        )
    }

    /// ``approveLink(code:deviceName:messagesPerGroup:)``, waiting up to `keyPackageWait` for the
    /// new device's KeyPackages.
    public func approveLink(
        code text: String,
        deviceName: String,
        messagesPerGroup: Int,
        keyPackageWait: Duration
    ) async throws -> LinkApproval {
        let code = try LinkCode(parsing: text)
        let request = try await fetchLinkRequest(code)
        guard let identity = try vault?.accountIdentity() else { throw ClientError.noAccountIdentity }
        let newKey = [UInt8](request.signatureKey)
        if !(try await ownDeviceList().isActive(newKey)) {
            try await approveDevice(signatureKey: newKey, name: request.deviceName)
        }
        let engine = try requireEngine()
        try await engine.sync()
        var approval = LinkApproval(deviceName: request.deviceName, addedTo: [], notAddedTo: [:], messages: 0)
        let deadline = ContinuousClock.now + keyPackageWait
        for group in await engine.groupSummaries() where group.active && group.problem == nil {
            do {
                try await Self.addNewDevice(newKey, to: group.name, engine: engine, until: deadline)
                approval.addedTo.append(group.name)
            } catch {
                approval.notAddedTo[group.name] = "\(error)"
            }
        }
        let history = try await engine.exportHistory(limit: messagesPerGroup)
        approval.messages = history.reduce(0) { $0 + $1.lines.count }
        let keys = try signatureKeys()
        let bundle = HistoryBundle(
            sender: keys.publicKey,
            senderDeviceName: deviceName,
            request: request,
            code: code,
            createdAt: Self.nowMilliseconds(),
            accountIdentitySeed: identity.seed,
            contacts: try await engine.exportContactPins(),
            groups: history
        )
        let (api, token) = try await requireAPI()
        try await api.request(
            .POST,
            "/v1/link/requests/\(code.lookupID)/bundle",
            token: token,
            body: Data(try bundle.sealed(signingWith: keys.privateKey))
        )
        return approval
    }

    /// Adds the new device to `group`, waiting until `deadline` for its first KeyPackages (it
    /// logs in once it sees its key on the list, then publishes them), and retrying a claim the
    /// server refused as over its rate until then.
    private static func addNewDevice(
        _ key: [UInt8],
        to group: String,
        engine: GroupEngine,
        until deadline: ContinuousClock.Instant
    ) async throws {
        var pause = Duration.milliseconds(500)
        while true {
            do {
                return try await engine.addOwnDevice(signatureKey: key, to: group)
            } catch let error where Self.isWorthRetrying(error) && ContinuousClock.now + pause < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(4))
            }
        }
    }

    private static func isWorthRetrying(_ error: any Error) -> Bool {
        switch error {
        case LinkedDeviceError.noKeyPackage: true
        case ClientError.server(let body) where body.code == .rateLimited: true
        default: false
        }
    }

    /// The request behind `code`, checked: well formed, this account's, matching the code, and not
    /// expired by this device's clock (a server's stale request is refused here, not trusted).
    func fetchLinkRequest(_ code: LinkCode) async throws -> LinkRequest {
        let (api, token) = try await requireAPI()
        let pending = try await api.call(
            .GET,
            "/v1/link/requests/\(code.lookupID)",
            token: token,
            as: API.PendingLinkRequest.self
        )
        let request = pending.request
        try request.validate()
        guard request.username == username else { throw LinkError.otherAccount(request.username) }
        guard try code.matches(request) else { throw LinkError.codeMismatch }
        guard pending.expiresAt > Self.nowMilliseconds() else { throw LinkError.requestExpired }
        return request
    }

    /// The new device, after approval: logs in once the account's list names this device, then
    /// fetches and opens its history bundle, pins the account's identity key (the one the bundle
    /// carries: it must sign the account's list, and the bundle's sender must be on that list),
    /// keeps the identity, and files each group's lines if a device of this account in that
    /// group sent them. Nil while not approved yet, or while the bundle has not arrived.
    public func finishLink(password: String) async throws -> LinkCompletion? {
        guard let pending = try loadPendingLink() else { throw LinkError.noLinkInProgress }
        if token == nil {
            guard try await isApproved(pending) else { return nil }
            try await login(username: pending.request.username, password: password)
        }
        let (api, token) = try await requireAPI()
        let sealed: Data
        do {
            sealed = try await api.request(.GET, "/v1/link/bundle", token: token)
        } catch ClientError.server(let body) where body.code == .notFound {
            return nil
        }
        let bundle = try await openBundle(sealed, pending: pending)
        let engine = try requireEngine()
        let identity = try await engine.pinOwnList(bundle: bundle)
        try await engine.seedContactPins(bundle.contacts)
        try vault?.setAccountIdentity(identity)
        try await engine.sync()
        var completion = LinkCompletion(from: bundle.senderDeviceName, imported: [:], skipped: [])
        for group in bundle.groups {
            guard await engine.isOwnDevice(bundle.senderSignatureKey, in: group.group) else {
                completion.skipped.append(group.group)
                continue
            }
            try await engine.importTransferred(group.lines, to: group.group, from: bundle.senderDeviceName)
            completion.imported[group.group] = group.lines.count
        }
        try database.set(.link, nil)
        await acknowledgeBundle()
        return completion
    }

    /// Opens the sealed bundle for `pending`. A bundle without the code's secret ends the link:
    /// whoever sealed it (the server, or someone who saw only the lookup id) had one guess.
    private func openBundle(_ sealed: Data, pending: PendingLink) async throws -> HistoryBundle {
        let recipient = try signatureKeys().publicKey
        do {
            return try HistoryBundle.open(
                [UInt8](sealed),
                recipient: recipient,
                hpkeKey: pending.hpkeKeys,
                linkNonce: [UInt8](pending.request.nonce),
                code: pending.code
            )
        } catch LinkError.linkSecretMismatch {
            try database.set(.link, nil)
            await acknowledgeBundle()
            throw LinkError.linkSecretMismatch
        }
    }

    /// Tells the server the bundle was processed (or refused), so it deletes it. The server keeps
    /// a bundle until then (a failure between fetch and processing loses nothing: the next
    /// `finishLink` fetches it again); if this request fails, the server drops it at its expiry.
    private func acknowledgeBundle() async {
        guard let (api, token) = try? await requireAPI() else { return }
        _ = try? await api.request(.DELETE, "/v1/link/bundle", token: token)
    }

    /// Whether the account's list names this device yet. Once the request is gone (answered, or
    /// expired) the server cannot say: then a login attempt does.
    private func isApproved(_ pending: PendingLink) async throws -> Bool {
        let api = try await connectAPI(server: serverURL, acceptNewCertificate: false)
        do {
            let path = "/v1/link/requests/\(pending.code.lookupID)/state"
            return try await api.call(.GET, path, as: API.LinkRequestState.self).approved
        } catch ClientError.server(let body) where body.code == .notFound {
            return true
        }
    }

    /// A default device name: this computer's name up to its first dot, cut to what a device
    /// name may hold; "device" when the computer has no usable name.
    public static func localDeviceName() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        let name = String(host.filter { allowed.contains($0) }.prefix(32))
        return name.isEmpty ? "device" : name
    }

    /// The code of the link in progress on this home, if any.
    public func pendingLinkCode() throws -> LinkCode? { try loadPendingLink()?.code }

    private func savePendingLink(_ pending: PendingLink) throws {
        guard let vault else { throw ClientError.notLoggedIn }
        try database.set(.link, try vault.sealing.seal(try pending.encoded(), context: "link"))
    }

    private func loadPendingLink() throws -> PendingLink? {
        guard let vault else { throw ClientError.notLoggedIn }
        guard let sealed = try database.setting(.link) else { return nil }
        return try PendingLink(
            encoded: try vault.sealing.open(sealed, context: "link"),
            signatureKey: try vault.signatureKeys().publicKey,
            suite: suite
        )
    }
}
