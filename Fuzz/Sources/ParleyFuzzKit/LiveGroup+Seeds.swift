import MLS
import ParleyProtocol

/// The group-process target's seeds, all valid in the live group's epoch 1
/// and made on copies so the group stays put: honest traffic of every kind
/// Parley sends, and the hostile-member moves of issue 11 (bob, not an admin,
/// proposing to make himself admin and remove alice; a PSK nobody holds).
struct Seeds {
    typealias Step = (kind: UInt8, member: UInt8, body: [UInt8])
    static let (alice, bob, carol): (UInt8, UInt8, UInt8) = (0, 1, 2)

    let members: [Group]
    let dave: KeyPackageBundle

    func all() throws -> [[UInt8]] {
        try (honest() + hostile() + encrypted()).map(Operation.encode)
    }

    /// Kind 5: content a member encrypts itself, claiming a leaf and generation
    /// in its SenderData: honest claims, and ones beyond the tree and the window.
    private func encrypted() throws -> [[Step]] {
        let hello = FramedContent(
            groupID: LiveGroup.groupID,
            epoch: 1,
            sender: .member(LeafIndex(1)),
            body: .application(Array("hi".utf8))
        )
        var update = members[1]
        guard case .publicMessage(let commit) = try update.selfUpdate().message else { return [] }
        let claims: [(leaf: UInt32, generation: UInt32)] = [
            (1, 0), (1, 5), (1, 999), (1, 1001), (1, .max), (0, 0), (2, 3), (3, 0), (UInt32(1) << 31 | 1, 0),
            (.max, .max),
        ]
        return try claims.map { claim in
            var writer = TLSWriter()
            writer.write(claim.leaf)
            writer.write(claim.generation)
            try writer.write(hello)
            return [(5, Self.bob, writer.bytes)]
        } + [[(5, Self.bob, try [0, 0, 0, 1, 0, 0, 0, 0] + commit.content.tlsEncoded())]]
    }

    private func deliver(_ message: MLSMessage) throws -> Step { (0, 0, try message.tlsEncoded()) }
    private func propose(_ member: UInt8, _ proposal: Proposal) throws -> Step {
        (1, member, try proposal.tlsEncoded())
    }
    private func commitPending(_ member: UInt8) -> Step { (2, member, []) }

    /// Application messages, Commits (with and without a path), a Welcome,
    /// a proposal committed by reference, and a message of the next epoch.
    private func honest() throws -> [[Step]] {
        var (alice, bob) = (members[0], members[1])
        let adding = try alice.addMembers([dave.keyPackage])
        let admins = try ParleyGroupPolicy.adminsExtension(["alice", "bob"])
        var seeds: [[Step]] = try [
            [deliver(alice.encrypt(Array("hello from alice".utf8)))],
            [deliver(bob.encrypt(Array("hello from bob".utf8), authenticatedData: [1, 2, 3]))],
            [deliver(alice.selfUpdate().message)],
            [deliver(bob.selfUpdate().message)],
            [deliver(alice.removeMembers([LeafIndex(2)]).message)],
            [deliver(alice.commit(CommitOptions(groupContextExtensions: [admins])).message)],
            [deliver(.groupInfo(alice.groupInfo()))],
            [deliver(.keyPackage(dave.keyPackage))],
            [deliver(adding.message)],
            [propose(Self.carol, .remove(removed: LeafIndex(2))), commitPending(Self.alice)],
            [propose(Self.alice, .add(dave.keyPackage)), commitPending(Self.alice)],
        ]
        if let welcome = adding.welcome { seeds.append([try deliver(welcome)]) }
        var updater = members[0]
        let update = try updater.selfUpdate().message
        _ = try updater.process(update)
        seeds.append([try deliver(update), try deliver(updater.encrypt(Array("after the update".utf8)))])
        return seeds + (try signedVariants(of: [alice.selfUpdate().message, adding.message]))
    }

    /// The same Commits re-signed by bob through the signed-content kinds.
    private func signedVariants(of messages: [MLSMessage]) throws -> [[Step]] {
        try messages.flatMap { message -> [[Step]] in
            guard case .publicMessage(let publicMessage) = message, let commit = publicMessage.content.commit else {
                return []
            }
            return [
                [(3, Self.bob, try commit.tlsEncoded())], [(4, Self.alice, try publicMessage.content.tlsEncoded())],
            ]
        }
    }

    /// Issue 11's hostile members: each must be refused or left uncommitted.
    private func hostile() throws -> [[Step]] {
        let bobAdmin = try ParleyGroupPolicy.adminsExtension(["bob"])
        let psk = PreSharedKeyID(
            kind: .external(pskID: Array("nobody has it".utf8)),
            pskNonce: Array(repeating: 7, count: 32)
        )
        return try [
            // Finding 3: bob proposes himself sole admin and alice's removal; alice auto-commits.
            [
                propose(Self.bob, .groupContextExtensions([bobAdmin])),
                propose(Self.bob, .remove(removed: LeafIndex(0))),
                commitPending(Self.alice),
            ],
            [propose(Self.bob, .remove(removed: LeafIndex(2))), commitPending(Self.alice)],
            [propose(Self.bob, .add(dave.keyPackage)), commitPending(Self.alice)],
            // Finding 5: a PSK nobody holds, committed by a non-admin.
            [propose(Self.bob, .preSharedKey(psk)), commitPending(Self.bob)],
            // Finding 6: two GroupContextExtensions proposals in one epoch.
            [
                propose(Self.bob, .groupContextExtensions([bobAdmin])),
                propose(Self.carol, .groupContextExtensions([])),
                commitPending(Self.alice),
            ],
            // Finding 10: a Remove whose leaf index wraps around onto a real leaf.
            [propose(Self.alice, .remove(removed: LeafIndex(UInt32(1) << 31 | 2))), commitPending(Self.alice)],
            [
                (
                    3, Self.bob,
                    try Commit(proposals: [.proposal(.remove(removed: LeafIndex(UInt32(1) << 31)))]).tlsEncoded()
                )
            ],
            [(3, Self.bob, try Commit(proposals: [.proposal(.groupContextExtensions([bobAdmin]))]).tlsEncoded())],
        ]
    }
}
