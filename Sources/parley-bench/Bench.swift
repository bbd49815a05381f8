import ArgumentParser
import Foundation
import MLS

@main
struct ParleyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-bench",
        abstract: "Benchmarks for Parley. Build with -c release.",
        subcommands: [MLSBench.self, LoadBench.self, LargeGroupBench.self, ChatRenderBench.self, CrashBench.self]
    )
}

/// `parley-bench mls`: MLS operations on groups of n members, by cipher suite
/// (suite 1 unless `--suites` names others, e.g. `1,0x4D` for the post-quantum one).
struct MLSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mls",
        abstract: "Time group operations at several sizes and suites (group built by batched adds)."
    )

    /// The suite the rows being printed belong to; every row carries it.
    @TaskLocal static var suiteLabel = "1"

    @Option(help: "Comma-separated group sizes.") var sizes = "10,100,1000,10000"
    @Option(help: "Runs per operation (median and p90 are reported).") var runs = 9
    @Option(help: "Members added per commit while building the group.") var batch = 100
    @Option(help: "Trees to time the commit rows in: fresh (as batched adds leave it), populated, or both.")
    var trees = "fresh,populated"
    @Option(help: "Comma-separated cipher suites, decimal or 0x hex: 1 (X25519, AES-128), 0x4D (X-Wing, post-quantum).")
    var suites = "1"
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        for suite in try parsedSuites() {
            let label = String(format: "0x%04X", suite.suite.rawValue)
            try Self.$suiteLabel.withValue(label) {
                if !json { print("# cipher suite \(label)") }
                try measureKeyPackage(suite: suite)
                for n in sizes.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                    try measure(n: n, suite: suite)
                }
            }
        }
    }

    func parsedSuites() throws -> [CipherSuiteProvider] {
        try suites.split(separator: ",").map { text in
            let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
            let value = trimmed.hasPrefix("0x") ? UInt16(trimmed.dropFirst(2), radix: 16) : UInt16(trimmed)
            guard let value else { throw ValidationError("not a cipher suite number: \(trimmed)") }
            return try CipherSuite(rawValue: value).provider()
        }
    }

    /// Creating one KeyPackage (two key pairs, two signatures) and its size.
    func measureKeyPackage(suite: CipherSuiteProvider) throws {
        var bytes = 0
        report(
            "create_key_package",
            n: 1,
            try (0..<max(runs, 20)).map { index in
                var bundle: KeyPackageBundle?
                let time = try milliseconds { bundle = try member(suite, index) }
                bytes = try bundle!.keyPackage.tlsEncoded().count
                return time
            }
        )
        note("key_package_bytes", n: 1, [("bytes", "\(bytes)")])
    }

    /// One result line. `tree` says which tree a commit row ran in (see `measureCommits`).
    func report(_ op: String, n: Int, tree: String? = nil, _ samples: [Double]) {
        let sorted = samples.sorted()
        let median = sorted[sorted.count / 2]
        let p90 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]
        if json {
            let treeField = tree.map { #", "tree": "\#($0)""# } ?? ""
            print(
                #"{"suite": "\#(Self.suiteLabel)", "op": "\#(op)", "n": \#(n)\#(treeField), "median_ms": \#(String(format: "%.3f", median)), "p90_ms": \#(String(format: "%.3f", p90)), "runs": \#(samples.count)}"#
            )
        } else {
            let label = tree.map { "\(op) (\($0))" } ?? op
            print(
                String(
                    format: "%-32@ n=%-6d median %10.3f ms   p90 %10.3f ms   (%d runs)",
                    label as NSString,
                    n,
                    median,
                    p90,
                    samples.count
                )
            )
        }
        fflush(nil)
    }

    func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
    }

    func member(_ suite: CipherSuiteProvider, _ index: Int) throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array("member\(index)".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
    }

    /// The number of HPKE ciphertexts in a Commit's UpdatePath: the work a
    /// path costs, n-ish in a tree fresh from batched adds, log n once populated.
    func pathCiphertexts(_ message: MLSMessage) -> Int {
        guard case .publicMessage(let framed) = message, case .commit(let commit) = framed.content.body else {
            return 0
        }
        return commit.path?.nodes.reduce(0) { $0 + $1.encryptedPathSecret.count } ?? 0
    }

    func note(_ op: String, n: Int, _ fields: [(String, String)]) {
        if json {
            let body = fields.map { #""\#($0.0)": \#($0.1)"# }.joined(separator: ", ")
            print(#"{"suite": "\#(Self.suiteLabel)", "op": "\#(op)", "n": \#(n), \#(body)}"#)
        } else {
            print(
                String(format: "%-32@ n=%-6d ", op as NSString, n)
                    + fields.map { "\($0.0) \($0.1.replacingOccurrences(of: "\"", with: ""))" }.joined(separator: "   ")
            )
        }
        fflush(nil)
    }

    func measure(n: Int, suite: CipherSuiteProvider) throws {
        guard var (creator, receiver) = try buildGroup(n: n, suite: suite) else { return }
        let newcomers = try (0..<runs).map { try member(suite, n + $0) }

        // The commit rows twice: in the tree batched adds leave, whose parent
        // nodes are blank so a path encrypts to every member (O(n), as RFC 9420
        // §7.9 says), and in a populated tree, as it is once members have
        // committed (Parley clients self-update after joining and weekly).
        let treeKinds = Set(trees.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if treeKinds.contains("fresh") {
            try measureCommits(n: n, tree: "fresh", creator: creator, receiver: receiver, newcomers: newcomers)
        }
        if treeKinds.contains("populated") {
            let populate = try milliseconds {
                try populateCopath(of: &creator, receiver: &receiver, n: n, suite: suite)
            }
            note("populate_tree", n: n, [("ms", String(format: "%.1f", populate))])
            try measureCommits(n: n, tree: "populated", creator: creator, receiver: receiver, newcomers: newcomers)
        }
        try measureJoin(n: n, creator: creator, newcomer: newcomers[0])
        try measureMessages(n: n, creator: &creator, receiver: &receiver)
        note("state_bytes", n: n, [("bytes", "\(try creator.serialized().count)")])
    }

    /// build_group: the creator adds n-1 members in batches; member 1 follows along.
    /// Returns the creator and the follower (nil for a group of one).
    func buildGroup(n: Int, suite: CipherSuiteProvider) throws -> (Group, Group)? {
        let bundles = try (1..<n).map { try member(suite, $0) }
        var creator = try Group.create(
            suite,
            groupID: Array("bench-\(n)".utf8),
            credential: .basic(identity: Array("member0".utf8)),
            signatureKeys: suite.generateSignatureKeyPair()
        )
        var follower: Group?
        let build = try milliseconds {
            for start in stride(from: 0, to: bundles.count, by: batch) {
                let slice = Array(bundles[start..<min(start + batch, bundles.count)])
                let output = try creator.commit(
                    CommitOptions(add: slice.map(\.keyPackage), ratchetTreeInWelcome: start == 0)
                )
                _ = try creator.process(output.message)
                if start == 0, case .welcome(let welcome)? = output.welcome {
                    follower = try Group.join(welcome: welcome, keyPackage: slice[0])
                } else {
                    _ = try follower?.process(output.message)
                }
            }
        }
        report("build_group", n: n, [build])
        return follower.map { (creator, $0) }
    }

    /// join_welcome: a Welcome without the tree, the tree supplied separately.
    func measureJoin(n: Int, creator: Group, newcomer: KeyPackageBundle) throws {
        var withNewcomer = creator
        let invitation = try withNewcomer.commit(
            CommitOptions(add: [newcomer.keyPackage], ratchetTreeInWelcome: false)
        )
        _ = try withNewcomer.process(invitation.message)
        guard case .welcome(let welcome)? = invitation.welcome else { return }
        let tree = withNewcomer.tree
        try noteSizes(n: n, creator: creator, invitation: invitation)
        report(
            "join_welcome",
            n: n,
            try (0..<runs).map { _ in
                try milliseconds { _ = try Group.join(welcome: welcome, keyPackage: newcomer, ratchetTree: tree) }
            }
        )
    }

    /// encrypt_1k and decrypt_1k: a 1 KiB application message from the creator to a member.
    func measureMessages(n: Int, creator: inout Group, receiver: inout Group) throws {
        let kib = [UInt8](repeating: 0x61, count: 1024)
        var ciphertexts: [MLSMessage] = []
        report(
            "encrypt_1k",
            n: n,
            try (0..<max(runs, 50)).map { _ in
                var message: MLSMessage?
                let time = try milliseconds { message = try creator.encrypt(kib) }
                ciphertexts.append(message!)
                return time
            }
        )
        report(
            "decrypt_1k",
            n: n,
            try ciphertexts.map { ciphertext in
                try milliseconds { _ = try receiver.process(ciphertext) }
            }
        )
    }

    /// Wire sizes: the add-one Commit and its Welcome (tree sent separately),
    /// a self-update Commit, and a 1 KiB application message.
    func noteSizes(n: Int, creator: Group, invitation: CommitOutput) throws {
        var updater = creator
        let update = try updater.selfUpdate()
        let message = try updater.encrypt([UInt8](repeating: 0x61, count: 1024))
        let sizes = [
            ("commit_add_one", try invitation.message.tlsEncoded().count),
            ("welcome", try invitation.welcome?.tlsEncoded().count ?? 0),
            ("commit_self_update", try update.message.tlsEncoded().count),
            ("message_1k", try message.tlsEncoded().count),
        ]
        note("wire_bytes", n: n, sizes.map { ($0.0, "\($0.1)") })
    }

    /// Add one (tree in the Welcome, the default), self-update, remove one,
    /// and a self-update processed by another member, each from the same state.
    func measureCommits(n: Int, tree: String, creator: Group, receiver: Group, newcomers: [KeyPackageBundle]) throws {
        report(
            "commit_add_one",
            n: n,
            tree: tree,
            try newcomers.map { bundle in
                var group = creator
                return try milliseconds { _ = try group.addMembers([bundle.keyPackage]) }
            }
        )

        try measureCommitsWithEcho(n: n, tree: tree, creator: creator, newcomers: newcomers)

        var ciphertextCount = 0
        report(
            "commit_self_update",
            n: n,
            tree: tree,
            try (0..<runs).map { _ in
                var group = creator
                var output: CommitOutput?
                let time = try milliseconds { output = try group.selfUpdate() }
                ciphertextCount = pathCiphertexts(output!.message)
                return time
            }
        )
        note("path_ciphertexts", n: n, [("tree", #""\#(tree)""#), ("count", "\(ciphertextCount)")])

        report(
            "commit_remove_one",
            n: n,
            tree: tree,
            try (0..<runs).map { _ in
                var group = creator
                return try milliseconds { _ = try group.removeMembers([receiver.ownLeaf]) }
            }
        )

        let updates = try (0..<runs).map { _ in
            var group = creator
            return try group.selfUpdate().message
        }
        report(
            "process_commit",
            n: n,
            tree: tree,
            try updates.map { message in
                var group = receiver
                return try milliseconds { _ = try group.process(message) }
            }
        )
    }

    /// Add one and self-update as mls-rs's anchor times them (issue 15): the commit, then
    /// processing its echo, which merges it (RFC 9420 §14: the committer adopts the new
    /// epoch only then).
    func measureCommitsWithEcho(n: Int, tree: String, creator: Group, newcomers: [KeyPackageBundle]) throws {
        report(
            "commit_add_one_with_echo",
            n: n,
            tree: tree,
            try newcomers.map { bundle in
                var group = creator
                return try milliseconds { _ = try group.process(try group.addMembers([bundle.keyPackage]).message) }
            }
        )
        report(
            "commit_self_update_with_echo",
            n: n,
            tree: tree,
            try (0..<runs).map { _ in
                var group = creator
                return try milliseconds { _ = try group.process(try group.selfUpdate().message) }
            }
        )
    }

    /// Gives every node on the creator's copath a key, with real commits:
    /// for each subtree [2^j, 2^(j+1)) beside the creator's path, member 2^j is
    /// removed and a fresh member joins in its place, then these newcomers
    /// self-update, largest subtree first, so each path lands in a subtree
    /// whose sibling already has a key. Creator and receiver follow along.
    func populateCopath(of creator: inout Group, receiver: inout Group, n: Int, suite: CipherSuiteProvider) throws {
        let holes = sequence(first: 2, next: { $0 * 2 }).prefix { $0 < n }.map { LeafIndex(UInt32($0)) }
        guard !holes.isEmpty else { return }
        let removal = try creator.removeMembers(holes)
        _ = try creator.process(removal.message)
        _ = try receiver.process(removal.message)

        let fillers = try holes.map { try member(suite, 1_000_000 + Int($0.rawValue)) }
        let invitation = try creator.commit(CommitOptions(add: fillers.map(\.keyPackage), ratchetTreeInWelcome: false))
        _ = try creator.process(invitation.message)
        _ = try receiver.process(invitation.message)
        guard case .welcome(let welcome)? = invitation.welcome else {
            throw ValidationError("no Welcome for the new members")
        }
        var joined = try fillers.map { try Group.join(welcome: welcome, keyPackage: $0, ratchetTree: creator.tree) }
        guard joined.map(\.ownLeaf) == holes else {
            throw ValidationError("the new members did not fill the removed leaves")
        }

        for committer in joined.indices.reversed() {
            let update = try joined[committer].selfUpdate()
            for index in joined.indices { _ = try joined[index].process(update.message) }
            _ = try creator.process(update.message)
            _ = try receiver.process(update.message)
        }
    }
}
