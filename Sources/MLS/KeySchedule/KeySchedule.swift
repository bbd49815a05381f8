/// The secrets derived from one epoch's `epoch_secret` (RFC 9420 §8, Table 4).
///
/// Holding this value means holding the group's keys for the epoch; it never
/// prints its contents.
public struct EpochSecrets: Hashable, Sendable, CustomStringConvertible {
    public var senderDataSecret: [UInt8]
    public var encryptionSecret: [UInt8]
    public var exporterSecret: [UInt8]
    public var externalSecret: [UInt8]
    public var confirmationKey: [UInt8]
    public var membershipKey: [UInt8]
    public var resumptionPSK: [UInt8]
    public var epochAuthenticator: [UInt8]
    /// `init_secret_[n]`, the input to the next epoch's key schedule.
    public var initSecret: [UInt8]

    public var description: String { "EpochSecrets(redacted)" }
}

/// The MLS key schedule (RFC 9420 §8).
public enum KeySchedule {
    /// joiner_secret = ExpandWithLabel(Extract(init_secret_[n-1], commit_secret), "joiner", GroupContext_[n], Nh).
    public static func joinerSecret(
        _ suite: CipherSuiteProvider,
        initSecret: [UInt8],
        commitSecret: [UInt8],
        groupContext: GroupContext
    ) throws -> [UInt8] {
        let extracted = suite.extract(salt: initSecret, ikm: commitSecret)
        return try suite.expandWithLabel(
            extracted,
            label: "joiner",
            context: groupContext.tlsEncoded(),
            length: suite.hashLength
        )
    }

    /// welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret), "welcome").
    public static func welcomeSecret(
        _ suite: CipherSuiteProvider,
        joinerSecret: [UInt8],
        pskSecret: [UInt8]? = nil
    ) throws -> [UInt8] {
        let member = suite.extract(salt: joinerSecret, ikm: pskSecret ?? zeros(suite))
        return try suite.deriveSecret(member, label: "welcome")
    }

    /// The AEAD key and nonce that protect a Welcome's GroupInfo (§12.4.3.1).
    static func welcomeKeyAndNonce(
        _ suite: CipherSuiteProvider,
        welcomeSecret: [UInt8]
    ) throws -> (key: [UInt8], nonce: [UInt8]) {
        (
            try suite.expandWithLabel(welcomeSecret, label: "key", context: [], length: suite.aeadKeyLength),
            try suite.expandWithLabel(welcomeSecret, label: "nonce", context: [], length: suite.aeadNonceLength)
        )
    }

    /// The epoch's secrets from its joiner secret, PSK secret (all-zero when
    /// there are no PSKs) and GroupContext.
    public static func epochSecrets(
        _ suite: CipherSuiteProvider,
        joinerSecret: [UInt8],
        pskSecret: [UInt8]? = nil,
        groupContext: GroupContext
    ) throws -> EpochSecrets {
        let member = suite.extract(salt: joinerSecret, ikm: pskSecret ?? zeros(suite))
        let epochSecret = try suite.expandWithLabel(
            member,
            label: "epoch",
            context: groupContext.tlsEncoded(),
            length: suite.hashLength
        )
        return try epochSecrets(suite, epochSecret: epochSecret)
    }

    /// The secrets derived from an epoch secret; a new group starts from a random one (§11).
    public static func epochSecrets(_ suite: CipherSuiteProvider, epochSecret: [UInt8]) throws -> EpochSecrets {
        func derive(_ label: String) throws -> [UInt8] { try suite.deriveSecret(epochSecret, label: label) }
        return EpochSecrets(
            senderDataSecret: try derive("sender data"),
            encryptionSecret: try derive("encryption"),
            exporterSecret: try derive("exporter"),
            externalSecret: try derive("external"),
            confirmationKey: try derive("confirm"),
            membershipKey: try derive("membership"),
            resumptionPSK: try derive("resumption"),
            epochAuthenticator: try derive("authentication"),
            initSecret: try derive("init")
        )
    }

    /// The all-zero vector of length Nh that stands in for an absent commit or PSK secret.
    public static func zeros(_ suite: CipherSuiteProvider) -> [UInt8] {
        [UInt8](repeating: 0, count: suite.hashLength)
    }
}

extension EpochSecrets {
    /// MLS-Exporter (RFC 9420 §8.5).
    public func exporter(_ suite: CipherSuiteProvider, label: [UInt8], context: [UInt8], length: Int) throws -> [UInt8]
    {
        let derived = try suite.deriveSecret(exporterSecret, label: label)
        return try suite.expandWithLabel(derived, label: "exported", context: suite.hash(context), length: length)
    }

    public func exporter(_ suite: CipherSuiteProvider, label: String, context: [UInt8], length: Int) throws -> [UInt8] {
        try exporter(suite, label: Array(label.utf8), context: context, length: length)
    }

    /// The group's external key pair: KEM.DeriveKeyPair(external_secret) (RFC 9420 §8).
    public func externalKeyPair(_ suite: CipherSuiteProvider) throws -> HPKEKeyPair {
        try suite.deriveHPKEKeyPair(ikm: externalSecret)
    }
}
