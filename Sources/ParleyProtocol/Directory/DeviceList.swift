import MLS

/// An account's devices, as its identity key signed them (docs/PROTOCOL.md, "Device directory"):
///
/// ```
/// struct {
///     opaque signature_key<V>;     // the device's MLS signature public key (RFC 9420 §5.1.1)
///     opaque name<V>;              // UTF-8, a valid DeviceName
///     uint64 added_at;             // milliseconds since 1970, as the signer's clock said
///     optional<uint64> revoked_at; // present once the device is revoked
/// } ParleyDeviceEntry;
///
/// struct {
///     uint8 format;                // 1
///     opaque user<V>;              // the account name
///     opaque identity_key<V>;      // 32-byte Ed25519 public key of the account
///     uint64 version;              // strictly increasing with every change
///     ParleyDeviceEntry entries<V>;
/// } ParleyDeviceList;
/// ```
///
/// A value type: ``adding(_:)`` and ``revoking(signatureKey:)`` return the next version, which
/// the identity then signs (``AccountIdentity/sign(_:)``).
public struct DeviceList: Hashable, Sendable {
    public static let format: UInt8 = 1
    /// Entries the format holds, active and revoked together; the oldest revoked entries are
    /// dropped first to stay under it. Servers cap active devices lower (``maxActiveDevices``).
    public static let maxEntries = 64
    /// The default cap on active devices (a server may configure another).
    public static let defaultMaxActiveDevices = 10
    /// Longest signature key: a P-521 uncompressed point.
    public static let maxSignatureKeyBytes = 133
    /// Longest encoded list, so a reader refuses oversized input before parsing it.
    public static let maxEncodedBytes = 16 * 1024

    public var user: String
    public var identityKey: [UInt8]
    public var version: UInt64
    public var entries: [DeviceEntry]

    public init(user: String, identityKey: [UInt8], version: UInt64, entries: [DeviceEntry]) {
        self.user = user
        self.identityKey = identityKey
        self.version = version
        self.entries = entries
    }

    /// A first list, version 1, naming one device.
    public static func first(
        user: String,
        identityKey: [UInt8],
        device: DeviceEntry
    ) throws(DeviceListError) -> DeviceList {
        try DeviceList(user: user, identityKey: identityKey, version: 0, entries: []).adding(device)
    }

    /// Entries not revoked.
    public var activeDevices: [DeviceEntry] { entries.filter { $0.revokedAt == nil } }

    /// Whether `signatureKey` belongs to an active device.
    public func isActive(_ signatureKey: [UInt8]) -> Bool {
        activeDevices.contains { $0.signatureKey == signatureKey }
    }

    /// The next version with `device` added. A key that is already listed, active or revoked,
    /// is refused: a revoked device never comes back under the same key.
    public func adding(
        _ device: DeviceEntry,
        maxActiveDevices: Int = defaultMaxActiveDevices
    ) throws(DeviceListError) -> DeviceList {
        guard DeviceName.isValid(device.name), device.revokedAt == nil,
            (1...Self.maxSignatureKeyBytes).contains(device.signatureKey.count)
        else { throw .invalidDeviceName }
        guard !entries.contains(where: { $0.signatureKey == device.signatureKey }) else { throw .duplicateDevice }
        guard activeDevices.count < maxActiveDevices else { throw .tooManyDevices(limit: maxActiveDevices) }
        var next = try nextVersion()
        next.entries.append(device)
        while next.entries.count > Self.maxEntries {
            guard let oldestRevoked = next.entries.firstIndex(where: { $0.revokedAt != nil }) else {
                throw .tooManyDevices(limit: Self.maxEntries)
            }
            next.entries.remove(at: oldestRevoked)
        }
        return next
    }

    /// The next version with the active device holding `signatureKey` marked revoked at `time`.
    public func revoking(signatureKey: [UInt8], at time: UInt64) throws(DeviceListError) -> DeviceList {
        guard let index = entries.firstIndex(where: { $0.signatureKey == signatureKey && $0.revokedAt == nil }) else {
            throw .unknownDevice
        }
        var next = try nextVersion()
        next.entries[index].revokedAt = time
        return next
    }

    private func nextVersion() throws(DeviceListError) -> DeviceList {
        let (version, overflow) = version.addingReportingOverflow(1)
        guard !overflow else { throw .versionExhausted }
        var next = self
        next.version = version
        return next
    }
}

/// One device in a ``DeviceList``.
public struct DeviceEntry: Hashable, Sendable {
    /// The device's MLS signature public key: the key in its LeafNode (RFC 9420 §7.2).
    public var signatureKey: [UInt8]
    public var name: String
    /// Milliseconds since 1970.
    public var addedAt: UInt64
    /// When it was revoked, or nil while active.
    public var revokedAt: UInt64?

    public init(signatureKey: [UInt8], name: String, addedAt: UInt64, revokedAt: UInt64? = nil) {
        self.signatureKey = signatureKey
        self.name = name
        self.addedAt = addedAt
        self.revokedAt = revokedAt
    }
}

/// Device names follow the group-name rules (``GroupName``): 1–64 UTF-8 bytes in NFC, without
/// control, format or separator characters, so a name cannot hide or rewrite terminal output.
public enum DeviceName {
    public static func isValid(_ name: String) -> Bool { GroupName.isValid(name) }
}
