import Foundation
import MLS

/// What a new device asks the server to hold until one of the account's devices approves it
/// (`POST /v1/link/requests`, docs/PROTOCOL.md "Linking a device"). The server hands it back
/// to the approving device verbatim; the approving device trusts none of it until the check
/// digits of the code the user typed match it (``LinkCode/check(for:)``).
public struct LinkRequest: Codable, Sendable, Hashable {
    public var username: String
    /// What the user calls the new device ("laptop"); shown in history lines and device lists.
    public var deviceName: String
    /// The new device's MLS signature key (Ed25519), the key it logs in and signs with.
    public var signatureKey: Data
    /// The X25519 key the history bundle is sealed to (RFC 9180 base mode).
    public var hpkePublicKey: Data
    /// Fresh random bytes, so two requests for the same keys never share a code, and the
    /// history bundle names the one request it answers.
    public var nonce: Data

    public static let nonceLength = 32
    /// Ed25519 public keys and X25519 public keys are both 32 bytes in suite 1.
    public static let keyLength = 32
    public static let maxDeviceNameBytes = 32

    public init(username: String, deviceName: String, signatureKey: Data, hpkePublicKey: Data, nonce: Data) {
        self.username = username
        self.deviceName = deviceName
        self.signatureKey = signatureKey
        self.hpkePublicKey = hpkePublicKey
        self.nonce = nonce
    }

    /// Checks every field's shape; the server refuses a request that fails, and so does the
    /// approving device (a request handed back by a hostile server is input like any other).
    public func validate() throws(LinkError) {
        guard signatureKey.count == Self.keyLength else { throw .malformedRequest(.signatureKey) }
        guard hpkePublicKey.count == Self.keyLength else { throw .malformedRequest(.hpkeKey) }
        guard nonce.count == Self.nonceLength else { throw .malformedRequest(.nonce) }
        guard Self.isValidDeviceName(deviceName) else { throw .malformedRequest(.deviceName) }
        guard !username.isEmpty, username.utf8.count <= 64 else { throw .malformedRequest(.username) }
    }

    /// 1 to 32 bytes of a-z, A-Z, 0-9, '-', '_', '.' and space, not starting or ending with a space:
    /// the name is printed in other people's histories, so nothing a terminal would interpret.
    public static func isValidDeviceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maxDeviceNameBytes).contains(bytes.count), bytes.first != 0x20, bytes.last != 0x20 else {
            return false
        }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: " "):
                true
            default: false
            }
        }
    }

    /// What the check digits hash, TLS presentation language:
    /// `struct { opaque label<V> = "Parley link code v1"; opaque username<V>; opaque device_name<V>;
    /// opaque signature_key<V>; opaque hpke_public_key<V>; opaque nonce<V>; }`.
    public func commitment() throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(Array(Self.codeLabel.utf8))
        try writer.writeOpaque(Array(username.utf8))
        try writer.writeOpaque(Array(deviceName.utf8))
        try writer.writeOpaque(signatureKey)
        try writer.writeOpaque(hpkePublicKey)
        try writer.writeOpaque(nonce)
        return writer.bytes
    }

    static let codeLabel = "Parley link code v1"
}

extension API {
    /// The server's answer to a new link request: the id the code starts with, and when the
    /// request expires (ms since the Unix epoch).
    public struct LinkRequestCreated: Codable, Sendable {
        public var lookupID: String
        public var expiresAt: UInt64
        public init(lookupID: String, expiresAt: UInt64) {
            self.lookupID = lookupID
            self.expiresAt = expiresAt
        }
    }

    /// A pending link request as the approving device fetches it.
    public struct PendingLinkRequest: Codable, Sendable {
        public var request: LinkRequest
        public var expiresAt: UInt64
        public init(request: LinkRequest, expiresAt: UInt64) {
            self.request = request
            self.expiresAt = expiresAt
        }
    }
}
