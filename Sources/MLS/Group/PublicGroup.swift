/// The public state of a group (RFC 9420 §8.1, §12): GroupContext, ratchet
/// tree, interim transcript hash and the proposals sent this epoch — no secret.
///
/// A delivery service follows a group with this view (like OpenMLS's
/// `PublicGroup` or mls-rs's `ExternalClient`): it checks signatures, epochs,
/// proposal lists, UpdatePaths and the application's policy on every
/// handshake PublicMessage, and always knows the roster. It cannot check
/// membership tags or confirmation tags, which need group secrets, and it
/// never sees application data. Members embed the same value in ``Group``,
/// so both sides apply one set of rules.
public struct PublicGroup: Sendable {
    public internal(set) var context: GroupContext
    public internal(set) var tree: RatchetTree
    public internal(set) var interimTranscriptHash: [UInt8]
    /// Proposals received this epoch, by ProposalRef, for commits that include them by reference.
    var proposals: [[UInt8]: ProposalWithSender] = [:]
    /// The size of the cached proposals' encodings, against ``GroupPolicy/maximumProposalBytesPerEpoch``.
    var proposalBytes = 0
    public var policy: GroupPolicy

    public var suite: CipherSuiteProvider { tree.suite }
    public var groupID: [UInt8] { context.groupID }
    public var epoch: UInt64 { context.epoch }

    /// The members, in leaf order.
    public var members: [(index: LeafIndex, credential: Credential)] {
        tree.members.map { ($0.index, $0.leaf.credential) }
    }

    init(context: GroupContext, tree: RatchetTree, interimTranscriptHash: [UInt8], policy: GroupPolicy) {
        self.context = context
        self.tree = tree
        self.interimTranscriptHash = interimTranscriptHash
        self.policy = policy
    }

    /// Starts following a group from a GroupInfo and its ratchet tree (from the
    /// `ratchet_tree` extension when `tree` is nil), checking the GroupInfo's
    /// signature, the tree hash, the tree's integrity and every credential.
    ///
    /// Cheap checks come first: the tree is decoded and the signature verified
    /// with the signer leaf's key before any tree hash or per-node validation,
    /// so an unsigned or padded GroupInfo costs its decoding and one signature.
    public init(groupInfo: GroupInfo, tree suppliedTree: RatchetTree? = nil, policy: GroupPolicy = GroupPolicy()) throws
    {
        let suite = try groupInfo.groupContext.cipherSuite.provider()
        let tree: RatchetTree
        if let suppliedTree {
            try Self.verifySignature(of: groupInfo, signer: suppliedTree.leafNode(at: groupInfo.signer), suite)
            tree = suppliedTree
        } else {
            guard let encoded = groupInfo.extensions.first(.ratchetTree) else {
                throw MLSError.ratchetTreeNotFound
            }
            let nodes = try RatchetTree.decodeNodes(encoded)
            let position = Int(groupInfo.signer.nodeIndex.rawValue)
            let signer: LeafNode? =
                if position < nodes.count, case .leaf(let leaf)? = nodes[position] { leaf } else { nil }
            try Self.verifySignature(of: groupInfo, signer: signer, suite)
            tree = try RatchetTree(suite, nodes: nodes)
        }
        try Self.checkJoinedTree(tree, context: groupInfo.groupContext, policy: policy)
        self.init(
            context: groupInfo.groupContext,
            tree: tree,
            interimTranscriptHash: try TranscriptHash.interim(
                suite,
                confirmed: groupInfo.groupContext.confirmedTranscriptHash,
                confirmationTag: groupInfo.confirmationTag
            ),
            policy: policy
        )
    }

