import MLS
import ParleyProtocol

/// What this home trusts about a contact's devices: the identity key pinned on first contact
/// (trust on first use, like the server certificate) and the last signed device list accepted
/// for them, so an older list cannot be replayed. Kept sealed in the home store.
struct ContactPin: Sendable, Hashable {
    var identityKey: [UInt8]
    var list: SignedDeviceList

    /// `struct { opaque identity_key<V>; opaque signed_list<V>; }`
    func encoded() throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(identityKey)
        try writer.writeOpaque(try list.encoded())
        return writer.bytes
    }

    init(identityKey: [UInt8], list: SignedDeviceList) {
        self.identityKey = identityKey
        self.list = list
    }

    init(encoded bytes: [UInt8]) throws {
        var reader = TLSReader(bytes)
        identityKey = try reader.readOpaque()
        list = try SignedDeviceList(encoded: try reader.readOpaque())
        try reader.finish()
    }
}
