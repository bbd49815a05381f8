/// The two hash ratchets every leaf of the secret tree starts (RFC 9420 §9).
public enum RatchetType: Hashable, Sendable {
    case handshake
    case application
}

/// One step of a sender ratchet: the AEAD key and nonce for `generation`
/// (RFC 9420 §9.1). Single use: encrypt or decrypt once, then drop it.
public struct RatchetKey: Hashable, Sendable, CustomStringConvertible {
    public var generation: UInt32
    public var key: [UInt8]
    public var nonce: [UInt8]
    public var description: String { "RatchetKey(generation: \(generation), redacted)" }
}

/// Bounds on how out of order messages may arrive within an epoch
/// (RFC 9420 §9.2, §15.2). Each limit trades tolerance of reordering against
/// how many unconsumed keys sit in memory.
public struct SecretTreeConfiguration: Hashable, Sendable {
    /// How many generations past the next expected one a message may be.
    /// Further ahead is rejected, so an attacker cannot make us derive
    /// millions of keys.
    public var maximumForwardDistance: UInt32
    /// How many skipped keys one ratchet keeps for late messages; beyond
    /// this the oldest are deleted.
    public var maximumRetainedKeys: Int

    public init(maximumForwardDistance: UInt32 = 1000, maximumRetainedKeys: Int = 128) {
        self.maximumForwardDistance = maximumForwardDistance
        self.maximumRetainedKeys = maximumRetainedKeys
    }

    public static let `default` = SecretTreeConfiguration()
}

/// A sender ratchet (RFC 9420 §9.1): each step derives a key, a nonce and
/// the next secret from the current one, then forgets the current one.
struct HashRatchet: Hashable, Sendable {
    private(set) var secret: [UInt8]
    private(set) var nextGeneration: UInt32 = 0
    /// Keys derived while skipping ahead, kept for messages that arrive late.
    private(set) var retained: [UInt32: RatchetKey] = [:]

    init(secret: [UInt8]) { self.secret = secret }

    /// Rebuilds a ratchet from stored state.
    init(secret: [UInt8], nextGeneration: UInt32, retained: [UInt32: RatchetKey]) {
        self.secret = secret
        self.nextGeneration = nextGeneration
        self.retained = retained
    }

    /// The key for the next generation, for sending.
    mutating func next(_ suite: CipherSuiteProvider) throws -> RatchetKey {
        try advance(suite)
    }

    /// The key for `generation`, for receiving. A generation is handed out at
    /// most once; asking again is a replay.
    mutating func key(
        for generation: UInt32,
        _ suite: CipherSuiteProvider,
        _ configuration: SecretTreeConfiguration
    ) throws -> RatchetKey {
        if generation < nextGeneration {
            guard let key = retained.removeValue(forKey: generation) else {
                throw MLSError.generationAlreadyUsed(generation)
            }
            return key
        }
        guard generation - nextGeneration <= configuration.maximumForwardDistance else {
            throw MLSError.generationTooFarAhead(requested: generation, current: nextGeneration)
        }
        while nextGeneration < generation {
            let skipped = try advance(suite)
            retained[skipped.generation] = skipped
            if retained.count > configuration.maximumRetainedKeys, let oldest = retained.keys.min() {
                retained.removeValue(forKey: oldest)
            }
        }
        return try advance(suite)
    }

    private mutating func advance(_ suite: CipherSuiteProvider) throws -> RatchetKey {
        guard nextGeneration < .max else { throw MLSError.ratchetExhausted }
        let generation = nextGeneration
        let key = RatchetKey(
            generation: generation,
            key: try suite.deriveTreeSecret(secret, label: "key", generation: generation, length: suite.aeadKeyLength),
            nonce: try suite.deriveTreeSecret(
                secret,
                label: "nonce",
                generation: generation,
                length: suite.aeadNonceLength
            )
        )
        secret = try suite.deriveTreeSecret(secret, label: "secret", generation: generation, length: suite.hashLength)
        nextGeneration += 1
        return key
    }
}