    /// The GroupInfo's signature (§12.4.3) under the signer leaf's key.
    static func verifySignature(of groupInfo: GroupInfo, signer: LeafNode?, _ suite: CipherSuiteProvider) throws {
        guard let signer,
            try suite.verifyWithLabel(
                signer.signatureKey,
                label: "GroupInfoTBS",
                content: groupInfo.toBeSigned(),
                signature: groupInfo.signature
            )
        else { throw MLSError.invalidMessage("the GroupInfo signature does not verify") }
    }

    /// §12.4.3.1 "verify the integrity of the ratchet tree", plus the application's credential check.
    static func checkJoinedTree(_ tree: RatchetTree, context: GroupContext, policy: GroupPolicy) throws {
        guard tree.suite.suite == context.cipherSuite else {
            throw MLSError.invalidTree("the tree is for another cipher suite")
        }
        guard tree.treeHash == context.treeHash else {
            throw MLSError.invalidTree("the ratchet tree does not match the group's tree hash")
        }
        // Lifetimes are checked when a KeyPackage is added (§10.1), not here:
        // a member's key_package leaf stays in the tree until it updates, and
        // refusing a tree for it would lock joiners out of any group with a
        // quiet member (§7.3 makes this check on receipt only RECOMMENDED).
        try tree.validate(
            groupID: context.groupID,
            requiredCapabilities: try context.extensions.decode(.requiredCapabilities),
            now: nil
        )
        for (_, leaf) in tree.members {
            try checkCredential(leaf, policy)
        }
    }

    static func checkCredential(_ leaf: LeafNode, _ policy: GroupPolicy) throws {
        try checkCredential(leaf.credential, signatureKey: leaf.signatureKey, policy)
    }

    static func checkCredential(
        _ credential: Credential,
        signatureKey: SignaturePublicKey,
        _ policy: GroupPolicy
    )
        throws
    {
        do {
            try policy.credentialValidator.validate(credential, signatureKey: signatureKey)
        } catch {
            throw MLSError.rejectedByPolicy(PolicyRejection(.credential, error))
        }
    }

    /// §5.3.1 successor check for a member replacing its own leaf.
    static func checkSuccessor(_ leaf: LeafNode, replacing old: LeafNode, _ policy: GroupPolicy) throws {
        do {
            try policy.credentialValidator.validateSuccessor(leaf.credential, replacing: old.credential)
        } catch let error as MLSError {
            throw error
        } catch {
            throw MLSError.rejectedByPolicy(PolicyRejection(.credential, error))
        }
    }

    // MARK: Authentication (§6.1)

    /// The key that must have signed `content`, by sender type (§6.1).
    func signatureKey(for content: FramedContent) throws -> SignaturePublicKey {
        switch content.sender {
        case .member(let leaf):
            guard let leafNode = tree.leafNode(at: leaf) else {
                throw MLSError.invalidMessage("the sender \(leaf) is not a member")
            }
            return leafNode.signatureKey
        case .external(let index):
            guard case .proposal(let proposal) = content.body,
                Self.externalSenderProposalTypes.contains(proposal.proposalType)
            else {
                throw MLSError.invalidMessage(
                    "an external sender may only send add, remove, psk, reinit or group_context_extensions proposals"
                )
            }
            let senders = try externalSenders()
            guard let position = Int(exactly: index), position < senders.count else {
                throw MLSError.notAnExternalSender
            }
            // The list may predate this member's policy (it came with the group): its
            // credential is checked on every use, as a member's is on join (§5.3.1).
            let sender = senders[position]
            try Self.checkCredential(sender.credential, signatureKey: sender.signatureKey, policy)
            return sender.signatureKey
        case .newMemberProposal:
            guard case .proposal(.add(let keyPackage)) = content.body else {
                throw MLSError.invalidMessage("a new_member_proposal sender may only propose adding itself")
            }
            return keyPackage.leafNode.signatureKey
        case .newMemberCommit:
            guard case .commit(let commit) = content.body, let path = commit.path else {
                throw MLSError.invalidMessage("a new_member_commit must be a commit with a path")
            }
            return path.leafNode.signatureKey
        }
    }

