/// Why a signed device list, or a change to one, was refused. Callers match on the case;
/// the client and server turn each into a sentence at their edge.
public enum DeviceListError: Error, Hashable, Sendable {
    /// The bytes are not one well-formed `ParleySignedDeviceList` within the format's bounds.
    case malformed
    /// The list's format version is not one this code reads.
    case unsupportedFormat(UInt8)
    /// The list names a different account than the one asked for.
    case userMismatch(expected: String, found: String)
    /// The list carries an identity key other than the pinned one.
    case identityKeyChanged
    /// The signature does not verify under the list's identity key.
    case badSignature
    /// The list is not newer than one already seen (a replay or a rollback).
    case staleVersion(known: UInt64, offered: UInt64)
    /// Adding a device would pass the cap on active devices.
    case tooManyDevices(limit: Int)
    /// The device's signature key is already in the list (active or revoked: a revoked key never returns).
    case duplicateDevice
    /// No active device has that name or key.
    case unknownDevice
    /// A device name that is empty, too long, or holds control or format characters.
    case invalidDeviceName
    /// The version counter cannot go higher.
    case versionExhausted
    /// A recovery code that is not 52 base32 characters with a matching check group.
    case invalidRecoveryCode
}
