/// `PSKType` (RFC 9420 §8.4).
public enum PSKType: UInt8, TLSEnum, Sendable {
    case external = 1
    case resumption = 2
}

/// `ResumptionPSKUsage` (RFC 9420 §8.4).
public enum ResumptionPSKUsage: UInt8, TLSEnum, Sendable {
    case application = 1
    case reinit = 2
    case branch = 3
}

/// `PreSharedKeyID` (RFC 9420 §8.4): which PSK, plus a fresh nonce so that a
/// reused PSK still feeds the key schedule a new value.
public struct PreSharedKeyID: Hashable, Sendable, TLSCodable {
    public enum Kind: Hashable, Sendable {
        case external(pskID: [UInt8])
        case resumption(usage: ResumptionPSKUsage, groupID: [UInt8], epoch: UInt64)
    }

    public var kind: Kind
    public var pskNonce: [UInt8]

    public init(kind: Kind, pskNonce: [UInt8]) {
        self.kind = kind
        self.pskNonce = pskNonce
    }

    public func encode(to writer: inout TLSWriter) throws {
        switch kind {
        case .external(let pskID):
            try writer.write(PSKType.external)
            try writer.writeOpaque(pskID)
        case .resumption(let usage, let groupID, let epoch):
            try writer.write(PSKType.resumption)
            try writer.write(usage)
            try writer.writeOpaque(groupID)
            writer.write(epoch)
        }
        try writer.writeOpaque(pskNonce)
    }

    public init(from reader: inout TLSReader) throws {
        switch try reader.read(PSKType.self) {
        case .external:
            kind = .external(pskID: try reader.readOpaque())
        case .resumption:
            kind = .resumption(usage: try reader.read(), groupID: try reader.readOpaque(), epoch: try reader.read())
        }
        pskNonce = try reader.readOpaque()
    }
}

extension KeySchedule {
    /// psk_secret over an ordered list of PSKs (RFC 9420 §8.4): each PSK is
    /// extracted, expanded with its `PSKLabel` and chained into the next Extract.
    /// An empty list gives the all-zero vector.
    public static func pskSecret(
        _ suite: CipherSuiteProvider,
        psks: [(id: PreSharedKeyID, psk: [UInt8])]
    ) throws -> [UInt8] {
        guard let count = UInt16(exactly: psks.count) else { throw MLSError.invalidLength(psks.count) }
        var secret = zeros(suite)
        for (index, entry) in psks.enumerated() {
            var label = TLSWriter()
            try label.write(entry.id)
            label.write(UInt16(index))
            label.write(count)
            let extracted = suite.extract(salt: zeros(suite), ikm: entry.psk)
            let input = try suite.expandWithLabel(
                extracted,
                label: "derived psk",
                context: label.bytes,
                length: suite.hashLength
            )
            secret = suite.extract(salt: input, ikm: secret)
        }
        return secret
    }
}

extension PreSharedKeyID {
    /// An id for `kind` with a fresh random nonce of Nh bytes, as §8.4 requires
    /// of every PreSharedKey proposal and Welcome.
    public static func fresh(_ kind: Kind, suite: CipherSuiteProvider) -> PreSharedKeyID {
        PreSharedKeyID(kind: kind, pskNonce: suite.randomBytes(suite.hashLength))
    }
}