    /// Checks group, epoch and signature of received content.
    func verify(_ content: AuthenticatedContent) throws {
        guard content.content.groupID == context.groupID else {
            throw MLSError.invalidMessage("the message is for another group")
        }
        guard content.content.epoch == context.epoch else {
            throw MLSError.wrongEpoch(message: content.content.epoch, group: context.epoch)
        }
        guard try content.verifySignature(suite, publicKey: signatureKey(for: content.content), context: context) else {
            throw MLSError.invalidSignature
        }
    }

    // MARK: Proposals

    /// Stores a received, verified proposal under its ProposalRef (§5.2),
    /// after the checks that need no commit (§12.1) and the application's
    /// proposal hook, and within the per-epoch bounds. On error nothing is stored.
    @discardableResult
    mutating func cacheProposal(
        _ content: AuthenticatedContent
    ) throws -> (reference: [UInt8], proposal: ProposalWithSender) {
        guard case .proposal(let proposal) = content.content.body else {
            throw MLSError.invalidMessage("not a proposal")
        }
        let reference = try suite.makeProposalRef(content.tlsEncoded())
        let entry = ProposalWithSender(proposal: proposal, sender: content.content.sender, reference: reference)
        if let known = proposals[reference] { return (reference, known) }
        try checkReceivedProposal(entry)
        try checkProposalPolicy(entry)
        let size = try proposal.tlsEncoded().count
        let (total, overflow) = proposalBytes.addingReportingOverflow(size)
        guard proposals.count < policy.maximumProposalsPerEpoch, !overflow, total <= policy.maximumProposalBytesPerEpoch
        else {
            throw MLSError.tooManyProposals(
                maximumCount: policy.maximumProposalsPerEpoch,
                maximumBytes: policy.maximumProposalBytesPerEpoch
            )
        }
        proposals[reference] = entry
        proposalBytes = total
        return (reference, entry)
    }

    /// The rules of §12.1 a proposal must meet on its own, checked when it
    /// arrives so that an invalid proposal is never cached (where it would
    /// make every later commit that includes it fail).
    private func checkReceivedProposal(_ entry: ProposalWithSender) throws {
        let requiredCapabilities: RequiredCapabilities? = try context.extensions.decode(.requiredCapabilities)
        switch entry.proposal {
        case .add(let keyPackage):
            try validateKeyPackage(keyPackage, requiredCapabilities: requiredCapabilities, now: policy.now())
        case .update(let leafNode):
            guard case .member(let leaf) = entry.sender else {
                throw MLSError.invalidProposal("an Update must come from a member")
            }
            try checkUpdate(leafNode, at: leaf, requiredCapabilities)
        case .remove(let leaf):
            guard tree.leafNode(at: leaf) != nil else {
                throw MLSError.invalidProposal("Remove names \(leaf), which is not a member")
            }
        case .preSharedKey(let id):
            try checkPreSharedKey(id)
        case .reInit(let reInit):
            guard reInit.version.rawValue >= context.version.rawValue else {
                throw MLSError.invalidProposal("ReInit may not lower the protocol version")
            }
        case .externalInit:
            throw MLSError.invalidProposal("ExternalInit is only allowed inline in an external commit")
        case .groupContextExtensions(let extensions):
            // Every external sender a change would list must pass the application's
            // credential check, as members' credentials do (§5.3.1, §12.1.8.1).
            for sender in try ExternalSender.list(in: extensions) {
                try Self.checkCredential(sender.credential, signatureKey: sender.signatureKey, policy)
            }
        }
    }

