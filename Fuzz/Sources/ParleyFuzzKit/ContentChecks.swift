import MLS
import ParleyProtocol

/// What members send each other inside MLS, and what they check it with: the application
/// content envelope, the history claim in `authenticated_data`, the group-name extension,
/// and the `HistoryLedger` that a hostile member's claims are fed to (issue 13's types).
///
/// The first byte picks the decoder; the rest is its input.
enum ContentChecks {
    static func check(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        switch selector % 4 {
        case 0: applicationContent(body)
        case 1: historyClaim(body)
        case 2: groupName(body)
        default: ledger(body)
        }
    }

    /// Decrypted plaintext: a decoded content re-encodes to exactly its bytes.
    static func applicationContent(_ bytes: [UInt8]) {
        guard let content = try? ApplicationContent(decoding: bytes) else { return }
        let encoded: [UInt8]
        do { encoded = try content.encoded() } catch {
            fatalError("invariant broken: a decoded ApplicationContent does not re-encode: \(error)")
        }
        Invariant.require(encoded == bytes, "ApplicationContent re-encodes to different bytes")
    }

    /// A message's `authenticated_data`: a decoded claim re-encodes to exactly its bytes.
    static func historyClaim(_ bytes: [UInt8]) {
        guard let claim = try? HistoryClaim(authenticatedData: bytes) else { return }
        Invariant.require(claim.encoded() == bytes, "HistoryClaim re-encodes to different bytes")
    }

    /// The `parley_group_name` extension's data: a name that decodes is valid and encodes back.
    static func groupName(_ bytes: [UInt8]) {
        let found = Extension(extensionType: ParleyGroupPolicy.groupNameExtension, extensionData: bytes)
        guard let name = try? ParleyGroupPolicy.groupName(in: [found]) else { return }
        Invariant.require(GroupName.isValid(name), "an invalid group name decoded")
        let again = try? ParleyGroupPolicy.groupNameExtension(name)
        Invariant.require(again?.extensionData == bytes, "the group-name extension re-encodes differently")
    }

    /// A ledger fed what a hostile server and member choose: records at any seq, epochs at any
    /// number, and decoded claims from any sender at any seq. Every step either applies or is
    /// refused with its typed error; nothing traps, and the ledger's seqs only move forward.
    static func ledger(_ bytes: [UInt8]) {
        var reader = ByteCursor(bytes)
        guard
            var ledger = try? HistoryLedger(
                suite: .mls128DHKEMX25519AES128GCMSHA256Ed25519,
                epoch: 0,
                epochAuthenticator: [1, 2],
                startSeq: 0
            )
        else { fatalError("invariant broken: a ledger cannot be created") }
        while let op = reader.byte() {
            let before = ledger.lastSeq
            switch op % 4 {
            case 0: try? ledger.record(seq: reader.uint64(), message: reader.bytes(reader.byte() ?? 0))
            case 1:
                try? ledger.beginEpoch(reader.uint64(), epochAuthenticator: reader.bytes(32), startSeq: reader.uint64())
            case 2:
                let claim = (try? HistoryClaim(authenticatedData: reader.bytes(reader.byte() ?? 0))) ?? nil
                _ = ledger.check(claim, from: reader.uint32(), seq: reader.uint64())
            default:
                let claim = ledger.claimForOutgoing()
                if reader.byte().map({ $0 & 1 == 1 }) ?? false { ledger.withdraw(claim) }
            }
            Invariant.require(ledger.lastSeq >= before, "the ledger's last seq moved backwards")
        }
    }
}

/// Reads fixed-size values off the fuzzer's input, with zeros once it runs out.
struct ByteCursor {
    private var bytes: ArraySlice<UInt8>
    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    mutating func byte() -> UInt8? { bytes.popFirst() }
    mutating func bytes(_ count: UInt8) -> [UInt8] { bytes(Int(count)) }
    mutating func bytes(_ count: Int) -> [UInt8] {
        let taken = Array(bytes.prefix(count))
        bytes = bytes.dropFirst(count)
        return taken
    }
    mutating func uint64() -> UInt64 { bytes(8).reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func uint32() -> UInt32 { bytes(4).reduce(0) { $0 << 8 | UInt32($1) } }
}

extension ContentChecks {
    /// Valid contents, claims, names and ledger runs, each behind its selector byte.
    static func seeds() throws -> [[UInt8]] {
        let contents = try [ApplicationContent.text("hello"), .text("é👋"), .destroyGroup].map { try $0.encoded() }
        var ledger = try HistoryLedger(
            suite: .mls128DHKEMX25519AES128GCMSHA256Ed25519,
            epoch: 0,
            epochAuthenticator: [1, 2],
            startSeq: 0
        )
        try ledger.record(seq: 1, message: [9, 9])
        let first = ledger.claimForOutgoing()
        try ledger.beginEpoch(1, epochAuthenticator: Array(repeating: 3, count: 32), startSeq: 2)
        let claims = [first.encoded(), ledger.claimForOutgoing().encoded()]
        let names = try ["team", "board-secrets", "a"].map {
            try ParleyGroupPolicy.groupNameExtension($0).extensionData
        }
        let seq: (UInt64) -> [UInt8] = { value in
            (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        }
        let runs: [[UInt8]] = [
            [0] + seq(1) + [2, 9, 9] + [3, 0] + [2, UInt8(claims[0].count)] + claims[0] + [0, 0, 0, 1] + seq(2),
            [1] + seq(1) + Array(repeating: 3, count: 32) + seq(.max) + [0] + seq(.max) + [0],
        ]
        return contents.map { [0] + $0 } + claims.map { [1] + $0 } + names.map { [2] + $0 } + runs.map { [3] + $0 }
    }
}
