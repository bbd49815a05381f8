import MLS

/// A member's view of the group's log when it sent a message, carried as the message's
/// `authenticated_data` (RFC 9420 §6.3: the sender's signature covers it in PublicMessage and
/// PrivateMessage alike, and PrivateMessage's AEAD binds it too), so the server can neither
/// alter nor strip it without the message failing verification:
///
/// ```
/// struct {
///     uint64 last_seq;           // the sender's last message in the previous epoch
///     opaque hash<V>;            // its running hash there
/// } ParleyEpochEnd;
///
/// struct {
///     uint8 version;             // 1
///     uint64 epoch;              // the epoch the message is sent in
///     uint64 last_seq;           // the last seq the sender accepted in this epoch (the
///                                // epoch's commit seq if none)
///     opaque hash<V>;            // the sender's running hash at last_seq (HistoryLedger)
///     uint32 sender_index;       // this message's position among the sender's messages
///                                // in this epoch that the server did not refuse, from 0
///     optional<ParleyEpochEnd> previous_epoch;  // present if the sender was in epoch - 1
/// } ParleyHistoryClaim;
/// ```
public struct HistoryClaim: Hashable, Sendable, Codable {
    public static let version: UInt8 = 1
    /// Hashes are at most this long (SHA-512, the longest MLS suite hash).
    public static let maxHashBytes = 64
    /// The longest encoded claim; longer authenticated data is refused unread.
    public static let maxEncodedBytes = 1 + 8 + 8 + 1 + maxHashBytes + 4 + 1 + 8 + 1 + maxHashBytes

    public var epoch: UInt64
    public var lastSeq: UInt64
    public var hash: [UInt8]
    public var senderIndex: UInt32
    public var previousEpoch: EpochEnd?

    /// Where the sender's view of the previous epoch ended.
    public struct EpochEnd: Hashable, Sendable, Codable {
        public var lastSeq: UInt64
        public var hash: [UInt8]
        public init(lastSeq: UInt64, hash: [UInt8]) {
            self.lastSeq = lastSeq
            self.hash = hash
        }
    }

    public init(epoch: UInt64, lastSeq: UInt64, hash: [UInt8], senderIndex: UInt32, previousEpoch: EpochEnd? = nil) {
        self.epoch = epoch
        self.lastSeq = lastSeq
        self.hash = hash
        self.senderIndex = senderIndex
        self.previousEpoch = previousEpoch
    }

    /// The `authenticated_data` bytes.
    public func encoded() -> [UInt8] {
        var writer = TLSWriter(reservingCapacity: Self.maxEncodedBytes)
        writer.write(Self.version)
        writer.write(epoch)
        writer.write(lastSeq)
        // Hashes are at most 64 bytes, far below any vector length limit.
        try? writer.writeOpaque(hash)
        writer.write(senderIndex)
        if let previousEpoch {
            writer.write(UInt8(1))
            writer.write(previousEpoch.lastSeq)
            try? writer.writeOpaque(previousEpoch.hash)
        } else {
            writer.write(UInt8(0))
        }
        return writer.bytes
    }

    /// Decodes a message's `authenticated_data` strictly: one claim of version 1, hashes of
    /// 1–64 bytes, nothing trailing. Empty authenticated data is `nil` (a sender that makes
    /// no claim); anything else malformed throws ``HistoryClaimError``.
    public init?(authenticatedData bytes: [UInt8]) throws(HistoryClaimError) {
        guard !bytes.isEmpty else { return nil }
        guard bytes.count <= Self.maxEncodedBytes else { throw .malformed }
        guard bytes[0] == Self.version else { throw .unsupportedVersion(bytes[0]) }
        var reader = TLSReader(bytes)
        do {
            _ = try reader.readUInt8()
            epoch = try reader.read(UInt64.self)
            lastSeq = try reader.read(UInt64.self)
            hash = try Self.readHash(&reader)
            senderIndex = try reader.read(UInt32.self)
            previousEpoch = try reader.readOptional { reader in
                EpochEnd(lastSeq: try reader.read(UInt64.self), hash: try Self.readHash(&reader))
            }
            try reader.finish()
        } catch {
            throw .malformed
        }
    }

    private static func readHash(_ reader: inout TLSReader) throws -> [UInt8] {
        let hash = try reader.readOpaque()
        guard (1...maxHashBytes).contains(hash.count) else { throw HistoryClaimError.malformed }
        return hash
    }
}

/// Why a message's authenticated data is not a history claim.
public enum HistoryClaimError: Error, Hashable, Sendable {
    case malformed
    case unsupportedVersion(UInt8)
}