    /// A PreSharedKey proposal's own rules (§12.1.4), on arrival and in a commit: the nonce is
    /// Nh bytes; reinit and branch PSKs belong only to the first Commit of a group started
    /// from another one (§11.2, §11.3) — a branch names another group; a ReInit's successor
    /// may keep the old group's ID.
    func checkPreSharedKey(_ id: PreSharedKeyID) throws {
        guard id.pskNonce.count == suite.hashLength else {
            throw MLSError.invalidProposal("a PSK nonce must be Nh bytes long")
        }
        if case .resumption(let usage, let pskGroupID, _) = id.kind, usage != .application,
            context.epoch != 0 || (usage == .branch && pskGroupID == context.groupID)
        {
            throw MLSError.invalidProposal(
                "a resumption PSK outside reinit or branching must have usage application"
            )
        }
    }

    /// The application's judgement of one proposal by its proposer.
    func checkProposalPolicy(_ entry: ProposalWithSender) throws {
        do {
            try policy.commitPolicy.validateProposal(entry, group: self)
        } catch let error as MLSError {
            throw error
        } catch {
            throw MLSError.rejectedByPolicy(PolicyRejection(.proposal, error))
        }
    }

    /// The proposals a commit covers, resolving references against this epoch's cache.
    func resolve(_ commit: Commit, committer: Sender) throws -> [ProposalWithSender] {
        try commit.proposals.map { item in
            switch item {
            case .proposal(let proposal):
                return ProposalWithSender(proposal: proposal, sender: committer, reference: nil)
            case .reference(let reference):
                guard case .member = committer else {
                    throw MLSError.invalidCommit("an external commit may not include proposals by reference")
                }
                guard let cached = proposals[reference] else {
                    throw MLSError.invalidCommit("the commit references a proposal this epoch has not seen")
                }
                return cached
            }
        }
    }

    /// The result of applying a proposal list to the public state (§12.3).
    struct AppliedProposals {
        var context: GroupContext
        var tree: RatchetTree
        var added: [(leaf: LeafIndex, keyPackage: KeyPackage)] = []
        var removed: [(leaf: LeafIndex, leafNode: LeafNode)] = []
        var updated: [LeafIndex] = []
        var pskIDs: [PreSharedKeyID] = []
        var externalInit: [UInt8]?
        var reInit: ReInit?
        var pathRequired: Bool
    }

    /// Validates a proposal list (§12.2) and the application's policy, then
    /// applies it in the order §12.3 prescribes: extensions, updates, removes,
    /// adds, then PSKs, ExternalInit and ReInit are noted.
    func apply(_ list: [ProposalWithSender], committer: Sender) throws -> AppliedProposals {
        try validate(list, committer: committer)
        var result = AppliedProposals(context: context, tree: tree, pathRequired: list.isEmpty)
        for item in list {
            switch item.proposal.proposalType {
            case .update, .remove, .externalInit, .groupContextExtensions: result.pathRequired = true
            default: break
            }
        }
        for item in list {
            if case .groupContextExtensions(let extensions) = item.proposal { result.context.extensions = extensions }
        }
        if result.context.extensions != context.extensions {
            _ = try ExternalSender.list(in: result.context.extensions)
        }
        let requiredCapabilities: RequiredCapabilities? = try result.context.extensions.decode(.requiredCapabilities)
        let now = policy.now()

        for item in list {
            guard case .update(let leafNode) = item.proposal, case .member(let leaf) = item.sender else { continue }
            try checkUpdate(leafNode, at: leaf, requiredCapabilities)
            try result.tree.update(leaf, with: leafNode)
            result.updated.append(leaf)
        }
        for item in list {
            guard case .remove(let leaf) = item.proposal else { continue }
            guard let removed = result.tree.leafNode(at: leaf) else {
                throw MLSError.invalidProposal("Remove names \(leaf), which is blank")
            }
            try result.tree.remove(leaf)
            result.removed.append((leaf, removed))
        }
        try applyAdds(list, to: &result, requiredCapabilities, now: now)
        for item in list {
            switch item.proposal {
            case .preSharedKey(let id): result.pskIDs.append(id)
            case .externalInit(let kemOutput): result.externalInit = kemOutput
            case .reInit(let reInit): result.reInit = reInit
            default: break
            }
        }
        if let requiredCapabilities, result.context.extensions != context.extensions {
            for (index, leaf) in result.tree.members {
                try result.tree.validateLeafNode(
                    leaf,
                    at: index,
                    groupID: context.groupID,
                    requiredCapabilities: requiredCapabilities
                )
            }
        }
        return result
    }

