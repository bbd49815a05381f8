import ParleyProtocol

@testable import MLS

/// One step of a group-process input. An input is up to four steps, each an
/// operation byte and an `opaque<V>` body; the byte's value mod 5 picks the
/// kind, and its value / 5 mod 3 the member (alice, bob, carol) acting.
enum Operation {
    /// Body: an MLSMessage, delivered as the server would relay it.
    case deliver(MLSMessage)
    /// Body: a Proposal, sent by the member through `Group.propose`.
    case propose(member: Int, Proposal)
    /// Body ignored: the member commits its pending proposals (`Group.commit()`).
    case commitPending(member: Int)
    /// Body: a Commit (kind 3) or a whole FramedContent (kind 4), signed by the
    /// member and sent as PublicMessage with its real membership tag.
    case signed(member: Int, FramedContent)
    /// Body: `uint32 leaf, uint32 generation, FramedContent`: the content signed
    /// and encrypted by the member as PrivateMessage, its SenderData claiming
    /// that leaf and generation (kind 5).
    case encrypted(member: Int, SenderData, FramedContent)

    static let maximumPerInput = 4
    static let kinds: UInt8 = 6

    static func decode(_ bytes: [UInt8]) -> [Operation] {
        var reader = TLSReader(bytes)
        var operations: [Operation] = []
        while !reader.isAtEnd, operations.count < maximumPerInput {
            guard let code = try? reader.readUInt8(), let body = try? reader.readOpaque() else { break }
            let member = Int(code / kinds) % 3
            let operation: Operation? =
                switch code % kinds {
                case 0: Invariant.attempt("decoding an MLSMessage") { .deliver(try MLSMessage(tlsEncoded: body)) }
                case 1:
                    Invariant.attempt("decoding a Proposal") {
                        .propose(member: member, try Proposal(tlsEncoded: body))
                    }
                case 2: .commitPending(member: member)
                case 3:
                    Invariant.attempt("decoding a Commit") {
                        .signed(member: member, commitContent(try Commit(tlsEncoded: body), member))
                    }
                case 4:
                    Invariant.attempt("decoding a FramedContent") {
                        .signed(member: member, try FramedContent(tlsEncoded: body))
                    }
                default: Invariant.attempt("decoding a claim and a FramedContent") { try encrypted(member, body) }
                }
            guard let operation else { break }
            operations.append(operation)
        }
        return operations
    }

    private static func encrypted(_ member: Int, _ body: [UInt8]) throws -> Operation {
        var reader = TLSReader(body)
        let claim = SenderData(
            leafIndex: LeafIndex(try reader.read(UInt32.self)),
            generation: try reader.read(),
            reuseGuard: [0, 0, 0, 0]
        )
        let content = try reader.read(FramedContent.self)
        try reader.finish()
        return .encrypted(member: member, claim, content)
    }

    /// A Commit from `member` in the live group's epoch 1.
    static func commitContent(_ commit: Commit, _ member: Int) -> FramedContent {
        FramedContent(
            groupID: LiveGroup.groupID,
            epoch: 1,
            sender: .member(LeafIndex(UInt32(member))),
            body: .commit(commit)
        )
    }

    /// Encodes steps for a seed: (kind, member, body).
    static func encode(_ steps: [(kind: UInt8, member: UInt8, body: [UInt8])]) throws -> [UInt8] {
        var writer = TLSWriter()
        for step in steps {
            writer.write(step.kind + step.member * kinds)
            try writer.writeOpaque(step.body)
        }
        return writer.bytes
    }
}

/// Fresh copies of the group that one input's operations act on, and the
/// proposals the server's view accepted, for the policy oracle.
struct Run {
    var members: [Group]
    var server: PublicGroup
    var serverProposals: [[UInt8]: ProposalWithSender] = [:]

    init(members: [Group], server: PublicGroup) {
        self.members = members
        self.server = server
    }

    /// A message either moves a party forward or leaves it exactly as it was
    /// (§14); members that accept the same Commit agree on the new epoch; every
    /// accepted Commit keeps Parley's rules.
    mutating func deliver(_ message: MLSMessage) {
        let content: FramedContent? =
            if case .publicMessage(let publicMessage) = message { publicMessage.content } else { nil }
        let serverBefore = server
        switch Invariant.attempt("the server's view processing a message", { try server.process(message) }) {
        case nil:
            Invariant.require(server.context == serverBefore.context, "a refused message changed the server's view")
        case .proposal(let reference, let proposal)?:
            serverProposals[reference] = proposal
        case .commit(let summary)?:
            PolicyOracle(before: serverBefore, after: server, summary: summary)
                .check(commit: content?.commit, committer: summary.committer, cached: serverProposals)
            serverProposals = [:]
        }
        var advanced: [Group] = []
        for index in members.indices {
            let before = members[index]
            let result = Invariant.attempt("a member processing a message") { try members[index].process(message) }
            guard case .commit(let summary)? = result else {
                Invariant.require(
                    members[index].context == before.context
                        && members[index].epochAuthenticator == before.epochAuthenticator,
                    "a message that did not commit changed a member's epoch"
                )
                continue
            }
            let cached = Dictionary(before.pendingProposals.compactMap { item in item.reference.map { ($0, item) } }) {
                first,
                _ in first
            }
            PolicyOracle(before: before.publicGroup, after: members[index].publicGroup, summary: summary)
                .check(commit: content?.commit, committer: summary.committer, cached: cached)
            if members[index].isActive { advanced.append(members[index]) }
        }
        for (first, second) in zip(advanced, advanced.dropFirst()) {
            Invariant.require(
                first.context == second.context,
                "members that accepted one Commit disagree on the context"
            )
            Invariant.require(
                first.epochAuthenticator == second.epochAuthenticator,
                "members that accepted one Commit disagree on the epoch"
            )
        }
    }
}

extension FramedContent {
    var commit: Commit? {
        if case .commit(let commit) = body { commit } else { nil }
    }
}
