import Foundation
import Logging
import ParleyProtocol
import Synchronization

/// The server's side of the signed device directory (docs/PROTOCOL.md, "Device directory").
///
/// The server keeps each account's identity key (set once: at register, or by the first
/// published list of an account created before the directory, trust on first use) and the
/// latest signed list, and serves the list unchanged. It verifies what it is given only to
/// refuse garbage and rollbacks: clients verify every list themselves against the identity key
/// they pinned, so a hostile operator who edits the table gains nothing.
///
/// The list is the authority on the account's devices: a device it does not name (active)
/// cannot log in, its KeyPackages are not handed out, and publishing a list that drops a device
/// removes that device at once (sessions, WebSockets, KeyPackages).
final class DeviceDirectory: Sendable {
    let storage: any ServerStorage
    let configuration: ServerConfiguration
    let hub: ConnectionHub
    let logger: Logger
    /// When each device last made an authenticated request, since this process started: kept in
    /// memory only (a write per request would cost more than `parley devices` is worth), one
    /// entry per device row, dropped when the device is revoked.
    private let lastSeen = Mutex<[Int64: UInt64]>([:])

    init(storage: any ServerStorage, configuration: ServerConfiguration, hub: ConnectionHub, logger: Logger) {
        self.storage = storage
        self.configuration = configuration
        self.hub = hub
        self.logger = logger
    }

    /// A registration's first list: it must name `user`, verify under its own identity key,
    /// and list exactly one active device.
    func checkFirst(_ data: Data, user: String) throws -> StoredDeviceList {
        let list = try verified(data, user: user, pinned: nil)
        guard list.activeDevices.count == 1 else {
            throw ErrorBody(.invalidDeviceList, "A new account's device list names exactly the registering device.")
        }
        return StoredDeviceList(identityKey: list.identityKey, version: list.version, data: [UInt8](data))
    }

    /// The account's signed list, as stored; `notFound` for an account without one.
    func list(of name: String) throws -> API.DeviceListBody {
        guard let user = try storage.user(named: name) else { throw ErrorBody(.userNotFound) }
        guard let stored = try storage.deviceList(ofUser: user.id) else {
            throw ErrorBody(.notFound, "\(name) has no signed device list yet.")
        }
        return API.DeviceListBody(deviceList: Data(stored.data))
    }

    /// Replaces the device's account's list with a newer one signed by the account's identity
    /// key, then removes every device of the account that the new list does not name as active.
    func publish(_ data: Data, from device: DeviceRecord) throws {
        let current = try storage.deviceList(ofUser: device.userID)
        let list = try verified(data, user: device.userName, pinned: current?.identityKey)
        if let current, list.version <= current.version {
            throw ErrorBody(.invalidDeviceList, "The device list is not newer than the one the server holds.")
        }
        guard list.activeDevices.count <= configuration.maxDevicesPerAccount else { throw ErrorBody(.tooManyDevices) }
        let stored = StoredDeviceList(identityKey: list.identityKey, version: list.version, data: [UInt8](data))
        do {
            try storage.storeDeviceList(userID: device.userID, stored)
        } catch StorageError.conflict {
            throw ErrorBody(.invalidDeviceList, "Another device published a newer list first; fetch it and try again.")
        }
        if current == nil {
            logger.notice("identity key set by first device list (TOFU)", metadata: ["user": "\(device.userName)"])
        }
        try removeUnlisted(of: device.userID, user: device.userName, list: list)
    }

    /// Notes an authenticated request of the device now.
    func seen(_ deviceID: Int64) {
        let now = Clock.milliseconds()
        lastSeen.withLock { $0[deviceID] = now }
    }

    /// Drops a removed device's last-seen time (the map holds only existing devices).
    func forget(_ deviceID: Int64) {
        _ = lastSeen.withLock { $0.removeValue(forKey: deviceID) }
    }

    /// The account's devices as the server sees them: when each was last seen (since the server
    /// started) and whether it is connected now. The server's word, shown as such.
    func activity(of device: DeviceRecord) throws -> API.DeviceActivity {
        let devices = try storage.devices(ofUser: device.userID)
        let seen = lastSeen.withLock { map in devices.map { map[$0.id] } }
        return API.DeviceActivity(
            devices: zip(devices, seen).map { device, lastSeen in
                API.DeviceActivity.Entry(
                    signatureKey: Data(device.signatureKey),
                    lastSeen: lastSeen,
                    connected: hub.isConnected(deviceID: device.id)
                )
            }
        )
    }

    /// Whether the account's list (if it has one) names `signatureKey` as an active device.
    func isListed(userID: Int64, signatureKey: [UInt8]) throws -> Bool {
        guard let stored = try storage.deviceList(ofUser: userID) else { return true }
        guard let signed = try? SignedDeviceList(encoded: stored.data) else { return false }
        return signed.list.isActive(signatureKey)
    }

    /// Revocation: each device the list no longer names loses its sessions, KeyPackages and
    /// memberships, its key is tombstoned, and its open WebSocket is closed now.
    private func removeUnlisted(of userID: Int64, user: String, list: DeviceList) throws {
        for device in try storage.devices(ofUser: userID) where !list.isActive(device.signatureKey) {
            guard try storage.removeDevice(userID: userID, deviceID: device.id) else { continue }
            hub.close(deviceID: device.id)
            forget(device.id)
            logger.info("device revoked by signed list", metadata: ["user": "\(user)", "device": "\(device.id)"])
        }
    }

    private func verified(_ data: Data, user: String, pinned: [UInt8]?) throws -> DeviceList {
        guard data.count <= DeviceList.maxEncodedBytes + 80 else { throw ErrorBody(.tooLarge) }
        do {
            return try SignedDeviceList(encoded: [UInt8](data)).verify(user: user, pinnedIdentityKey: pinned)
        } catch .identityKeyChanged {
            throw ErrorBody(.invalidDeviceList, "The device list is signed by another identity key than the account's.")
        } catch {
            throw ErrorBody(.invalidDeviceList)
        }
    }
}

/// The group policy's device hook on the server (``ParleyGroupPolicy/CommitRule``): an added
/// device must be active in its account's current signed list.
struct ListedDevices: DeviceDirectoryCheck {
    let storage: any ServerStorage

    func isListed(user: String, signatureKey: [UInt8]) throws -> Bool {
        guard let record = try storage.user(named: user) else { return false }
        guard let stored = try storage.deviceList(ofUser: record.id) else { return true }
        guard let signed = try? SignedDeviceList(encoded: stored.data) else { return false }
        return signed.list.isActive(signatureKey)
    }
}
