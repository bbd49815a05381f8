import Crypto
import MLS

/// A ``DeviceList`` with its identity key's signature:
/// `struct { ParleyDeviceList list; opaque signature<V>; } ParleySignedDeviceList;`
/// The signature is Ed25519 (RFC 8032) over the list's `SignContent` (see ``DeviceList``).
///
/// The server stores and serves these but cannot make one: a client trusts a list only after
/// ``verify(user:pinnedIdentityKey:)`` and, for a list it has seen before, a version check.
public struct SignedDeviceList: Hashable, Sendable {
    /// The domain-separation label, in the manner of SignWithLabel (RFC 9420 §5.1.2).
    public static let label = "Parley DeviceList v1"

    public let list: DeviceList
    public let signature: [UInt8]

    init(list: DeviceList, signature: [UInt8]) {
        self.list = list
        self.signature = signature
    }

    /// Decodes strictly: one list, a 64-byte signature, nothing trailing, at most
    /// ``DeviceList/maxEncodedBytes`` in all. Decoding does not verify: call ``verify(user:pinnedIdentityKey:)``.
    public init(encoded bytes: [UInt8]) throws(DeviceListError) {
        guard bytes.count <= DeviceList.maxEncodedBytes + 80 else { throw .malformed }
        var reader = TLSReader(bytes)
        let list = try DeviceList(from: &reader)
        do {
            let signature = try reader.readOpaque()
            try reader.finish()
            guard signature.count == 64 else { throw DeviceListError.malformed }
            self.init(list: list, signature: signature)
        } catch {
            throw .malformed
        }
    }

    public func encoded() throws(DeviceListError) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeRaw(try list.encoded())
        do { try writer.writeOpaque(signature) } catch { throw .malformed }
        return writer.bytes
    }

    /// The list, if it names `user`, carries `pinnedIdentityKey` (or, with no pin yet, any key:
    /// the caller pins what it returns) and its signature verifies under that key.
    public func verify(user: String, pinnedIdentityKey: [UInt8]?) throws(DeviceListError) -> DeviceList {
        guard list.user == user else { throw .userMismatch(expected: user, found: list.user) }
        if let pinnedIdentityKey, pinnedIdentityKey != list.identityKey { throw .identityKeyChanged }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: list.identityKey) else {
            throw .badSignature
        }
        guard key.isValidSignature(signature, for: try list.signContent()) else { throw .badSignature }
        return list
    }

    /// ``verify(user:pinnedIdentityKey:)``, and no rollback from `known` (the last list this
    /// reader accepted): an older version, or a different list under the same version, is
    /// refused, so an old list cannot be replayed to resurrect a revoked device.
    public func verify(
        user: String,
        pinnedIdentityKey: [UInt8]?,
        known: DeviceList?
    ) throws(DeviceListError) -> DeviceList {
        let list = try verify(user: user, pinnedIdentityKey: pinnedIdentityKey)
        if let known, list.version < known.version || (list.version == known.version && list != known) {
            throw .staleVersion(known: known.version, offered: list.version)
        }
        return list
    }
}
