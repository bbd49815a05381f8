/// Decides which credentials are acceptable (RFC 9420 §5.3.1). Called for
/// every leaf that enters the tree — from a KeyPackage, an Update, an
/// UpdatePath or a tree received on joining — by members and by the server's
/// public view alike. Throw to reject: the caller gets ``MLSError/rejectedByPolicy(_:)``
/// with the thrown error inside, as a value (see <doc:PolicyHooks>).
public protocol CredentialValidator: Sendable {
    func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws

    /// RFC 9420 §5.3.1: when a member replaces its own leaf (an Update
    /// proposal or a commit's UpdatePath), the new credential must be a valid
    /// successor of the old one: the same identity. Throw to refuse. The
    /// default requires the credential to be unchanged, which for a `basic`
    /// credential means the same identity.
    func validateSuccessor(_ credential: Credential, replacing old: Credential) throws
}

extension CredentialValidator {
    public func validateSuccessor(_ credential: Credential, replacing old: Credential) throws {
        guard credential == old else {
            throw MLSError.invalidLeafNode("a member may not change its credential's identity (RFC 9420 §5.3.1)")
        }
    }
}

/// Application rules on top of RFC 9420's own proposal-list validation
/// (§12.2 allows "additional rules, for example, requiring application-level
/// permissions to add members"). Called before a commit is created or applied;
/// what it throws reaches the caller inside ``MLSError/rejectedByPolicy(_:)``.
public protocol CommitPolicy: Sendable {
    /// - Parameters:
    ///   - proposals: the proposals the commit covers, with who proposed each.
    ///   - committer: the commit's sender.
    ///   - group: the group as it is before the commit.
    func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws

    /// Judges one proposal by who proposed it (`proposal.sender`): called when
    /// a proposal is received, before it is cached, and again for every
    /// proposal a commit covers, where a proposal sent inline counts as
    /// proposed by the committer. A commit is thus never judged only by its
    /// committer: a member cannot get an admin to commit what it may not propose.
    /// The default accepts everything.
    func validateProposal(_ proposal: ProposalWithSender, group: PublicGroup) throws
}

extension CommitPolicy {
    /// Accepts every proposal: conformers written before this hook existed keep their behaviour.
    public func validateProposal(_ proposal: ProposalWithSender, group: PublicGroup) throws {}
}

/// A proposal together with the sender that proposed it.
public struct ProposalWithSender: Hashable, Sendable {
    public var proposal: Proposal
    public var sender: Sender
    /// Its ProposalRef when it was sent on its own and committed by reference.
    public var reference: [UInt8]?
}

/// Accepts every credential; the default when the application checks identities elsewhere.
public struct AcceptAllCredentials: CredentialValidator {
    public init() {}
    public func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {}
}

/// Allows every proposal list that RFC 9420 allows.
public struct AllowAllCommits: CommitPolicy {
    public init() {}
    public func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {}
}

/// How a group behaves beyond the RFC's fixed rules: the application's hooks
/// and the bounds on state kept for out-of-order messages. None of it is part
/// of the serialized group state; pass it again when restoring.
public struct GroupPolicy: Sendable {
    public var credentialValidator: any CredentialValidator
    public var commitPolicy: any CommitPolicy
    /// Bounds on out-of-order application messages within an epoch.
    public var secretTree: SecretTreeConfiguration
    /// How many past epochs keep their keys for late application messages.
    public var retainedPastEpochs: Int
    /// How long, in seconds after it ended, a past epoch keeps its keys for late
    /// application messages (§15.3). Measured on the delivery service's times
    /// when ``Group/process(_:deliveredAt:)`` is given them (``now`` must
    /// agree), else with ``now`` at processing; without either only the count
    /// bounds them. Parley's server relays old-epoch messages for 30 s by its
    /// clock (epoch_grace_seconds), so keys kept longer would only serve
    /// messages the server never relays.
    public var pastEpochGrace: UInt64
    /// How many past epochs' resumption PSKs are kept (RFC 9420 §8.6).
    public var retainedResumptionPSKs: Int
    /// PrivateMessage plaintexts are padded to a multiple of this many bytes.
    public var paddingBlock: Int
    /// Send Proposals and Commits as PublicMessage so a delivery service can
    /// check them (RFC 9420 §6); otherwise PrivateMessage.
    public var handshakeAsPublicMessage: Bool
    /// Pre-shared keys the application provides, by PSK id (RFC 9420 §8.4).
    public var externalPSKs: [[UInt8]: [UInt8]]
    /// Resumption PSKs of other groups (RFC 9420 §8.6), by what a PreSharedKeyID
    /// names: how a branch or a ReInit's successor group (§11.2, §11.3) and its
    /// joiners prove they come from the old group. See ``Group/resumptionPSK(usage:)``.
    public var otherGroupsResumptionPSKs: [PreSharedKeyID.Kind: [UInt8]] = [:]
    /// The current time in seconds since the Unix epoch, for KeyPackage
    /// lifetimes; nil skips lifetime checks on received leaves. Also the time of
    /// processing for ``Group/process(_:)``, which has no delivery time.
    public var now: @Sendable () -> UInt64?
    /// At most this many proposals are cached per epoch, awaiting a commit;
    /// more are refused, so a member cannot grow the state without bound.
    public var maximumProposalsPerEpoch: Int
    /// At most this many bytes of proposals (their encodings) are cached per epoch.
    public var maximumProposalBytesPerEpoch: Int

    public init(
        credentialValidator: any CredentialValidator = AcceptAllCredentials(),
        commitPolicy: any CommitPolicy = AllowAllCommits(),
        secretTree: SecretTreeConfiguration = .default,
        retainedPastEpochs: Int = 1,
        pastEpochGrace: UInt64 = 30,
        retainedResumptionPSKs: Int = 8,
        paddingBlock: Int = 32,
        handshakeAsPublicMessage: Bool = true,
        externalPSKs: [[UInt8]: [UInt8]] = [:],
        now: @escaping @Sendable () -> UInt64? = { nil },
        maximumProposalsPerEpoch: Int = 64,
        maximumProposalBytesPerEpoch: Int = 1 << 20
    ) {
        self.credentialValidator = credentialValidator
        self.commitPolicy = commitPolicy
        self.secretTree = secretTree
        self.retainedPastEpochs = retainedPastEpochs
        self.pastEpochGrace = pastEpochGrace
        self.retainedResumptionPSKs = retainedResumptionPSKs
        self.paddingBlock = paddingBlock
        self.handshakeAsPublicMessage = handshakeAsPublicMessage
        self.externalPSKs = externalPSKs
        self.now = now
        self.maximumProposalsPerEpoch = maximumProposalsPerEpoch
        self.maximumProposalBytesPerEpoch = maximumProposalBytesPerEpoch
    }
}
