import Foundation

extension API {
    /// `GET /v1/devices`: the caller's account's devices as the server sees them. Unsigned (the
    /// signed list says which devices the account has; this only says how recently each was
    /// active), so a client shows it next to the list, never instead of it.
    public struct DeviceActivity: Codable, Sendable {
        public struct Entry: Codable, Sendable {
            public var signatureKey: Data
            /// Milliseconds since 1970 of the device's last authenticated request since the server
            /// started; nil when it has made none since.
            public var lastSeen: UInt64?
            /// A WebSocket of the device is open now.
            public var connected: Bool

            public init(signatureKey: Data, lastSeen: UInt64?, connected: Bool) {
                self.signatureKey = signatureKey
                self.lastSeen = lastSeen
                self.connected = connected
            }
        }

        public var devices: [Entry]
        public init(devices: [Entry]) { self.devices = devices }
    }
}
