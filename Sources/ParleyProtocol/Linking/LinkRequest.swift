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
    /// The longest device name (``DeviceName``).
    public static let maxDeviceNameBytes = 64

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

    /// The device directory's rule (``DeviceName``): the name is printed in other people's
    /// histories and device lists, so nothing a terminal would interpret.
    public static func isValidDeviceName(_ name: String) -> Bool { DeviceName.isValid(name) }

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

    /// `POST /v1/link/requests`, sent without a session (no device list names the new device
    /// yet): the request, and a login proof for the same account and signature key (the password,
    /// and a fresh server challenge signed with the key), so only the account's owner, holding
    /// the key, can post one.
    public struct PostLinkRequest: Codable, Sendable {
        public var login: Login
        public var request: LinkRequest
        public init(login: Login, request: LinkRequest) {
            self.login = login
            self.request = request
        }
    }

    /// `GET /v1/link/requests/{id}/state`, polled by the new device without a session: whether
    /// the account's signed device list names the request's key yet (then it can log in).
    public struct LinkRequestState: Codable, Sendable {
        public var approved: Bool
        public init(approved: Bool) { self.approved = approved }
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
