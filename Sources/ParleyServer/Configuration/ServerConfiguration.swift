import Foundation

/// How the server runs. Filled, in increasing priority, from the defaults, a
/// JSON config file, `PARLEY_*` environment variables and command-line flags.
public struct ServerConfiguration: Sendable, Codable, Equatable {
    public enum Registration: String, Sendable, Codable { case open, closed, invite }

    public var dataDirectory: String = "parley-data"
    /// `postgres://user[:password]@host[:port]/database`: state in PostgreSQL, which several
    /// server nodes may share; nil keeps it in SQLite in the data directory (the default).
    public var database: String?
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
    /// Largest creation GroupInfo accepted: a new group has one member, so its GroupInfo
    /// (with its one-leaf ratchet tree) is a few KiB; checked before anything is parsed.
    public var maxGroupInfoBytes: Int = 16 << 10
    /// Groups one device may create per hour (bursts of that many at once).
    public var groupCreationsPerHour: Int = 10
    /// Proposals the server keeps for one epoch of a group, by count and total bytes;
    /// more are refused (`tooManyProposals`) until a commit starts the next epoch.
    public var maxProposalsPerEpoch: Int = 64
    public var maxProposalBytesPerEpoch: Int = 1 << 20
    /// Bytes of messages kept in storage per group and per sending user; past it, sends
    /// are refused (`quotaExceeded`) until members acknowledge or retention prunes.
    public var maxStoredBytesPerGroup: Int = 256 << 20
    public var maxStoredBytesPerUser: Int = 64 << 20
    /// Bytes queued for one connection that its client has not read yet; past it, the
    /// connection is closed (1008) and the device catches up from storage when it reconnects.
    public var maxQueuedBytesPerConnection: Int = 8 << 20
    /// Time from accepting a connection to a complete TLS handshake and the first request's headers.
    public var handshakeTimeoutSeconds: Int = 10
    /// An HTTP connection with no request in flight and nothing read for this long is closed.
    public var idleTimeoutSeconds: Int = 60
    /// The server pings each WebSocket this often; one not answered by the next ping closes it.
    public var pingIntervalSeconds: Int = 30
    /// An open WebSocket re-checks its session this often (and before each frame it handles), so
    /// one whose session ended elsewhere (`parley admin` in another process, expiry) is closed.
    public var sessionCheckSeconds: Int = 30
    /// Devices (signature keys) one account may register; a login from one more is refused.
    public var maxDevicesPerAccount: Int = 10
    /// `/metrics` answers requests from loopback addresses, and others only with
    /// `Authorization: Bearer <metrics_token>` when this is set.
    public var metricsToken: String?
    /// log2 of scrypt's N for password hashes (r = 8, p = 1; 15: 32 MiB a hash). Not read from the
    /// config file: stored hashes do not record it, so it must not change for a data directory.
    /// Test servers lower it: in a debug build one hash at 15 costs the better part of a second
    /// of CPU, and the suites hash thousands of passwords on two cores.
    var passwordHashCost = 15
    /// Registrations one client address may make, bursting to this and refilled over an hour.
    public var registrationsPerHourPerAddress: Int = 10
    /// Registrations the whole server accepts per minute, from all addresses together.
    public var registrationsPerMinute: Int = 30
    /// Login attempts, successful or not, one client address may make per minute (each costs a password hash).
    public var loginsPerMinutePerAddress: Int = 20
    /// One-time KeyPackages of one user handed out per hour, to all claimers together; past it,
    /// claims get the user's last-resort KeyPackage, so nobody can drain the one-time ones.
    public var keyPackageClaimsPerHourPerTarget: Int = 10
    /// Connections one client address (an IPv6 /64) may hold open at once; more are closed
    /// when accepted. Loopback addresses (a reverse proxy on this machine) are not counted.
    public var maxConnectionsPerAddress: Int = 64
    /// WebSocket acknowledgements one device may send per second, sustained (bursts of 4×).
    public var acksPerSecond: Int = 50
    /// Whether loopback connections are exempt from `maxConnectionsPerAddress` (tests turn it off).
    var connectionLimitExemptsLoopback = true

    public init() {}

