import ArgumentParser
import Foundation
import MLS

@main
struct ParleyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-bench",
        abstract: "Benchmarks for Parley. Build with -c release.",
        subcommands: [MLSBench.self, LoadBench.self])
}

/// `parley-bench mls`: MLS operations on groups of n members, cipher suite 1.
struct MLSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mls",
        abstract: "Time group operations at several sizes (suite 1, group built by batched adds).")

    @Option(help: "Comma-separated group sizes.") var sizes = "10,100,1000,10000"
    @Option(help: "Runs per operation (median and p90 are reported).") var runs = 9
    @Option(help: "Members added per commit while building the group.") var batch = 100
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        for n in sizes.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
            try measure(n: n, suite: suite)
        }
    }

    func report(_ op: String, n: Int, _ samples: [Double]) {
        let sorted = samples.sorted()
        let median = sorted[sorted.count / 2]
        let p90 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]
        if json {
            print(#"{"op": "\#(op)", "n": \#(n), "median_ms": \#(String(format: "%.3f", median)), "p90_ms": \#(String(format: "%.3f", p90)), "runs": \#(samples.count)}"#)
        } else {
            print(String(format: "%-20@ n=%-6d median %10.3f ms   p90 %10.3f ms   (%d runs)", op as NSString, n, median, p90, samples.count))
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
            suite, credential: .basic(identity: Array("member\(index)".utf8)), signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max))
    }

    func measure(n: Int, suite: CipherSuiteProvider) throws {
        // build_group: the creator adds n-1 members in batches; member 1 follows along.
        let bundles = try (1..<n).map { try member(suite, $0) }
        var creator = try Group.create(suite, groupID: Array("bench-\(n)".utf8), credential: .basic(identity: Array("member0".utf8)), signatureKeys: suite.generateSignatureKeyPair())
        var follower: Group?
        let build = try milliseconds {
            for start in stride(from: 0, to: bundles.count, by: batch) {
                let slice = Array(bundles[start..<min(start + batch, bundles.count)])
                let output = try creator.commit(CommitOptions(add: slice.map(\.keyPackage), ratchetTreeInWelcome: start == 0))
                _ = try creator.process(output.message)
                if start == 0, case .welcome(let welcome)? = output.welcome {
                    follower = try Group.join(welcome: welcome, keyPackage: slice[0])
                } else {
                    _ = try follower?.process(output.message)
                }
            }
        }
        report("build_group", n: n, [build])
        guard var receiver = follower else { return }

        let newcomers = try (0..<runs).map { try member(suite, n + $0) }
        report("commit_add_one", n: n, try newcomers.map { bundle in
            var group = creator
            return try milliseconds { _ = try group.addMembers([bundle.keyPackage]) }
        })

        report("commit_self_update", n: n, try (0..<runs).map { _ in
            var group = creator
            return try milliseconds { _ = try group.selfUpdate() }
        })

        report("commit_remove_one", n: n, try (0..<runs).map { _ in
            var group = creator
            return try milliseconds { _ = try group.removeMembers([receiver.ownLeaf]) }
        })

        let updates = try (0..<runs).map { _ in
            var group = creator
            return try group.selfUpdate().message
        }
        report("process_commit", n: n, try updates.map { message in
            var group = receiver
            return try milliseconds { _ = try group.process(message) }
        })

        // join_welcome: a Welcome without the tree, the tree supplied separately.
        var withNewcomer = creator
        let invitation = try withNewcomer.commit(CommitOptions(add: [newcomers[0].keyPackage], ratchetTreeInWelcome: false))
        _ = try withNewcomer.process(invitation.message)
        guard case .welcome(let welcome)? = invitation.welcome else { return }
        let tree = withNewcomer.tree
        report("join_welcome", n: n, try (0..<runs).map { _ in
            try milliseconds { _ = try Group.join(welcome: welcome, keyPackage: newcomers[0], ratchetTree: tree) }
        })

        let kib = [UInt8](repeating: 0x61, count: 1024)
        var ciphertexts: [MLSMessage] = []
        report("encrypt_1k", n: n, try (0..<max(runs, 50)).map { _ in
            var message: MLSMessage?
            let time = try milliseconds { message = try creator.encrypt(kib) }
            ciphertexts.append(message!)
            return time
        })
        report("decrypt_1k", n: n, try ciphertexts.map { ciphertext in
            try milliseconds { _ = try receiver.process(ciphertext) }
        })

        let size = try creator.serialized().count
        if json {
            print(#"{"op": "state_bytes", "n": \#(n), "bytes": \#(size)}"#)
        } else {
            print(String(format: "%-20@ n=%-6d %d bytes", "state_size" as NSString, n, size))
        }
    }
}
