/// One member's view of an MLS group (RFC 9420): the public state plus this
/// member's secrets for the current epoch.
///
/// `Group` is a value. Operations that change the epoch never mutate in
/// place behind the caller's back:
/// - ``commit(_:)`` builds a Commit and stores the resulting state as
///   pending; the group stays in its epoch (§14) until the delivery service
///   echoes the Commit back and ``process(_:)`` recognises it.
/// - ``process(_:)`` either succeeds and moves the group forward, or throws
///   and leaves it exactly as it was.
///
/// ```swift
/// var alice = try Group.create(suite, groupID: groupID, credential: aliceCredential, signatureKeys: aliceKeys)
/// let added = try alice.addMembers([bobsBundle.keyPackage])  // send added.message and added.welcome
/// _ = try alice.process(added.message)  // the delivery service's echo: now epoch 1
/// guard case .welcome(let welcome)? = added.welcome else { return }
/// var bob = try Group.join(welcome: welcome, keyPackage: bobsBundle)
/// let received = try bob.process(alice.encrypt(Array("hi".utf8)))  // .application: "hi" from alice
/// ```
///
/// <doc:GettingStarted> walks through these steps.
public struct Group: Sendable {
    public internal(set) var publicGroup: PublicGroup
    public internal(set) var ownLeaf: LeafIndex
    var signer: SignaturePrivateKey
    var treeKeys: TreeKEMPrivateKeys
    var epochSecrets: EpochSecrets
    var secretTree: SecretTree
    /// The confirmation tag of the commit that started this epoch, for GroupInfo.
    var confirmationTag: [UInt8]
    /// Recent epochs kept to decrypt late application messages.
    var pastEpochs: [PastEpoch] = []
    /// resumption_psk of recent epochs, by epoch (§8.6).
    var resumptionPSKs: [UInt64: [UInt8]] = [:]
    var pending: PendingCommit?
    /// Private keys of this member's Update proposals of this epoch, by their
    /// leaf's encryption key, for when another member commits one (§12.1.2).
    /// Not part of the serialized state: a restored member's Updates lapse.
    var updateKeys: [HPKEPublicKey: HPKEPrivateKey] = [:]
    /// False once this member is removed or the group is reinitialised.
    public internal(set) var isActive = true
    /// The ReInit (§12.1.5) the Commit that closed this group carried: the
    /// parameters of its successor (§11.2), which ``createSuccessor(signatureKeys:keyPackages:capabilities:forcePath:ratchetTreeInWelcome:)``
    /// creates and ``joinSuccessor(welcome:keyPackage:ratchetTree:)`` joins. Nil while the group is open.
    public internal(set) var reInit: ReInit?
    /// The leaf whose member committed ``reInit`` (§11.2, step 2), in this closed group's last
    /// tree. RFC 9420 lets any member create the successor; an application that wants its
    /// committer to (Parley does) compares it with the creator
    /// ``joinSuccessorNamingCreator(welcome:keyPackage:ratchetTree:)`` reports. Nil while the
    /// group is open, and for a group closed before state format 4 recorded it.
    public internal(set) var reInitCommitter: LeafIndex?

    // MARK: Reading

    public var suite: CipherSuiteProvider { publicGroup.suite }
    public var context: GroupContext { publicGroup.context }
    public var groupID: [UInt8] { publicGroup.groupID }
    public var epoch: UInt64 { publicGroup.epoch }
    public var tree: RatchetTree { publicGroup.tree }
    public var policy: GroupPolicy {
        get { publicGroup.policy }
        set { publicGroup.policy = newValue }
    }

    /// The members and their credentials, in leaf order.
    public var members: [(index: LeafIndex, credential: Credential)] { publicGroup.members }

    /// This member's credential; nil once it has been removed.
    public var ownCredential: Credential? { tree.leafNode(at: ownLeaf)?.credential }

    /// The epoch authenticator (§8.7): equal for all members who share this epoch.
    public var epochAuthenticator: [UInt8] { epochSecrets.epochAuthenticator }

    /// Whether a Commit made by ``commit(_:)`` awaits the delivery service's echo.
    public var hasPendingCommit: Bool { pending != nil }

    /// Proposals received this epoch that no Commit has covered yet.
    public var pendingProposals: [ProposalWithSender] { Array(publicGroup.proposals.values) }

    /// MLS-Exporter (§8.5): a secret for use outside MLS, bound to this epoch.
    public func export(label: String, context: [UInt8], length: Int) throws -> [UInt8] {
        try epochSecrets.exporter(suite, label: label, context: context, length: length)
    }

    /// Drops the pending Commit, e.g. when the delivery service refused it.
    public mutating func discardPendingCommit() { pending = nil }

