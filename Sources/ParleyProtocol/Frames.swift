import Foundation

/// Frames a device sends on its WebSocket (`/v1/ws`), one JSON object per text frame.
public enum ClientFrame: Codable, Sendable, Hashable {
    /// Submit an MLS message to a group. Handshake messages must be
    /// PublicMessage; a Commit that adds members carries their Welcome.
    case send(Send)
    /// Everything up to `seq` in `group` is stored on the device.
    case ack(Ack)

    public struct Send: Codable, Sendable, Hashable {
        /// Chosen by the client; echoed in the resulting `message` or `error` frame.
        public var id: String
        public var group: String
        public var message: Data
        public var welcome: Data?
        public init(id: String, group: String, message: Data, welcome: Data? = nil) {
            self.id = id
            self.group = group
            self.message = message
            self.welcome = welcome
        }
    }

    public struct Ack: Codable, Sendable, Hashable {
        public var group: String
        public var seq: UInt64
        public init(group: String, seq: UInt64) {
            self.group = group
            self.seq = seq
        }
    }

    private enum CodingKeys: String, CodingKey { case type }
    private enum Kind: String, Codable { case send, ack }

    public init(from decoder: Decoder) throws {
        switch try decoder.container(keyedBy: CodingKeys.self).decode(Kind.self, forKey: .type) {
        case .send: self = .send(try Send(from: decoder))
        case .ack: self = .ack(try Ack(from: decoder))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .send(let send):
            try container.encode(Kind.send, forKey: .type)
            try send.encode(to: encoder)
        case .ack(let ack):
            try container.encode(Kind.ack, forKey: .type)
            try ack.encode(to: encoder)
        }
    }
}

/// Frames the server sends to a device.
public enum ServerFrame: Codable, Sendable, Hashable {
    /// An accepted message, in group order. The sender's own copy is its acknowledgement.
    case message(Message)
    /// A Welcome for this device: it was added to `group`.
    case welcome(WelcomeFrame)
    /// Every stored Welcome and message has been replayed; live delivery follows.
    case replayFinished
    /// A request failed; `id` names the `send` it answers, if any.
    case error(ErrorFrame)
    /// An admin destroyed the group; its log is gone.
    case groupDestroyed(GroupDestroyed)

    public struct Message: Codable, Sendable, Hashable {
        public var group: String
        /// Position in the group's log, from 1, without gaps.
        public var seq: UInt64
        /// Server time of acceptance, milliseconds since the Unix epoch.
        public var time: UInt64
        /// The account whose device submitted it (MLS authenticates the real sender).
        public var sender: String
        public var message: Data
        /// The client's `id`, only on the submitting device's copy.
        public var id: String?
        public init(group: String, seq: UInt64, time: UInt64, sender: String, message: Data, id: String? = nil) {
            self.group = group
            self.seq = seq
            self.time = time
            self.sender = sender
            self.message = message
            self.id = id
        }
    }

    public struct WelcomeFrame: Codable, Sendable, Hashable {
        public var group: String
        /// The seq of the Commit that added the device; messages after it are for it.
        public var seq: UInt64
        public var time: UInt64
        public var welcome: Data
        public init(group: String, seq: UInt64, time: UInt64, welcome: Data) {
            self.group = group
            self.seq = seq
            self.time = time
            self.welcome = welcome
        }
    }

    public struct ErrorFrame: Codable, Sendable, Hashable {
        public var id: String?
        public var group: String?
        public var error: ErrorBody
        public init(id: String? = nil, group: String? = nil, error: ErrorBody) {
            self.id = id
            self.group = group
            self.error = error
        }
    }

    public struct GroupDestroyed: Codable, Sendable, Hashable {
        public var group: String
        /// The admin's MLS-signed destroy message (ApplicationContent `destroy_group`) the
        /// server kept for members who were offline; nil when it has none. Members delete the
        /// group only if it verifies against their own state (docs/PROTOCOL.md).
        public var notice: Data?
        public init(group: String, notice: Data? = nil) {
            self.group = group
            self.notice = notice
        }
    }

    private enum CodingKeys: String, CodingKey { case type }
    private enum Kind: String, Codable { case message, welcome, replayFinished, error, groupDestroyed }

    public init(from decoder: Decoder) throws {
        switch try decoder.container(keyedBy: CodingKeys.self).decode(Kind.self, forKey: .type) {
        case .message: self = .message(try Message(from: decoder))
        case .welcome: self = .welcome(try WelcomeFrame(from: decoder))
        case .replayFinished: self = .replayFinished
        case .error: self = .error(try ErrorFrame(from: decoder))
        case .groupDestroyed: self = .groupDestroyed(try GroupDestroyed(from: decoder))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .message(let value):
            try container.encode(Kind.message, forKey: .type)
            try value.encode(to: encoder)
        case .welcome(let value):
            try container.encode(Kind.welcome, forKey: .type)
            try value.encode(to: encoder)
        case .replayFinished:
            try container.encode(Kind.replayFinished, forKey: .type)
        case .error(let value):
            try container.encode(Kind.error, forKey: .type)
            try value.encode(to: encoder)
        case .groupDestroyed(let value):
            try container.encode(Kind.groupDestroyed, forKey: .type)
            try value.encode(to: encoder)
        }
    }
}

/// JSON coding as both sides use it: binary as base64, keys as declared.
public enum WireJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        // The frames sent most take the direct writer: the same bytes, a fraction of the CPU.
        if let frame = value as? ServerFrame, case .message(let message) = frame { return FrameJSON.encode(message) }
        if let frame = value as? ClientFrame, case .send(let send) = frame { return FrameJSON.encode(send) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        // The frames received most, in the exact form WireJSON writes them, skip the coder;
        // anything else (or anything the direct reader doubts) is JSONDecoder's to judge.
        if T.self == ServerFrame.self, let message = FrameJSON.decodeMessage(data),
            let frame = ServerFrame.message(message) as? T
        {
            return frame
        }
        if T.self == ClientFrame.self, let send = FrameJSON.decodeSend(data), let frame = ClientFrame.send(send) as? T {
            return frame
        }
        return try JSONDecoder().decode(type, from: data)
    }
}