    /// Keys of the config file and the environment, for documentation.
    enum CodingKeys: String, CodingKey {
        case dataDirectory = "data"
        case database
        case host, port
        case tlsCertificate = "tls_certificate"
        case tlsPrivateKey = "tls_private_key"
        case registration
        case inviteToken = "invite_token"
        case sessionLifetimeHours = "session_lifetime_hours"
        case maxFrameBytes = "max_frame_bytes"
        case maxMembers = "max_members"
        case retentionDays = "retention_days"
        case messagesPerSecond = "messages_per_second"
        case keyPackageLowWatermark = "key_package_low_watermark"
        case epochGraceSeconds = "epoch_grace_seconds"
        case maxGroupInfoBytes = "max_group_info_bytes"
        case groupCreationsPerHour = "group_creations_per_hour"
        case maxProposalsPerEpoch = "max_proposals_per_epoch"
        case maxProposalBytesPerEpoch = "max_proposal_bytes_per_epoch"
        case maxStoredBytesPerGroup = "max_stored_bytes_per_group"
        case maxStoredBytesPerUser = "max_stored_bytes_per_user"
        case maxQueuedBytesPerConnection = "max_queued_bytes_per_connection"
        case handshakeTimeoutSeconds = "handshake_timeout_seconds"
        case idleTimeoutSeconds = "idle_timeout_seconds"
        case pingIntervalSeconds = "ping_interval_seconds"
        case sessionCheckSeconds = "session_check_seconds"
        case maxDevicesPerAccount = "max_devices_per_account"
        case metricsToken = "metrics_token"
        case registrationsPerHourPerAddress = "registrations_per_hour_per_address"
        case registrationsPerMinute = "registrations_per_minute"
        case loginsPerMinutePerAddress = "logins_per_minute_per_address"
        case keyPackageClaimsPerHourPerTarget = "key_package_claims_per_hour_per_target"
        case maxConnectionsPerAddress = "max_connections_per_address"
        case acksPerSecond = "acks_per_second"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ServerConfiguration()
        dataDirectory = try container.decodeIfPresent(String.self, forKey: .dataDirectory) ?? defaults.dataDirectory
        database = try container.decodeIfPresent(String.self, forKey: .database)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? defaults.host
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? defaults.port
        tlsCertificate = try container.decodeIfPresent(String.self, forKey: .tlsCertificate)
        tlsPrivateKey = try container.decodeIfPresent(String.self, forKey: .tlsPrivateKey)
        registration = try container.decodeIfPresent(Registration.self, forKey: .registration) ?? defaults.registration
        inviteToken = try container.decodeIfPresent(String.self, forKey: .inviteToken)
        sessionLifetimeHours =
            try container.decodeIfPresent(Int.self, forKey: .sessionLifetimeHours)
            ?? defaults.sessionLifetimeHours
        maxFrameBytes = try container.decodeIfPresent(Int.self, forKey: .maxFrameBytes) ?? defaults.maxFrameBytes
        maxMembers = try container.decodeIfPresent(Int.self, forKey: .maxMembers) ?? defaults.maxMembers
        retentionDays = try container.decodeIfPresent(Int.self, forKey: .retentionDays) ?? defaults.retentionDays
        messagesPerSecond =
            try container.decodeIfPresent(Int.self, forKey: .messagesPerSecond)
            ?? defaults.messagesPerSecond
        keyPackageLowWatermark =
            try container.decodeIfPresent(Int.self, forKey: .keyPackageLowWatermark)
            ?? defaults.keyPackageLowWatermark
        epochGraceSeconds =
            try container.decodeIfPresent(Int.self, forKey: .epochGraceSeconds)
            ?? defaults.epochGraceSeconds
        func limit(_ key: CodingKeys, _ fallback: Int) throws -> Int {
            try container.decodeIfPresent(Int.self, forKey: key) ?? fallback
        }
        maxGroupInfoBytes = try limit(.maxGroupInfoBytes, defaults.maxGroupInfoBytes)
        groupCreationsPerHour = try limit(.groupCreationsPerHour, defaults.groupCreationsPerHour)
        maxProposalsPerEpoch = try limit(.maxProposalsPerEpoch, defaults.maxProposalsPerEpoch)
        maxProposalBytesPerEpoch = try limit(.maxProposalBytesPerEpoch, defaults.maxProposalBytesPerEpoch)
        maxStoredBytesPerGroup = try limit(.maxStoredBytesPerGroup, defaults.maxStoredBytesPerGroup)
        maxStoredBytesPerUser = try limit(.maxStoredBytesPerUser, defaults.maxStoredBytesPerUser)
        maxQueuedBytesPerConnection = try limit(.maxQueuedBytesPerConnection, defaults.maxQueuedBytesPerConnection)
        handshakeTimeoutSeconds = try limit(.handshakeTimeoutSeconds, defaults.handshakeTimeoutSeconds)
        idleTimeoutSeconds = try limit(.idleTimeoutSeconds, defaults.idleTimeoutSeconds)
        pingIntervalSeconds = try limit(.pingIntervalSeconds, defaults.pingIntervalSeconds)
        sessionCheckSeconds = try limit(.sessionCheckSeconds, defaults.sessionCheckSeconds)
        try decodeAccountLimits(container, defaults: defaults)
    }