    // MARK: Creating (§11)

    /// A new one-member group at epoch 0 whose only member is the caller.
    public static func create(
        _ suite: CipherSuiteProvider,
        groupID: [UInt8],
        credential: Credential,
        signatureKeys: SignatureKeyPair,
        capabilities: Capabilities? = nil,
        extensions: [Extension] = [],
        policy: GroupPolicy = GroupPolicy()
    ) throws -> Group {
        let encryptionKeys = try suite.generateHPKEKeyPair()
        var leaf = LeafNode(
            encryptionKey: encryptionKeys.publicKey,
            signatureKey: signatureKeys.publicKey,
            credential: credential,
            capabilities: capabilities
                ?? Capabilities(cipherSuites: [suite.suite], credentials: [credential.credentialType]),
            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max))
        )
        try leaf.sign(suite, with: signatureKeys.privateKey, groupID: [], leafIndex: LeafIndex(0))
        let tree = try RatchetTree(suite, firstLeaf: leaf)
        let context = GroupContext(
            cipherSuite: suite.suite,
            groupID: groupID,
            epoch: 0,
            treeHash: tree.treeHash,
            confirmedTranscriptHash: [],
            extensions: extensions
        )
        if let required: RequiredCapabilities = try extensions.decode(.requiredCapabilities) {
            try tree.validateLeafNode(leaf, at: LeafIndex(0), groupID: groupID, requiredCapabilities: required)
        }
        let secrets = try KeySchedule.epochSecrets(suite, epochSecret: suite.randomBytes(suite.hashLength))
        let tag = TranscriptHash.confirmationTag(suite, confirmationKey: secrets.confirmationKey, confirmed: [])
        let publicGroup = PublicGroup(
            context: context,
            tree: tree,
            interimTranscriptHash: try TranscriptHash.interim(suite, confirmed: [], confirmationTag: tag),
            policy: policy
        )
        try PublicGroup.checkCredential(leaf, policy)
        return Group(
            publicGroup: publicGroup,
            ownLeaf: LeafIndex(0),
            signer: signatureKeys.privateKey,
            treeKeys: TreeKEMPrivateKeys(leafIndex: LeafIndex(0), leafKey: encryptionKeys.privateKey),
            epochSecrets: secrets,
            secretTree: SecretTree(
                suite,
                encryptionSecret: secrets.encryptionSecret,
                leafCount: tree.leafCount,
                configuration: policy.secretTree
            ),
            confirmationTag: tag,
            resumptionPSKs: [0: secrets.resumptionPSK]
        )
    }

    // MARK: Application messages (§15)

    /// Encrypts application data as a PrivateMessage from this member.
    public mutating func encrypt(_ data: [UInt8], authenticatedData: [UInt8] = []) throws -> MLSMessage {
        guard isActive else { throw MLSError.groupInactive }
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: .member(ownLeaf),
            authenticatedData: authenticatedData,
            body: .application(data)
        )
        let signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .privateMessage,
            context: context,
            signer: signer,
            suite
        )
        return .privateMessage(
            try PrivateMessage.protect(
                signed,
                secretTree: &secretTree,
                senderDataSecret: epochSecrets.senderDataSecret,
                paddingBlock: policy.paddingBlock
            )
        )
    }

    // MARK: Proposals (§12.1)

    /// A proposal to remove this member, which another member commits: how a member leaves.
    public mutating func proposeLeave(authenticatedData: [UInt8] = []) throws -> MLSMessage {
        try propose(.remove(removed: ownLeaf), authenticatedData: authenticatedData)
    }

    /// An Update proposal (§12.1.2): this member's leaf with a fresh encryption
    /// key, for another member to commit (a committer cannot commit its own).
    ///
    /// - Parameter template: new leaf content (credential, capabilities,
    ///   extensions); its encryption key, source and signature are replaced.
    ///   Defaults to the current leaf.
    public mutating func proposeUpdate(
        leafNode template: LeafNode? = nil,
        authenticatedData: [UInt8] = []
    ) throws
        -> MLSMessage
    {
        guard isActive, let current = tree.leafNode(at: ownLeaf) else { throw MLSError.groupInactive }
        var leaf = template ?? current
        if template != nil {
            try PublicGroup.checkCredential(leaf, policy)
            try PublicGroup.checkSuccessor(leaf, replacing: current, policy)
        }
        let keys = try suite.generateHPKEKeyPair()
        leaf.encryptionKey = keys.publicKey
        leaf.source = .update
        try leaf.sign(suite, with: signer, groupID: groupID, leafIndex: ownLeaf)
        let message = try propose(.update(leaf), authenticatedData: authenticatedData)
        updateKeys[keys.publicKey] = keys.privateKey
        return message
    }

    /// A standalone proposal from this member, to be committed later by reference.
    ///
    /// The proposal is also cached here, as if received (§12.1): another member's
    /// Commit may name it by ProposalRef, and this member's own PrivateMessage
    /// cannot be decrypted again to learn it. A proposal this member's own view
    /// refuses (the checks every receiver makes) is sent uncached: no member
    /// that checks it will cache or commit it either.
    public mutating func propose(_ proposal: Proposal, authenticatedData: [UInt8] = []) throws -> MLSMessage {
        guard isActive else { throw MLSError.groupInactive }
        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: .member(ownLeaf),
            authenticatedData: authenticatedData,
            body: .proposal(proposal)
        )
        let wireFormat: WireFormat = policy.handshakeAsPublicMessage ? .publicMessage : .privateMessage
        let signed = try AuthenticatedContent.sign(
            content,
            wireFormat: wireFormat,
            context: context,
            signer: signer,
            suite
        )
        let message = try protect(signed, as: wireFormat)
        _ = try? publicGroup.cacheProposal(signed)
        return message
    }

    /// Signed content framed in `wireFormat`; a PrivateMessage consumes a handshake key of this
    /// epoch's secret tree (§6.3). Proposals and Commits both come through here.
    mutating func protect(_ signed: AuthenticatedContent, as wireFormat: WireFormat) throws -> MLSMessage {
        if wireFormat == .publicMessage {
            return .publicMessage(
                try PublicMessage.protect(signed, membershipKey: epochSecrets.membershipKey, context: context, suite)
            )
        }
        return .privateMessage(
            try PrivateMessage.protect(
                signed,
                secretTree: &secretTree,
                senderDataSecret: epochSecrets.senderDataSecret,
                paddingBlock: policy.paddingBlock
            )
        )
    }

    /// This epoch's resumption PSK (§8.6) under a fresh id naming this group and
    /// epoch with `usage`, for a group that starts from this one: a branch
    /// (§11.3) or a ReInit's successor (§11.2) puts it in its first Commit and
    /// Welcome, and its members and joiners hold it in
    /// ``GroupPolicy/otherGroupsResumptionPSKs``.
    public func resumptionPSK(usage: ResumptionPSKUsage) -> (id: PreSharedKeyID, psk: [UInt8]) {
        let id = PreSharedKeyID.fresh(.resumption(usage: usage, groupID: groupID, epoch: epoch), suite: suite)
        return (id, epochSecrets.resumptionPSK)
    }

    // MARK: GroupInfo (§12.4.3)

    /// A signed GroupInfo for the current epoch, e.g. for the delivery
    /// service's public view or for external joiners.
    public func groupInfo(includeRatchetTree: Bool = true, includeExternalPub: Bool = false) throws -> GroupInfo {
        var extensions: [Extension] = []
        if includeRatchetTree {
            extensions.append(Extension(extensionType: .ratchetTree, extensionData: try tree.encoded()))
        }
        if includeExternalPub {
            let external = try epochSecrets.externalKeyPair(suite).publicKey
            extensions.append(Extension(extensionType: .externalPub, extensionData: try external.tlsEncoded()))
        }
        var info = GroupInfo(
            groupContext: context,
            extensions: extensions,
            confirmationTag: confirmationTag,
            signer: ownLeaf
        )
        info.signature = try suite.signWithLabel(signer, label: "GroupInfoTBS", content: info.toBeSigned())
        return info
    }
}

/// An epoch kept after it ended, so that application messages sent in it
/// that arrive late can still be decrypted (§15.3).
struct PastEpoch: Sendable {
    var context: GroupContext
    var tree: RatchetTree
    var secretTree: SecretTree
    var senderDataSecret: [UInt8]
    /// When the epoch ended, for ``GroupPolicy/pastEpochGrace``: the time of the
    /// Commit that ended it, as given to ``Group/process(_:deliveredAt:)`` (the
    /// delivery service's clock, or ``GroupPolicy/now`` at processing); nil without one.
    var endedAt: UInt64?
    /// Leaves that the commit ending this epoch, or a later one, removed:
    /// their late messages are refused.
    var removedLater: Set<LeafIndex> = []
}

/// A Commit this member made that the delivery service has not yet echoed.
final class PendingCommit: Sendable {
    let content: AuthenticatedContent
    /// What was sent: a PrivateMessage echo can only be recognised by its
    /// bytes, since the key that encrypted it is gone.
    let message: MLSMessage
    let next: Group
    let summary: CommitSummary

    init(content: AuthenticatedContent, message: MLSMessage, next: Group, summary: CommitSummary) {
        self.content = content
        self.message = message
        self.next = next
        self.summary = summary
    }
}
