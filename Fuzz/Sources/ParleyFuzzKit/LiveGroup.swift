import Foundation
import MLS
import ParleyProtocol

/// A live Parley group for the stateful targets: alice (admin), bob and
/// carol at epoch 1 under Parley's policy, the server's public view of it,
/// and a KeyPackage of dave's that Welcomes can be addressed to. One in each
/// of Parley's two suites (``shared``, ``postQuantum``).
///
/// Keys are random, so the group is built once and kept in the file named
/// by `$PARLEY_FUZZ_FIXTURE` (scripts/fuzz sets it): every later run, and
/// every crash reproduction, starts from exactly the same group.
final class LiveGroup: Sendable {
    /// The group-process and group-state targets' group, in suite 1 (Parley's classical groups).
    static let shared = make(ParleySuites.standard)
    /// The pq-group target's group, in suite 0x004D (X-Wing HPKE: `parley create --post-quantum`
    /// and `parley upgrade`): every HPKE key, path secret and Welcome is X-Wing's.
    static let postQuantum = make(ParleySuites.postQuantum)

    private static func make(_ suite: CipherSuite) -> LiveGroup {
        do {
            return try LiveGroup.loadOrCreate(suite)
        } catch {
            fatalError("cannot set up the live group in suite \(suite.rawValue): \(error)")
        }
    }

    let policy = ParleyGroupPolicy.groupPolicy()
    let members: [Group]
    /// The members' signature private keys, kept with the fixture.
    let signers: [SignaturePrivateKey]
    let server: PublicGroup
    let dave: KeyPackageBundle
    /// Inputs of the group-process target: each one or more MLSMessages.
    let processSeeds: [[UInt8]]

    init(
        members: [Group],
        signers: [SignaturePrivateKey],
        server: PublicGroup,
        dave: KeyPackageBundle,
        processSeeds: [[UInt8]]
    ) {
        self.members = members
        self.signers = signers
        self.server = server
        self.dave = dave
        self.processSeeds = processSeeds
    }

    /// The messages among the seeds, for the mls-message target.
    var seedMessages: [[UInt8]] {
        processSeeds.flatMap { seed in
            Operation.decode(seed).compactMap { operation in
                if case .deliver(let message) = operation { try? message.tlsEncoded() } else { nil }
            }
        }
    }

    func groupInfo() throws -> [UInt8] {
        try members[0].groupInfo().tlsEncoded()
    }

    // MARK: group-process

    /// Runs the input's operations, in order, against fresh copies of the group.
    func check(_ bytes: [UInt8]) {
        var run = Run(members: members, server: server)
        for operation in Operation.decode(bytes) {
            switch operation {
            case .deliver(.welcome(let welcome)):
                _ = Invariant.attempt("joining by a Welcome") {
                    try Group.join(welcome: welcome, keyPackage: dave, policy: policy)
                }
            case .deliver(.groupInfo(let groupInfo)):
                DecoderChecks.publicView(groupInfo)
            case .deliver(.keyPackage(let keyPackage)):
                DecoderChecks.validate(keyPackage)
                admit(keyPackage, in: &run)
            case .deliver(let message):
                run.deliver(message)
            case .propose(let member, let proposal):
                // A real member's real signature and membership tag: what a hostile member can send.
                guard let message = Invariant.attempt("proposing", { try run.members[member].propose(proposal) }) else {
                    continue
                }
                run.deliver(message)
            case .commitPending(let member):
                // What a client's auto-commit of pending proposals produces.
                guard
                    let output = Invariant.attempt("committing pending proposals", { try run.members[member].commit() })
                else { continue }
                run.deliver(output.message)
            case .signed(let member, let content):
                guard
                    let message = Invariant.attempt(
                        "signing fuzzed content",
                        { try Forge.publicMessage(content, from: run.members[member]) }
                    )
                else { continue }
                run.deliver(message)
            case .encrypted(let member, let claim, let content):
                let sent = Invariant.attempt("encrypting fuzzed content") {
                    try Forge.privateMessage(content, from: &run.members[member], claiming: claim)
                }
                guard let sent else { continue }
                run.deliver(sent)
            }
        }
    }

    /// The KeyPackage's fields as fuzzed, but signed by dave (leaf and package), so its keys get
    /// past the signatures and into the next checks: the server's validation, then alice's Add,
    /// which seals the Welcome to its init key (HPKE: X-Wing in the post-quantum group), and
    /// every party processing that commit.
    func admit(_ keyPackage: KeyPackage, in run: inout Run) {
        let suite = members[0].suite
        var resigned = keyPackage
        resigned.leafNode.signatureKey = dave.keyPackage.leafNode.signatureKey
        let signed = Invariant.attempt("re-signing a KeyPackage as dave") { () -> KeyPackage in
            try resigned.leafNode.sign(suite, with: dave.signaturePrivateKey, groupID: [], leafIndex: LeafIndex(0))
            resigned.signature = try suite.signWithLabel(
                dave.signaturePrivateKey,
                label: "KeyPackageTBS",
                content: resigned.toBeSigned()
            )
            try resigned.validate()
            return resigned
        }
        guard let signed,
            let added = Invariant.attempt(
                "alice adding a fuzzed KeyPackage",
                { try run.members[0].addMembers([signed]) }
            )
        else { return }
        run.deliver(added.message)
        // dave joins when the fuzzed package kept his keys (his own, or one a mutation left intact).
        if case .welcome(let welcome)? = added.welcome {
            _ = Invariant.attempt("dave joining by alice's Welcome") {
                try Group.join(welcome: welcome, keyPackage: dave, policy: policy)
            }
        }
    }

    // MARK: group-state

    /// First byte: 0 a member's stored state, 1 the server's stored view.
    /// Restoring and storing again must reach a fixed point, and a restored
    /// member must fail cleanly or work.
    func checkState(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        if selector % 2 == 0 {
            guard var group = Invariant.attempt("restoring a group", { try Group(serialized: body, policy: policy) })
            else { return }
            let stored = Invariant.attempt("storing a restored group") { try group.serialized() }
            let again = stored.flatMap { stored in
                Invariant.attempt("restoring a stored group") {
                    try Group(serialized: stored, policy: policy).serialized()
                }
            }
            Invariant.require(stored != nil && again == stored, "a restored group does not store and restore to itself")
            _ = Invariant.attempt("encrypting with a restored group") { try group.encrypt([1, 2, 3]) }
        } else {
            guard
                let view = Invariant.attempt("restoring a view", { try PublicGroup(serialized: body, policy: policy) })
            else { return }
            let stored = Invariant.attempt("storing a restored view") { try view.serialized() }
            let again = stored.flatMap { stored in
                Invariant.attempt("restoring a stored view") {
                    try PublicGroup(serialized: stored, policy: policy).serialized()
                }
            }
            Invariant.require(stored != nil && again == stored, "a restored view does not store and restore to itself")
        }
    }

    func stateSeeds() throws -> [[UInt8]] {
        try members.map { [0] + (try $0.serialized()) } + [[1] + (try server.serialized())]
    }
}
