import Foundation
import MLS

/// Request and response bodies of the HTTP API (see docs/PROTOCOL.md).
public enum API {
    public struct Register: Codable, Sendable {
        public var username: String
        public var password: String
        public var invite: String?
        /// The account's first signed device list (``SignedDeviceList``), naming the registering
        /// device; it carries the identity key the server then keeps for good. Absent from
        /// clients older than the device directory.
        public var deviceList: Data?
        public init(username: String, password: String, invite: String? = nil, deviceList: Data? = nil) {
            self.username = username
            self.password = password
            self.invite = invite
            self.deviceList = deviceList
        }
    }

    /// `GET /v1/users/NAME/devices` and `PUT /v1/devices`: an encoded ``SignedDeviceList``.
    public struct DeviceListBody: Codable, Sendable {
        public var deviceList: Data
        public init(deviceList: Data) { self.deviceList = deviceList }
    }

    /// Asks for a login challenge: a fresh nonce for `username`, valid once and briefly.
    public struct LoginChallengeRequest: Codable, Sendable {
        public var username: String
        public init(username: String) { self.username = username }
    }

    public struct LoginChallenge: Codable, Sendable {
        /// Random bytes the device signs in its `Login`.
        public var challenge: Data
        /// Server time (ms since the Unix epoch) after which the challenge is refused.
        public var expiresAt: UInt64
        public init(challenge: Data, expiresAt: UInt64) {
            self.challenge = challenge
            self.expiresAt = expiresAt
        }
    }

    /// Log in a device: the device's MLS signature key identifies it, and the
    /// signature over a fresh server challenge proves the device holds it.
    public struct Login: Codable, Sendable {
        public var username: String
        public var password: String
        public var signatureKey: Data
        /// The nonce from `POST /v1/sessions/challenge`.
        public var challenge: Data
        /// SignWithLabel(key, ``proofLabel``, ``proofContent(username:challenge:signatureKey:serverCertificate:)``).
        public var signature: Data

        public init(username: String, password: String, signatureKey: Data, challenge: Data, signature: Data) {
            self.username = username
            self.password = password
            self.signatureKey = signatureKey
            self.challenge = challenge
            self.signature = signature
        }

        /// Signs `challenge` with the device's keys: the whole login for one device.
        public init(
            username: String,
            password: String,
            challenge: Data,
            signatureKeys: SignatureKeyPair,
            serverCertificate: [UInt8]
        ) throws {
            let content = try Self.proofContent(
                username: username,
                challenge: [UInt8](challenge),
                signatureKey: signatureKeys.publicKey.bytes,
                serverCertificate: serverCertificate
            )
            let signature = try Self.suite.signWithLabel(
                signatureKeys.privateKey,
                label: Self.proofLabel,
                content: content
            )
            self.init(
                username: username,
                password: password,
                signatureKey: Data(signatureKeys.publicKey.bytes),
                challenge: challenge,
                signature: Data(signature)
            )
        }

        /// Parley devices sign with Ed25519, the signature scheme of the one suite Parley uses.
        public static let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

        /// Through SignWithLabel this becomes "MLS 1.0 Parley login" (RFC 9420 §5.1.2): no MLS
        /// structure carries that label, so a login proof can never pass as an MLS signature or back.
        public static let proofLabel = "Parley login"

        /// What the device signs, TLS presentation language:
        /// `struct { opaque username<V>; opaque challenge<V>; opaque signature_key<V>;
        /// opaque server_certificate_hash<V>; }`. The username and challenge bind the proof to
        /// this login; the hash of the certificate the client pinned binds it to this server, so a
        /// hostile server cannot relay another server's challenge and replay the answer there.
        public static func proofContent(
            username: String,
            challenge: [UInt8],
            signatureKey: [UInt8],
            serverCertificate: [UInt8]
        ) throws -> [UInt8] {
            var writer = TLSWriter()
            try writer.writeOpaque(Array(username.utf8))
            try writer.writeOpaque(challenge)
            try writer.writeOpaque(signatureKey)
            try writer.writeOpaque(suite.hash(serverCertificate))
            return writer.bytes
        }
    }

    public struct Session: Codable, Sendable {
        public var token: String
        public var deviceID: Int64
        public var expiresAt: UInt64
        public init(token: String, deviceID: Int64, expiresAt: UInt64) {
            self.token = token
            self.deviceID = deviceID
            self.expiresAt = expiresAt
        }
    }

    public struct UploadKeyPackages: Codable, Sendable {
        /// Each an MLSMessage carrying a KeyPackage, signed by this device's key.
        public var keyPackages: [Data]
        public var lastResort: Data?
        public init(keyPackages: [Data], lastResort: Data? = nil) {
            self.keyPackages = keyPackages
            self.lastResort = lastResort
        }
    }

    public struct KeyPackageStock: Codable, Sendable {
        /// Unclaimed one-time KeyPackages this device has on the server.
        public var available: Int
        /// Below this the device should upload more.
        public var lowWatermark: Int
        public init(available: Int, lowWatermark: Int) {
            self.available = available
            self.lowWatermark = lowWatermark
        }
    }

    public struct ClaimedKeyPackages: Codable, Sendable {
        public struct Entry: Codable, Sendable {
            public var deviceID: Int64
            public var keyPackage: Data
            public init(deviceID: Int64, keyPackage: Data) {
                self.deviceID = deviceID
                self.keyPackage = keyPackage
            }
        }
        public var username: String
        public var keyPackages: [Entry]
        public init(username: String, keyPackages: [Entry]) {
            self.username = username
            self.keyPackages = keyPackages
        }
    }

    public struct User: Codable, Sendable {
        public var username: String
        /// The MLS signature keys of the user's devices, for safety numbers.
        public var signatureKeys: [Data]
        public init(username: String, signatureKeys: [Data]) {
            self.username = username
            self.signatureKeys = signatureKeys
        }
    }

    public struct CreateGroup: Codable, Sendable {
        public var name: String
        /// MLSMessage(GroupInfo) of epoch 0, with the ratchet tree, signed by the creator.
        public var groupInfo: Data
        public init(name: String, groupInfo: Data) {
            self.name = name
            self.groupInfo = groupInfo
        }
    }

    public struct Group: Codable, Sendable {
        public var name: String
        public var epoch: UInt64
        public var members: [String]
        public var admins: [String]
        /// The latest seq in the group's log.
        public var lastSeq: UInt64
        public init(name: String, epoch: UInt64, members: [String], admins: [String], lastSeq: UInt64) {
            self.name = name
            self.epoch = epoch
            self.members = members
            self.admins = admins
            self.lastSeq = lastSeq
        }
    }

    public struct Groups: Codable, Sendable {
        public var groups: [Group]
        public init(groups: [Group]) { self.groups = groups }
    }

    /// The public ratchet tree of a group's current epoch (for joining when a Welcome omits it).
    public struct RatchetTree: Codable, Sendable {
        public var epoch: UInt64
        public var tree: Data
        public init(epoch: UInt64, tree: Data) {
            self.epoch = epoch
            self.tree = tree
        }
    }

    public struct ErrorResponse: Codable, Sendable {
        public var error: ErrorBody
        public init(error: ErrorBody) { self.error = error }
    }
}
