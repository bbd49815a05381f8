import Foundation

/// How the server runs. Filled, in increasing priority, from the defaults, a
/// JSON config file, `PARLEY_*` environment variables and command-line flags.
public struct ServerConfiguration: Sendable, Codable, Equatable {
    public enum Registration: String, Sendable, Codable { case open, closed, invite }

    public var dataDirectory: String = "parley-data"
    public var host: String = "127.0.0.1"
    public var port: Int = 8443
    /// PEM files; when both are nil a self-signed certificate is created in the data directory.
    public var tlsCertificate: String?
    public var tlsPrivateKey: String?
    public var registration: Registration = .open
    public var inviteToken: String?
    public var sessionLifetimeHours: Int = 24 * 30
    /// Largest WebSocket frame or HTTP body accepted.
    public var maxFrameBytes: Int = 1 << 20
    public var maxMembers: Int = 10_000
    /// Stored messages older than this are deleted even if some device never acknowledged them.
    public var retentionDays: Int = 30
    /// Messages a device may send per second, sustained (bursts of 4× allowed).
    public var messagesPerSecond: Int = 50
    public var keyPackageLowWatermark: Int = 10
    /// How long after a commit application messages of the previous epoch are still accepted.
    public var epochGraceSeconds: Int = 30

    public init() {}

    /// Keys of the config file and the environment, for documentation.
    enum CodingKeys: String, CodingKey {
        case dataDirectory = "data", host, port, tlsCertificate = "tls_certificate", tlsPrivateKey = "tls_private_key"
        case registration, inviteToken = "invite_token", sessionLifetimeHours = "session_lifetime_hours"
        case maxFrameBytes = "max_frame_bytes", maxMembers = "max_members", retentionDays = "retention_days"
        case messagesPerSecond = "messages_per_second", keyPackageLowWatermark = "key_package_low_watermark"
        case epochGraceSeconds = "epoch_grace_seconds"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ServerConfiguration()
        dataDirectory = try container.decodeIfPresent(String.self, forKey: .dataDirectory) ?? defaults.dataDirectory
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? defaults.host
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? defaults.port
        tlsCertificate = try container.decodeIfPresent(String.self, forKey: .tlsCertificate)
        tlsPrivateKey = try container.decodeIfPresent(String.self, forKey: .tlsPrivateKey)
        registration = try container.decodeIfPresent(Registration.self, forKey: .registration) ?? defaults.registration
        inviteToken = try container.decodeIfPresent(String.self, forKey: .inviteToken)
        sessionLifetimeHours = try container.decodeIfPresent(Int.self, forKey: .sessionLifetimeHours) ?? defaults.sessionLifetimeHours
        maxFrameBytes = try container.decodeIfPresent(Int.self, forKey: .maxFrameBytes) ?? defaults.maxFrameBytes
        maxMembers = try container.decodeIfPresent(Int.self, forKey: .maxMembers) ?? defaults.maxMembers
        retentionDays = try container.decodeIfPresent(Int.self, forKey: .retentionDays) ?? defaults.retentionDays
        messagesPerSecond = try container.decodeIfPresent(Int.self, forKey: .messagesPerSecond) ?? defaults.messagesPerSecond
        keyPackageLowWatermark = try container.decodeIfPresent(Int.self, forKey: .keyPackageLowWatermark) ?? defaults.keyPackageLowWatermark
        epochGraceSeconds = try container.decodeIfPresent(Int.self, forKey: .epochGraceSeconds) ?? defaults.epochGraceSeconds
    }

    /// Reads the JSON config file, then overrides from the environment (`PARLEY_` + upper-cased key).
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        if let file {
            configuration = try JSONDecoder().decode(ServerConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        }
        var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as! [String: Any]
        for key in Self.allKeys {
            guard let value = environment["PARLEY_" + key.uppercased()] else { continue }
            merged[key] = Int(value).map { $0 as Any } ?? value
        }
        return try JSONDecoder().decode(ServerConfiguration.self, from: JSONSerialization.data(withJSONObject: merged))
    }

    static let allKeys = [
        "data", "host", "port", "tls_certificate", "tls_private_key", "registration", "invite_token", "session_lifetime_hours",
        "max_frame_bytes", "max_members", "retention_days", "messages_per_second", "key_package_low_watermark", "epoch_grace_seconds",
    ]

    var databasePath: String { (dataDirectory as NSString).appendingPathComponent("parley.sqlite") }
}