    /// The list rules, then the application's policy for each proposal and for the
    /// whole commit; a hook's own error is kept as the rejection's value.
    private func validate(_ list: [ProposalWithSender], committer: Sender) throws {
        let isExternal = committer == .newMemberCommit
        let committerLeaf: LeafIndex? = if case .member(let leaf) = committer { leaf } else { nil }
        try validateList(list, committer: committer, committerLeaf: committerLeaf, isExternal: isExternal)
        for item in list { try checkProposalPolicy(item) }
        do {
            try policy.commitPolicy.validate(list, committer: committer, group: self)
        } catch let error as MLSError {
            throw error
        } catch {
            throw MLSError.rejectedByPolicy(PolicyRejection(.commit, error))
        }
    }

    /// Adds each KeyPackage's leaf (§12.1.1), after checking it against the group as
    /// the commit leaves it (required capabilities, credentials, no key already present).
    private func applyAdds(
        _ list: [ProposalWithSender],
        to result: inout AppliedProposals,
        _ requiredCapabilities: RequiredCapabilities?,
        now: UInt64?
    ) throws {
        let credentials = CredentialSupport(result.tree)
        for item in list {
            guard case .add(let keyPackage) = item.proposal else { continue }
            try validateKeyPackage(
                keyPackage,
                requiredCapabilities: requiredCapabilities,
                now: now,
                credentials: credentials
            )
            let leaf = keyPackage.leafNode
            if result.tree.node(withEncryptionKey: leaf.encryptionKey) != nil
                || result.tree.leaf(withSignatureKey: leaf.signatureKey) != nil
            {
                throw MLSError.invalidProposal("Add would put a key that is already in the group into the tree")
            }
            result.added.append((try result.tree.add(leaf), keyPackage))
        }
    }

    /// What the §12.2 list rules need to remember across a proposal list.
    private struct ListScan {
        var touchedLeaves = Set<LeafIndex>()
        var addedSignatureKeys = Set<SignaturePublicKey>()
        var removedLeaves = Set<LeafIndex>()
        var pskIDs = Set<PreSharedKeyID>()
        var counts: [UInt16: Int] = [:]
    }

    /// §12.2 list rules and each proposal's own rules (§12.1).
    private func validateList(
        _ list: [ProposalWithSender],
        committer: Sender,
        committerLeaf: LeafIndex?,
        isExternal: Bool
    ) throws {
        var scan = ListScan()
        for item in list {
            try check(item, committerLeaf: committerLeaf, isExternal: isExternal, &scan)
        }
        // A client already in the group may be added only if the same commit removes it.
        for key in scan.addedSignatureKeys {
            if let existing = tree.leaf(withSignatureKey: key), !scan.removedLeaves.contains(existing) {
                throw MLSError.invalidProposal("Add for a client that is already a member")
            }
        }
        try checkProposalCounts(scan.counts, listCount: list.count, isExternal: isExternal)
    }

