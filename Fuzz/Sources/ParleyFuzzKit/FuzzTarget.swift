import Foundation

/// Every fuzz target: a decoder (or a stateful consumer) of untrusted input.
///
/// Each case is one libFuzzer executable, `fuzz-<rawValue>`. A target returns
/// normally for any input, including ones its decoder rejects with a typed
/// error; it traps (and libFuzzer records a crash) only when an invariant
/// breaks: a trap inside the code under test, an untyped error, or a value
/// that does not survive decode -> encode -> decode unchanged.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `MLSMessage` in every wire format (RFC 9420 §6).
    case mlsMessage = "mls-message"
    /// `KeyPackage` (§10), then the server's standalone validation of it.
    case keyPackage = "key-package"
    /// `Welcome` and `GroupSecrets` (§12.4.3.1).
    case welcome
    /// `GroupInfo` (§12.4.3), then the server's public view built from it.
    case groupInfo = "group-info"
    /// The `ratchet_tree` extension (§12.4.3.3), then tree validation.
    case ratchetTree = "ratchet-tree"
    /// `LeafNode` (§7.2), then its signature check.
    case leafNode = "leaf-node"
    /// Every `Proposal` (§12.1), `ProposalOrRef` and `Commit` (§12.4).
    case proposal
    /// The server's decoding of a device's WebSocket frame (`ClientFrame`).
    case clientFrame = "client-frame"
    /// The server's decoding of HTTP request bodies (`API.*`).
    case httpBody = "http-body"
    /// The client's decoding of the server's frames (`ServerFrame`).
    case serverFrame = "server-frame"
    /// Messages fed to `Group.process` and `PublicGroup.process` of a live 3-member group.
    case groupProcess = "group-process"
    /// Group state restored from disk (`Group(serialized:)`, `PublicGroup(serialized:)`).
    case groupState = "group-state"
    /// What members send each other inside MLS: application content, history claims, the
    /// group-name extension, and a `HistoryLedger` fed hostile claims (docs/PROTOCOL.md).
    case parleyContent = "parley-content"
    /// group-process on a post-quantum group (suite 0x004D, X-Wing): KeyPackages (re-signed and
    /// added, so their X-Wing keys are used), Welcomes to dave, PublicMessage and PrivateMessage
    /// proposals, commits and application messages.
    case postQuantumGroup = "pq-group"

    /// libFuzzer's `LLVMFuzzerInitialize`. With `PARLEY_FUZZ_WRITE_SEEDS=DIR`
    /// set, writes this target's seed corpus into DIR and exits instead.
    public func initialize() -> CInt {
        if let directory = ProcessInfo.processInfo.environment["PARLEY_FUZZ_WRITE_SEEDS"] {
            do {
                let count = try SeedWriter(directory: directory).write(seeds())
                print("\(rawValue): wrote \(count) seeds to \(directory)")
                exit(0)
            } catch {
                print("\(rawValue): cannot write seeds: \(error)")
                exit(1)
            }
        }
        prepare()
        return 0
    }

    /// libFuzzer's `LLVMFuzzerTestOneInput`.
    public func run(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        check(bytes)
        return 0
    }

    /// Runs one input through this target's checks; traps on a broken invariant.
    public func check(_ bytes: [UInt8]) {
        switch self {
        case .mlsMessage: DecoderChecks.mlsMessage(bytes)
        case .keyPackage: DecoderChecks.keyPackage(bytes)
        case .welcome: DecoderChecks.welcome(bytes)
        case .groupInfo: DecoderChecks.groupInfo(bytes)
        case .ratchetTree: DecoderChecks.ratchetTree(bytes)
        case .leafNode: DecoderChecks.leafNode(bytes)
        case .proposal: DecoderChecks.proposal(bytes)
        case .clientFrame: JSONChecks.clientFrame(bytes)
        case .httpBody: JSONChecks.httpBody(bytes)
        case .serverFrame: JSONChecks.serverFrame(bytes)
        case .groupProcess: LiveGroup.shared.check(bytes)
        case .groupState: LiveGroup.shared.checkState(bytes)
        case .parleyContent: ContentChecks.check(bytes)
        case .postQuantumGroup: LiveGroup.postQuantum.check(bytes)
        }
    }

    /// Builds what a target needs before the first input (the live group).
    func prepare() {
        switch self {
        case .groupProcess, .groupState: _ = LiveGroup.shared
        case .postQuantumGroup: _ = LiveGroup.postQuantum
        default: break
        }
    }

    /// This target's starting inputs: the official vectors where they have
    /// the structure, the live group's own messages, and hand-made frames.
    func seeds() throws -> [[UInt8]] {
        let vectors = try TestVectors.load()
        switch self {
        case .mlsMessage: return vectors.mlsMessages + LiveGroup.shared.seedMessages
        case .keyPackage: return vectors.keyPackages
        case .welcome: return vectors.welcomes.map { [0] + $0 } + vectors.groupSecrets.map { [1] + $0 }
        case .groupInfo: return vectors.groupInfos + [try LiveGroup.shared.groupInfo()]
        case .ratchetTree: return vectors.ratchetTrees
        case .leafNode: return vectors.leafNodes
        case .proposal: return vectors.proposals.map { [0] + $0 } + vectors.commits.map { [1] + $0 }
        case .clientFrame: return JSONSeeds.clientFrames
        case .httpBody: return JSONSeeds.httpBodies
        case .serverFrame: return JSONSeeds.serverFrames
        case .groupProcess: return LiveGroup.shared.processSeeds
        case .groupState: return try LiveGroup.shared.stateSeeds()
        case .parleyContent: return try ContentChecks.seeds()
        case .postQuantumGroup: return LiveGroup.postQuantum.processSeeds
        }
    }
}

/// Writes seeds as files named by their content's hash, as libFuzzer does.
struct SeedWriter {
    let directory: String

    func write(_ seeds: [[UInt8]]) throws -> Int {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var names = Set<String>()
        for seed in seeds {
            let name = String(format: "seed-%016llx-%d", fnv1a(seed), seed.count)
            guard names.insert(name).inserted else { continue }
            try Data(seed).write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
        }
        return names.count
    }

    private func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
