import Foundation
import MLS
import ParleyProtocol

/// One device of this account, as the account's signed device list names it.
public struct DeviceInfo: Sendable, Hashable {
    public var name: String
    /// Milliseconds since 1970.
    public var addedAt: UInt64
    public var revokedAt: UInt64?
    public var isThisDevice: Bool
    /// The server's word (unsigned): its last authenticated request since the server started.
    public var lastSeen: UInt64?
    /// The server's word (unsigned): a WebSocket of it is open now.
    public var connected: Bool

    public init(
        name: String,
        addedAt: UInt64,
        revokedAt: UInt64? = nil,
        isThisDevice: Bool,
        lastSeen: UInt64? = nil,
        connected: Bool = false
    ) {
        self.name = name
        self.addedAt = addedAt
        self.revokedAt = revokedAt
        self.isThisDevice = isThisDevice
        self.lastSeen = lastSeen
        self.connected = connected
    }
}

extension DeviceInfo {
    /// One line, as `parley devices` and the chat's `/devices` show it: name, when added, when
    /// revoked or last seen (or online now), and which one is this device.
    public var summary: String {
        let date = { (ms: UInt64) in Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601) }
        var parts = [name, "added \(date(addedAt))"]
        if let revokedAt {
            parts.append("revoked \(date(revokedAt))")
        } else if connected {
            parts.append("online now")
        } else {
            parts.append(lastSeen.map { "last seen \(date($0))" } ?? "not seen since the server started")
        }
        if isThisDevice { parts.append("(this device)") }
        return parts.joined(separator: "  ")
    }
}

/// The account's own devices: listing and revoking (docs/PROTOCOL.md, "Device directory").
extension ParleyClient {
    /// This account's devices from its signed list, verified against the pinned identity key,
    /// with when the server last saw each (its unsigned word, matched by signature key).
    public func devices() async throws -> [DeviceInfo] {
        let list = try await ownDeviceList()
        let mine = try signatureKeys().publicKey.bytes
        let (api, token) = try await requireAPI()
        let activity = try await api.call(.GET, "/v1/devices", token: token, as: API.DeviceActivity.self).devices
        return list.entries.map { entry in
            let seen = activity.first { [UInt8]($0.signatureKey) == entry.signatureKey }
            return DeviceInfo(
                name: entry.name,
                addedAt: entry.addedAt,
                revokedAt: entry.revokedAt,
                isThisDevice: entry.signatureKey == mine,
                lastSeen: seen?.lastSeen,
                connected: seen?.connected ?? false
            )
        }
    }

    /// Signs the account out of device `name`: a new list without it is signed with the identity
    /// key and published (the server then ends its sessions, closes its WebSocket and deletes its
    /// KeyPackages), and this device commits its removal from every group both are in. Returns
    /// the groups it was removed from.
    @discardableResult
    public func revokeDevice(named name: String) async throws -> [String] {
        guard let vault, let username else { throw ClientError.notLoggedIn }
        guard let identity = try vault.accountIdentity() else { throw ClientError.noAccountIdentity }
        let list = try await ownDeviceList()
        guard let entry = list.activeDevices.first(where: { $0.name == name }) else {
            throw ClientError.noSuchDevice(name)
        }
        guard entry.signatureKey != (try signatureKeys().publicKey.bytes) else {
            throw ClientError.cannotRevokeThisDevice
        }
        let signed: SignedDeviceList
        do {
            signed = try identity.sign(try list.revoking(signatureKey: entry.signatureKey, at: Self.nowMilliseconds()))
        } catch {
            throw ClientError.deviceList(user: username, error)
        }
        let (api, token) = try await requireAPI()
        let body = try WireJSON.encode(API.DeviceListBody(deviceList: Data(try signed.encoded())))
        try await api.request(.PUT, "/v1/devices", token: token, body: body)
        let engine = try requireEngine()
        try engine.store.setContactPin(ContactPin(identityKey: identity.publicKey, list: signed), of: username)
        return try await engine.removeDevice(signatureKey: entry.signatureKey)
    }

    /// Signs the device holding `signatureKey` into the account's list as `name` and publishes
    /// it; that device may then log in. The primitive under linking (`parley devices approve`).
    public func approveDevice(signatureKey: [UInt8], name: String) async throws {
        guard let vault, let username else { throw ClientError.notLoggedIn }
        guard let identity = try vault.accountIdentity() else { throw ClientError.noAccountIdentity }
        let entry = DeviceEntry(signatureKey: signatureKey, name: name, addedAt: Self.nowMilliseconds())
        let signed: SignedDeviceList
        do {
            signed = try identity.sign(try await ownDeviceList().adding(entry))
        } catch let error as DeviceListError {
            throw ClientError.deviceList(user: username, error)
        }
        let (api, token) = try await requireAPI()
        let body = try WireJSON.encode(API.DeviceListBody(deviceList: Data(try signed.encoded())))
        try await api.request(.PUT, "/v1/devices", token: token, body: body)
        try requireEngine().store.setContactPin(ContactPin(identityKey: identity.publicKey, list: signed), of: username)
    }

    /// A new home's device signature key, created (and sealed under `password`) before it logs
    /// in, so an existing device can approve it first.
    public func newDeviceKey(password: String) throws -> [UInt8] {
        let vault = try KeyVault.open(password: password, database: database, suite: suite)
        try vault.createSignatureKeysIfNeeded(suite: suite)
        return try vault.signatureKeys().publicKey.bytes
    }

    func ownDeviceList() async throws -> DeviceList {
        guard let username else { throw ClientError.notLoggedIn }
        guard let list = try await requireEngine().verifiedDeviceList(of: username) else {
            throw ClientError.noAccountIdentity
        }
        return list
    }
}

extension GroupEngine {
    /// Commits the removal of the device holding `signatureKey` from every group it is in.
    func removeDevice(signatureKey key: [UInt8]) async throws -> [String] {
        try await sync()
        var removedFrom: [String] = []
        for name in groups.keys.sorted() {
            guard let leaf = groups[name]?.tree.members.first(where: { $0.leaf.signatureKey.bytes == key })?.index
            else { continue }
            try await commit(in: name, CommitOptions(remove: [leaf], includePendingProposals: false))
            removedFrom.append(name)
        }
        return removedFrom
    }
}