    /// One proposal's own rules (§12.1) and the §12.2 rules that relate it to the
    /// proposals before it in the list.
    private func check(
        _ item: ProposalWithSender,
        committerLeaf: LeafIndex?,
        isExternal: Bool,
        _ scan: inout ListScan
    ) throws {
        scan.counts[item.proposal.proposalType.rawValue, default: 0] += 1
        switch item.proposal {
        case .add(let keyPackage):
            guard scan.addedSignatureKeys.insert(keyPackage.leafNode.signatureKey).inserted else {
                throw MLSError.invalidProposal("two Adds for the same client")
            }
        case .update:
            guard case .member(let leaf) = item.sender else {
                throw MLSError.invalidProposal("an Update must come from a member")
            }
            guard leaf != committerLeaf else {
                throw MLSError.invalidProposal(
                    "a committer may not commit its own Update; it uses the path instead"
                )
            }
            guard scan.touchedLeaves.insert(leaf).inserted else {
                throw MLSError.invalidProposal("two Updates or Removes for \(leaf)")
            }
        case .remove(let leaf):
            guard leaf != committerLeaf else { throw MLSError.invalidProposal("a committer may not remove itself") }
            guard tree.leafNode(at: leaf) != nil else {
                throw MLSError.invalidProposal("Remove names \(leaf), which is not a member")
            }
            guard scan.touchedLeaves.insert(leaf).inserted else {
                throw MLSError.invalidProposal("two Updates or Removes for \(leaf)")
            }
            scan.removedLeaves.insert(leaf)
        case .preSharedKey(let id):
            try checkPreSharedKey(id)
            guard scan.pskIDs.insert(id).inserted else {
                throw MLSError.invalidProposal("the same PSK is proposed twice")
            }
        case .reInit(let reInit):
            guard reInit.version.rawValue >= context.version.rawValue else {
                throw MLSError.invalidProposal("ReInit may not lower the protocol version")
            }
        case .externalInit:
            guard isExternal else {
                throw MLSError.invalidProposal("ExternalInit is only allowed in an external commit")
            }
        case .groupContextExtensions:
            break
        }
    }

    /// §12.2's rules on how many proposals of each type one commit may carry; an
    /// external commit's are stricter (§12.4.3.2).
    private func checkProposalCounts(_ counts: [UInt16: Int], listCount: Int, isExternal: Bool) throws {
        if isExternal {
            let allowed: Set<UInt16> = [
                ProposalType.externalInit.rawValue, ProposalType.remove.rawValue, ProposalType.psk.rawValue,
            ]
            guard counts[ProposalType.externalInit.rawValue] == 1,
                counts[ProposalType.remove.rawValue, default: 0] <= 1,
                counts.keys.allSatisfy(allowed.contains)
            else {
                throw MLSError.invalidCommit(
                    "an external commit needs exactly one ExternalInit, at most one Remove and otherwise only PSKs"
                )
            }
        } else {
            guard counts[ProposalType.groupContextExtensions.rawValue, default: 0] <= 1 else {
                throw MLSError.invalidProposal("more than one GroupContextExtensions proposal")
            }
            guard counts[ProposalType.reinit.rawValue] == nil || listCount == 1 else {
                throw MLSError.invalidProposal("a ReInit must be committed alone")
            }
        }
    }

    /// §12.1.2: an Update's leaf is a valid `update` leaf with a new encryption key.
    func checkUpdate(_ leafNode: LeafNode, at leaf: LeafIndex, _ requiredCapabilities: RequiredCapabilities?) throws {
        guard case .update = leafNode.source else {
            throw MLSError.invalidLeafNode("an Update's leaf must have source update")
        }
        guard let current = tree.leafNode(at: leaf) else {
            throw MLSError.invalidProposal("Update from \(leaf), which is blank")
        }
        guard leafNode.encryptionKey != current.encryptionKey,
            tree.node(withEncryptionKey: leafNode.encryptionKey) == nil
        else {
            throw MLSError.invalidLeafNode("an Update must bring a fresh encryption key")
        }
        if let holder = tree.leaf(withSignatureKey: leafNode.signatureKey), holder != leaf {
            throw MLSError.invalidLeafNode("an Update may not take another member's signature key")
        }
        try tree.validateLeafNode(
            leafNode,
            at: leaf,
            groupID: context.groupID,
            requiredCapabilities: requiredCapabilities
        )
        try Self.checkCredential(leafNode, policy)
        try Self.checkSuccessor(leafNode, replacing: current, policy)
    }