    /// Reads the JSON config file, then overrides from the environment (`PARLEY_` + upper-cased key).
    /// A value of the wrong kind is refused with a sentence naming its key; ranges are checked
    /// by ``validate()``.
    public static func load(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        if let file {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            do {
                configuration = try JSONDecoder().decode(ServerConfiguration.self, from: data)
            } catch let error as DecodingError {
                throw describe(error, source: file)
            }
        }
        // Our own struct encodes as a JSON object, so the cast cannot fail on any input.
        var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as! [String: Any]
        for key in Self.allKeys {
            guard let value = environment["PARLEY_" + key.uppercased()] else { continue }
            merged[key] = try environmentValue(value, key: key)
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: merged)
            return try JSONDecoder().decode(ServerConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw describe(error, source: "the environment")
        }
    }

    static let allKeys = [
        "data", "database", "host", "port", "tls_certificate", "tls_private_key", "registration", "invite_token",
        "session_lifetime_hours", "max_frame_bytes", "max_members", "retention_days", "messages_per_second",
        "key_package_low_watermark", "epoch_grace_seconds",
        "max_group_info_bytes", "group_creations_per_hour", "max_proposals_per_epoch", "max_proposal_bytes_per_epoch",
        "max_stored_bytes_per_group", "max_stored_bytes_per_user", "max_queued_bytes_per_connection",
        "handshake_timeout_seconds", "idle_timeout_seconds", "ping_interval_seconds", "session_check_seconds",
        "max_devices_per_account", "metrics_token", "registrations_per_hour_per_address", "registrations_per_minute",
        "logins_per_minute_per_address", "key_package_claims_per_hour_per_target", "max_connections_per_address",
        "acks_per_second",
    ]

    private mutating func decodeAccountLimits(_ container: KeyedDecodingContainer<CodingKeys>, defaults: Self) throws {
        func value(_ key: CodingKeys, _ fallback: Int) throws -> Int {
            try container.decodeIfPresent(Int.self, forKey: key) ?? fallback
        }
        maxDevicesPerAccount = try value(.maxDevicesPerAccount, defaults.maxDevicesPerAccount)
        metricsToken = try container.decodeIfPresent(String.self, forKey: .metricsToken)
        registrationsPerHourPerAddress = try value(
            .registrationsPerHourPerAddress,
            defaults.registrationsPerHourPerAddress
        )
        registrationsPerMinute = try value(.registrationsPerMinute, defaults.registrationsPerMinute)
        loginsPerMinutePerAddress = try value(.loginsPerMinutePerAddress, defaults.loginsPerMinutePerAddress)
        keyPackageClaimsPerHourPerTarget = try value(
            .keyPackageClaimsPerHourPerTarget,
            defaults.keyPackageClaimsPerHourPerTarget
        )
        maxConnectionsPerAddress = try value(.maxConnectionsPerAddress, defaults.maxConnectionsPerAddress)
        acksPerSecond = try value(.acksPerSecond, defaults.acksPerSecond)
    }

    public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("parley.sqlite") }
}
