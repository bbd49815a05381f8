import Foundation

/// Request and response bodies of the HTTP API (see docs/PROTOCOL.md).
public enum API {
    public struct Register: Codable, Sendable {
        public var username: String
        public var password: String
        public var invite: String?
        public init(username: String, password: String, invite: String? = nil) {
            self.username = username
            self.password = password
            self.invite = invite
        }
    }

    /// Log in a device: the device's MLS signature key identifies it.
    public struct Login: Codable, Sendable {
        public var username: String
        public var password: String
        public var signatureKey: Data
        public init(username: String, password: String, signatureKey: Data) {
            self.username = username
            self.password = password
            self.signatureKey = signatureKey
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