    /// Which credential types the members use and which all of them support,
    /// as the tree keeps count of them: taken once per proposal list, before
    /// its Adds, so each added member is checked against the same group.
    struct CredentialSupport {
        var inUse: Set<CredentialType> = []
        var supportedByAll: Set<CredentialType>?

        init(_ tree: RatchetTree) {
            inUse = tree.credentialTypesInUse
            supportedByAll = tree.credentialTypesSupportedByAll
        }
    }

    /// KeyPackage validation (§10.1) against this group.
    func validateKeyPackage(
        _ keyPackage: KeyPackage,
        requiredCapabilities: RequiredCapabilities? = nil,
        now: UInt64? = nil,
        credentials: CredentialSupport? = nil
    ) throws {
        guard keyPackage.version == context.version, keyPackage.cipherSuite == context.cipherSuite else {
            throw MLSError.invalidKeyPackage("the KeyPackage is for another protocol version or cipher suite")
        }
        try Self.validateKeyPackageAlone(keyPackage, suite)
        let leaf = keyPackage.leafNode
        try tree.validateLeafNode(
            leaf,
            at: LeafIndex(0),
            groupID: context.groupID,
            requiredCapabilities: requiredCapabilities,
            now: now
        )
        let credentials = credentials ?? CredentialSupport(tree)
        for type in credentials.inUse where !leaf.capabilities.credentials.contains(type) {
            throw MLSError.invalidKeyPackage(
                "the new member does not support credential type \(type.rawValue), which a member uses"
            )
        }
        if let supported = credentials.supportedByAll, !supported.contains(leaf.credential.credentialType) {
            throw MLSError.invalidKeyPackage("a member does not support the new member's credential type")
        }
        try Self.checkCredential(leaf, policy)
    }

    /// The checks of §10.1 that need no group: signature, leaf source, distinct keys.
    static func validateKeyPackageAlone(_ keyPackage: KeyPackage, _ suite: CipherSuiteProvider) throws {
        guard case .keyPackage = keyPackage.leafNode.source else {
            throw MLSError.invalidKeyPackage("its leaf node must have source key_package")
        }
        guard
            try suite.verifyWithLabel(
                keyPackage.leafNode.signatureKey,
                label: "KeyPackageTBS",
                content: keyPackage.toBeSigned(),
                signature: keyPackage.signature
            )
        else {
            throw MLSError.invalidKeyPackage("the KeyPackage signature does not verify")
        }
        guard try keyPackage.leafNode.verifySignature(suite, groupID: [], leafIndex: LeafIndex(0)) else {
            throw MLSError.invalidKeyPackage("the leaf node signature does not verify")
        }
        guard keyPackage.initKey != keyPackage.leafNode.encryptionKey else {
            throw MLSError.invalidKeyPackage("the init key and the leaf's encryption key must differ")
        }
        for extensionType in keyPackage.extensions.map(\.extensionType)
        where !keyPackage.leafNode.capabilities.supports(extensionType) && extensionType != .lastResort {
            throw MLSError.invalidKeyPackage(
                "the KeyPackage carries extension \(extensionType.rawValue) its capabilities do not list"
            )
        }
    }

    // MARK: Commits (§12.4.2)

    /// A commit checked against the public state: what it changes and the
    /// next epoch's public values. Members add secrets to it; the server adopts it.
    struct StagedCommit {
        var content: AuthenticatedContent
        var proposals: [ProposalWithSender]
        var applied: AppliedProposals
        var committer: LeafIndex
        var path: UpdatePath?
        /// Epoch + 1, the new tree hash and extensions, and the old confirmed transcript hash.
        var provisionalContext: GroupContext
        var newContext: GroupContext
        var interimTranscriptHash: [UInt8]
    }

