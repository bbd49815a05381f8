import Foundation

/// The allowed range of every numeric setting. The server trusts its configuration, but a
/// negative, zero or huge value must be refused at load with a sentence, never reach
/// arithmetic that traps (`max_frame_bytes * 4`, `seconds * 1000`, `messages_per_second * 60`)
/// or a limit that silently locks everyone out.
extension ServerConfiguration {
    struct Bound: Sendable {
        let key: String
        let value: KeyPath<ServerConfiguration, Int> & Sendable
        let range: ClosedRange<Int>
    }

    /// Each upper bound is far above any sensible setting and small enough that every product
    /// the server forms from it fits an Int64 (and NIO's UInt32 WebSocket frame size).
    static let bounds: [Bound] = [
        Bound(key: "port", value: \.port, range: 0...65_535),
        Bound(key: "session_lifetime_hours", value: \.sessionLifetimeHours, range: 1...87_600),
        Bound(key: "max_frame_bytes", value: \.maxFrameBytes, range: 1024...(64 << 20)),
        Bound(key: "max_members", value: \.maxMembers, range: 2...1_000_000),
        Bound(key: "retention_days", value: \.retentionDays, range: 1...3650),
        Bound(key: "messages_per_second", value: \.messagesPerSecond, range: 1...100_000),
        Bound(key: "key_package_low_watermark", value: \.keyPackageLowWatermark, range: 1...100),
        Bound(key: "epoch_grace_seconds", value: \.epochGraceSeconds, range: 0...3600),
        Bound(key: "max_group_info_bytes", value: \.maxGroupInfoBytes, range: 1024...(16 << 20)),
        Bound(key: "group_creations_per_hour", value: \.groupCreationsPerHour, range: 1...1_000_000),
        Bound(key: "max_proposals_per_epoch", value: \.maxProposalsPerEpoch, range: 1...100_000),
        Bound(key: "max_proposal_bytes_per_epoch", value: \.maxProposalBytesPerEpoch, range: 1024...(1 << 30)),
        Bound(key: "max_stored_bytes_per_group", value: \.maxStoredBytesPerGroup, range: 1024...(1 << 44)),
        Bound(key: "max_stored_bytes_per_user", value: \.maxStoredBytesPerUser, range: 1024...(1 << 44)),
        Bound(
            key: "max_queued_bytes_per_connection",
            value: \.maxQueuedBytesPerConnection,
            range: (64 << 10)...(1 << 34)
        ),
        Bound(key: "handshake_timeout_seconds", value: \.handshakeTimeoutSeconds, range: 1...3600),
        Bound(key: "idle_timeout_seconds", value: \.idleTimeoutSeconds, range: 1...86_400),
        Bound(key: "ping_interval_seconds", value: \.pingIntervalSeconds, range: 1...3600),
        Bound(key: "session_check_seconds", value: \.sessionCheckSeconds, range: 1...3600),
        Bound(key: "max_devices_per_account", value: \.maxDevicesPerAccount, range: 1...1000),
        Bound(
            key: "registrations_per_hour_per_address",
            value: \.registrationsPerHourPerAddress,
            range: 1...1_000_000
        ),
        Bound(key: "registrations_per_minute", value: \.registrationsPerMinute, range: 1...1_000_000),
        Bound(key: "logins_per_minute_per_address", value: \.loginsPerMinutePerAddress, range: 1...1_000_000),
        Bound(
            key: "key_package_claims_per_hour_per_target",
            value: \.keyPackageClaimsPerHourPerTarget,
            range: 1...1_000_000
        ),
        Bound(key: "max_connections_per_address", value: \.maxConnectionsPerAddress, range: 1...1_000_000),
        Bound(key: "acks_per_second", value: \.acksPerSecond, range: 1...100_000),
    ]

    /// Keys whose values are text: an all-digit token or host stays a string.
    static let stringKeys: Set<String> = [
        "data", "database", "host", "tls_certificate", "tls_private_key", "registration", "invite_token",
        "metrics_token",
    ]

    /// Refuses a configuration the server cannot run safely, with one sentence naming the key
    /// and what it allows. Called by ``ParleyServer/init(configuration:logger:)`` and `parley serve`.
    public func validate() throws {
        for bound in Self.bounds {
            let value = self[keyPath: bound.value]
            guard bound.range.contains(value) else {
                throw ServerError.configuration(
                    "\(bound.key) is \(value); it must be between "
                        + "\(bound.range.lowerBound) and \(bound.range.upperBound)."
                )
            }
        }
        guard (tlsCertificate == nil) == (tlsPrivateKey == nil) else {
            throw ServerError.configuration("tls_certificate and tls_private_key must be given together.")
        }
        if registration == .invite, (inviteToken ?? "").isEmpty {
            throw ServerError.configuration("registration is invite, so invite_token must be set.")
        }
        if let database {
            // The sentence never repeats the URL: it may hold a password.
            do {
                _ = try DatabaseURL(database)
            } catch let error as PostgresStorageError {
                throw ServerError.configuration("database: \(error)")
            }
        }
    }

    /// The environment's value for `key` as the JSON value the decoder expects: numbers for
    /// numeric keys (exactly, or a sentence), text as given for text keys.
    static func environmentValue(_ text: String, key: String) throws -> Any {
        if stringKeys.contains(key) { return text }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
            let range = bounds.first { $0.key == key }
                .map { " between \($0.range.lowerBound) and \($0.range.upperBound)" }
            throw ServerError.configuration(
                "PARLEY_\(key.uppercased()) is \"\(text)\"; it must be a whole number\(range ?? "")."
            )
        }
        return number
    }

    /// A decoding failure as a sentence naming the key, not a Swift type dump.
    static func describe(_ error: DecodingError, source: String) -> ServerError {
        let (path, detail): ([any CodingKey], String) =
            switch error {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                (context.codingPath, context.debugDescription)
            case .keyNotFound(let key, let context): (context.codingPath + [key], "missing")
            @unknown default: ([], "\(error)")
            }
        let key = path.map(\.stringValue).joined(separator: ".")
        guard !key.isEmpty else { return .configuration("\(source) is not a valid JSON object (\(detail)).") }
        let range = bounds.first { $0.key == key }
            .map { " between \($0.range.lowerBound) and \($0.range.upperBound)" }
        let kind =
            key == "registration"
            ? "one of open, closed or invite"
            : stringKeys.contains(key) ? "text" : "a whole number" + (range ?? "")
        return .configuration("\(key) in \(source) is not valid (\(detail)); it must be \(kind).")
    }
}