    /// Everything about a received commit that needs no secret: epoch,
    /// signature, proposal list, path shape and parent hashes, transcript hashes.
    func stage(_ content: AuthenticatedContent) throws -> StagedCommit {
        guard case .commit(let commit) = content.content.body else { throw MLSError.invalidMessage("not a commit") }
        try verify(content)
        let sender = content.content.sender
        let proposals = try resolve(commit, committer: sender)
        var applied = try apply(proposals, committer: sender)
        if applied.pathRequired, commit.path == nil {
            throw MLSError.invalidCommit("this commit must carry an UpdatePath")
        }
        let committer: LeafIndex
        // The path's leaf must meet the group's requirements as they are after this commit (§7.3, §12.1.7).
        let required: RequiredCapabilities? = try applied.context.extensions.decode(.requiredCapabilities)
        switch sender {
        case .member(let leaf):
            committer = leaf
            if let path = commit.path {
                try Self.checkCredential(path.leafNode, policy)
                if let old = tree.leafNode(at: leaf) { try Self.checkSuccessor(path.leafNode, replacing: old, policy) }
                try applied.tree.merge(path, from: leaf, groupID: context.groupID, requiredCapabilities: required)
            }
        case .newMemberCommit:
            guard let path = commit.path else {
                throw MLSError.invalidCommit("an external commit must carry an UpdatePath")
            }
            try Self.checkCredential(path.leafNode, policy)
            committer = try applied.tree.add(path.leafNode)
            try applied.tree.merge(
                path,
                from: committer,
                groupID: context.groupID,
                isNewLeaf: true,
                requiredCapabilities: required
            )
        default:
            throw MLSError.invalidMessage("a commit must come from a member or a new member")
        }
        return try finishStaging(
            content,
            proposals: proposals,
            applied: applied,
            committer: committer,
            path: commit.path
        )
    }

    /// The transcript and context of the epoch a commit creates (§8.2).
    func finishStaging(
        _ content: AuthenticatedContent,
        proposals: [ProposalWithSender],
        applied: AppliedProposals,
        committer: LeafIndex,
        path: UpdatePath?
    ) throws -> StagedCommit {
        var provisional = applied.context
        provisional.epoch = try nextEpoch()
        provisional.treeHash = applied.tree.treeHash
        guard let tag = content.auth.confirmationTag else {
            throw MLSError.invalidCommit("a commit needs a confirmation tag")
        }
        var newContext = provisional
        newContext.confirmedTranscriptHash = try TranscriptHash.confirmed(
            suite,
            interimBefore: interimTranscriptHash,
            commit: content
        )
        return StagedCommit(
            content: content,
            proposals: proposals,
            applied: applied,
            committer: committer,
            path: path,
            provisionalContext: provisional,
            newContext: newContext,
            interimTranscriptHash: try TranscriptHash.interim(
                suite,
                confirmed: newContext.confirmedTranscriptHash,
                confirmationTag: tag
            )
        )
    }

    /// The epoch a commit creates. A GroupInfo or Welcome may start a view at
    /// any epoch, 2^64 - 1 included, so the increment is checked, never wrapped.
    func nextEpoch() throws -> UInt64 {
        let (next, overflow) = context.epoch.addingReportingOverflow(1)
        guard !overflow else { throw MLSError.invalidCommit("the group is at epoch 2^64 - 1 and cannot advance") }
        return next
    }

    /// Moves to the epoch a staged commit creates.
    mutating func adopt(_ staged: StagedCommit) {
        context = staged.newContext
        tree = staged.applied.tree
        interimTranscriptHash = staged.interimTranscriptHash
        proposals.removeAll()
        proposalBytes = 0
    }
}

extension ExtensionType {
    /// `last_resort` (RFC 9420 §17.3 registry, from the MLS extensions work):
    /// marks a KeyPackage that may be handed out more than once.
    public static let lastResort = ExtensionType(rawValue: 0x000a)
}
