/// What to put in a Commit.
public struct CommitOptions: Sendable {
    /// KeyPackages of clients to add.
    public var add: [KeyPackage]
    /// Members to remove.
    public var remove: [LeafIndex]
    /// New GroupContext extensions, replacing the current ones.
    public var groupContextExtensions: [Extension]?
    /// PSKs to inject into the new epoch's key schedule (§8.4), as PreSharedKey
    /// proposals by value; external ones must be in ``GroupPolicy/externalPSKs``
    /// of every member and joiner. Make ids with ``PreSharedKeyID/fresh(_:suite:)``.
    public var preSharedKeys: [PreSharedKeyID]
    /// Include proposals received this epoch (by reference), as §12.4 says a committer SHOULD.
    public var includePendingProposals: Bool
    /// When set, only the received proposals with these ProposalRefs are
    /// considered for inclusion (e.g. only members' own leaves); the usual
    /// filtering still applies. Ignored unless `includePendingProposals`.
    public var onlyPendingReferences: Set<[UInt8]>?
    /// Send an UpdatePath even when no proposal requires one.
    public var forcePath: Bool
    /// Put the ratchet tree into the Welcome's GroupInfo so joiners need no other source.
    public var ratchetTreeInWelcome: Bool
    /// Replaces this member's leaf content (credential, capabilities, extensions) in the path.
    public var leafNode: LeafNode?
    public var authenticatedData: [UInt8]
    /// A ReInit (§12.1.5) by value: the Commit then carries nothing else (§12.2)
    /// and closes the group. A received ReInit is committed by naming its
    /// ProposalRef in ``onlyPendingReferences``; it is never included otherwise.
    public var reInit: ReInit?

    public init(
        add: [KeyPackage] = [],
        remove: [LeafIndex] = [],
        groupContextExtensions: [Extension]? = nil,
        includePendingProposals: Bool = true,
        forcePath: Bool = false,
        ratchetTreeInWelcome: Bool = true,
        leafNode: LeafNode? = nil,
        authenticatedData: [UInt8] = [],
        onlyPendingReferences: Set<[UInt8]>? = nil,
        preSharedKeys: [PreSharedKeyID] = [],
        reInit: ReInit? = nil
    ) {
        self.add = add
        self.reInit = reInit
        self.preSharedKeys = preSharedKeys
        self.remove = remove
        self.groupContextExtensions = groupContextExtensions
        self.includePendingProposals = includePendingProposals
        self.forcePath = forcePath
        self.ratchetTreeInWelcome = ratchetTreeInWelcome
        self.leafNode = leafNode
        self.authenticatedData = authenticatedData
        self.onlyPendingReferences = onlyPendingReferences
    }

    /// An empty Commit with a path: a self-update for forward secrecy and PCS.
    public static let selfUpdate = CommitOptions(includePendingProposals: false, forcePath: true)
}

/// A Commit ready to send.
public struct CommitOutput: Sendable {
    /// The Commit, for the delivery service.
    public var message: MLSMessage
    /// The Welcome for the members it adds, if any.
    public var welcome: MLSMessage?
    /// What the Commit will change once accepted.
    public var summary: CommitSummary
}

extension Group {
    /// Creates a Commit (§12.4.2) and, when it adds members, their Welcome.
    ///
    /// The group itself does not move: the new state is kept as pending and
    /// adopted when ``process(_:)`` sees the delivery service echo this Commit.
    /// Making another Commit replaces the pending one.
    public mutating func commit(_ options: CommitOptions = CommitOptions()) throws -> CommitOutput {
        guard isActive else { throw MLSError.groupInactive }
        if let leafNode = options.leafNode, let current = tree.leafNode(at: ownLeaf) {
            try PublicGroup.checkCredential(leafNode, policy)
            try PublicGroup.checkSuccessor(leafNode, replacing: current, policy)
        }
        let me = Sender.member(ownLeaf)
        let list = proposalList(for: options)
        let withPath = try applyWithPath(list.map(\.proposal), options: options)
        let applied = withPath.applied

        let content = FramedContent(
            groupID: groupID,
            epoch: epoch,
            sender: me,
            authenticatedData: options.authenticatedData,
            body: .commit(Commit(proposals: list.map(\.item), path: withPath.path))
        )
        let wireFormat: WireFormat = policy.handshakeAsPublicMessage ? .publicMessage : .privateMessage
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: wireFormat,
            context: context,
            signer: signer,
            suite
        )
        let newEpoch = try newEpoch(after: signed, withPath)
        signed.auth.confirmationTag = newEpoch.confirmationTag
        let message = try protect(signed, as: wireFormat)

        let staged = try stage(signed, proposals: list.map(\.proposal), withPath, newEpoch)
        var keys = withPath.prepared?.privateKeys ?? treeKeys
        keys.prune(to: applied.tree)
        let next = try advanced(
            to: staged,
            secrets: newEpoch.secrets,
            treeKeys: keys,
            confirmationTag: newEpoch.confirmationTag
        )
        let summary = staged.summary(isOwnCommit: true, removedSelf: false)

        var welcome: MLSMessage?
        if !applied.added.isEmpty {
            welcome = .welcome(
                try next.welcome(
                    for: applied.added,
                    joinerSecret: newEpoch.joinerSecret,
                    pskSecret: newEpoch.pskSecret,
                    pskIDs: applied.pskIDs,
                    prepared: withPath.prepared,
                    includeTree: options.ratchetTreeInWelcome
                )
            )
        }
        pending = PendingCommit(content: signed, message: message, next: next, summary: summary)
        return CommitOutput(message: message, welcome: welcome, summary: summary)
    }

    /// The proposals a Commit carries: received ones by reference first (when the
    /// options include them), then the options' own by value, in the order §12.3
    /// applies them (GroupContextExtensions, Removes, Adds, then PreSharedKeys).
    private func proposalList(
        for options: CommitOptions
    ) -> [(item: ProposalOrRef, proposal: ProposalWithSender)] {
        let me = Sender.member(ownLeaf)
        var list: [(item: ProposalOrRef, proposal: ProposalWithSender)] = []
        // A ReInit is committed alone (§12.2): received proposals wait for the successor.
        if options.includePendingProposals, options.reInit == nil {
            list = committablePending(alongside: options).compactMap { cached in
                cached.reference.map { (.reference($0), cached) }
            }
        }
        var byValue: [Proposal] = []
        if let extensions = options.groupContextExtensions { byValue.append(.groupContextExtensions(extensions)) }
        byValue += options.remove.map { .remove(removed: $0) }
        byValue += options.add.map { .add($0) }
        byValue += options.preSharedKeys.map { .preSharedKey($0) }
        if let reInit = options.reInit { byValue.append(.reInit(reInit)) }
        list += byValue.map { (.proposal($0), ProposalWithSender(proposal: $0, sender: me)) }
        return list
    }

    /// The proposals applied to the tree, and the UpdatePath when one is required or
    /// asked for, encrypted under the provisional GroupContext (§12.4.2 steps 4-6).
    private struct CommitPath {
        var applied: PublicGroup.AppliedProposals
        var provisionalContext: GroupContext
        var path: UpdatePath?
        var prepared: PreparedUpdatePath?
        var commitSecret: [UInt8]
    }

    private func applyWithPath(_ proposals: [ProposalWithSender], options: CommitOptions) throws -> CommitPath {
        var applied = try publicGroup.apply(proposals, committer: .member(ownLeaf))
        // A ReInit to a suite this library lacks would close the group with no way on.
        if let reInit = applied.reInit { _ = try reInit.cipherSuite.provider() }
        let addedLeaves = Set(applied.added.map(\.leaf))
        var provisional = applied.context
        provisional.epoch = try publicGroup.nextEpoch()
        var path: UpdatePath?
        var prepared: PreparedUpdatePath?
        var commitSecret = KeySchedule.zeros(suite)
        if applied.pathRequired || options.forcePath {
            let fresh = try applied.tree.prepareUpdatePath(
                from: ownLeaf,
                signer: signer,
                groupID: groupID,
                leafNode: options.leafNode
            )
            applied.tree = fresh.tree
            provisional.treeHash = applied.tree.treeHash
            path = try fresh.encrypt(groupContext: provisional, excluding: addedLeaves)
            commitSecret = fresh.commitSecret
            prepared = fresh
        }
        provisional.treeHash = applied.tree.treeHash
        return CommitPath(
            applied: applied,
            provisionalContext: provisional,
            path: path,
            prepared: prepared,
            commitSecret: commitSecret
        )
    }

    /// The next epoch's GroupContext, secrets and confirmation tag (§8, §8.1).
    private struct NewEpoch {
        var context: GroupContext
        var joinerSecret: [UInt8]
        var pskSecret: [UInt8]?
        var secrets: EpochSecrets
        var confirmationTag: [UInt8]
    }

    private func newEpoch(after signed: AuthenticatedContent, _ withPath: CommitPath) throws -> NewEpoch {
        var newContext = withPath.provisionalContext
        newContext.confirmedTranscriptHash = try TranscriptHash.confirmed(
            suite,
            interimBefore: publicGroup.interimTranscriptHash,
            commit: signed
        )
        let pskSecret = try pskSecret(for: withPath.applied.pskIDs)
        let joinerSecret = try KeySchedule.joinerSecret(
            suite,
            initSecret: epochSecrets.initSecret,
            commitSecret: withPath.commitSecret,
            groupContext: newContext
        )
        let secrets = try KeySchedule.epochSecrets(
            suite,
            joinerSecret: joinerSecret,
            pskSecret: pskSecret,
            groupContext: newContext
        )
        let tag = TranscriptHash.confirmationTag(
            suite,
            confirmationKey: secrets.confirmationKey,
            confirmed: newContext.confirmedTranscriptHash
        )
        return NewEpoch(
            context: newContext,
            joinerSecret: joinerSecret,
            pskSecret: pskSecret,
            secrets: secrets,
            confirmationTag: tag
        )
    }

    /// The Commit as `process(_:)` would stage it on receipt, for the pending state.
    private func stage(
        _ signed: AuthenticatedContent,
        proposals: [ProposalWithSender],
        _ withPath: CommitPath,
        _ newEpoch: NewEpoch
    ) throws -> PublicGroup.StagedCommit {
        PublicGroup.StagedCommit(
            content: signed,
            proposals: proposals,
            applied: withPath.applied,
            committer: ownLeaf,
            path: withPath.path,
            provisionalContext: withPath.provisionalContext,
            newContext: newEpoch.context,
            interimTranscriptHash: try TranscriptHash.interim(
                suite,
                confirmed: newEpoch.context.confirmedTranscriptHash,
                confirmationTag: newEpoch.confirmationTag
            )
        )
    }

    /// Adds clients by their KeyPackages.
    public mutating func addMembers(_ keyPackages: [KeyPackage]) throws -> CommitOutput {
        try commit(CommitOptions(add: keyPackages))
    }

    /// Removes members; the path that comes with it locks them out of the next epoch.
    public mutating func removeMembers(_ leaves: [LeafIndex]) throws -> CommitOutput {
        try commit(CommitOptions(remove: leaves))
    }

    /// Refreshes this member's leaf and path keys (post-compromise security, §16.6).
    public mutating func selfUpdate() throws -> CommitOutput {
        try commit(.selfUpdate)
    }

    /// The cached proposals this member may include, in ProposalRef order:
    /// not its own update or removal (§12.2), nothing about a leaf or a
    /// field the options already change, and never two that §12.2 forbids
    /// together (two GroupContextExtensions, two changes to one leaf, two
    /// Adds of one client, one PSK twice). Received proposals are checked one
    /// by one; this keeps any combination of them from making this member's
    /// own commit fail. Proposals the application's policy would not let this
    /// member commit are left for someone who may.
    private func committablePending(alongside options: CommitOptions) -> [ProposalWithSender] {
        var touched = Set(options.remove)
        var addedKeys = Set(options.add.map(\.leafNode.signatureKey))
        var pskIDs = Set(options.preSharedKeys)
        var hasExtensions = options.groupContextExtensions != nil
        let sorted = publicGroup.proposals.values.sorted {
            ($0.reference ?? []).lexicographicallyPrecedes($1.reference ?? [])
        }
        let me = Sender.member(ownLeaf)
        let allowed = sorted.filter { cached in
            // A proposal from outside the group (an external sender, a new member's own Add,
            // §12.1.8) is committed only when the caller names it: swept in by default, an
            // outsider could join or change the group through any member's next commit.
            let isMembers = if case .member = cached.sender { true } else { false }
            return options.onlyPendingReferences.map { only in cached.reference.map(only.contains) ?? false }
                ?? isMembers
                && (try? publicGroup.checkProposalPolicy(cached)) != nil
                && (try? policy.commitPolicy.validate([cached], committer: me, group: publicGroup)) != nil
        }
        return allowed.filter { cached in
            switch cached.proposal {
            case .update:
                guard case .member(let leaf) = cached.sender, leaf != ownLeaf else { return false }
                return touched.insert(leaf).inserted
            case .remove(let leaf):
                return leaf != ownLeaf && touched.insert(leaf).inserted
            case .groupContextExtensions:
                defer { hasExtensions = true }
                return !hasExtensions
            case .add(let keyPackage):
                return addedKeys.insert(keyPackage.leafNode.signatureKey).inserted
            case .preSharedKey(let id):
                return pskIDs.insert(id).inserted
            case .reInit:
                // Only when the caller names it: a ReInit closes the group, so it
                // is never swept into a commit made for another reason.
                guard let reference = cached.reference, options.onlyPendingReferences?.contains(reference) == true
                else { return false }
                return true
            case .externalInit:
                return false
            }
        }
    }

    /// The group as it is after a staged commit, with the new epoch's secrets.
    func advanced(
        to staged: PublicGroup.StagedCommit,
        secrets: EpochSecrets,
        treeKeys: TreeKEMPrivateKeys,
        confirmationTag: [UInt8]
    ) throws -> Group {
        var next = self
        next.pending = nil
        next.updateKeys = [:]
        let removed = staged.applied.removed.map(\.leaf)
        for index in next.pastEpochs.indices { next.pastEpochs[index].removedLater.formUnion(removed) }
        next.pastEpochs.append(
            PastEpoch(
                context: context,
                tree: tree,
                secretTree: secretTree,
                senderDataSecret: epochSecrets.senderDataSecret,
                // Stamped when the Commit is merged, with its time (process(_:deliveredAt:)).
                endedAt: nil,
                removedLater: Set(removed)
            )
        )
        next.pastEpochs.removeFirst(max(0, next.pastEpochs.count - policy.retainedPastEpochs))
        next.publicGroup.adopt(staged)
        next.epochSecrets = secrets
        next.treeKeys = treeKeys
        next.confirmationTag = confirmationTag
        next.secretTree = SecretTree(
            suite,
            encryptionSecret: secrets.encryptionSecret,
            leafCount: next.tree.leafCount,
            configuration: policy.secretTree
        )
        next.resumptionPSKs[next.epoch] = secrets.resumptionPSK
        while next.resumptionPSKs.count > max(1, policy.retainedResumptionPSKs),
            let oldest = next.resumptionPSKs.keys.min()
        {
            next.resumptionPSKs.removeValue(forKey: oldest)
        }
        if let reInit = staged.applied.reInit {
            next.isActive = false
            next.reInit = reInit
            next.reInitCommitter = staged.committer
        }
        return next
    }

    /// psk_secret for the PSKs a commit or Welcome names (§8.4).
    func pskSecret(for ids: [PreSharedKeyID]) throws -> [UInt8]? {
        guard !ids.isEmpty else { return nil }
        let psks = try ids.map { id -> (id: PreSharedKeyID, psk: [UInt8]) in
            switch id.kind {
            case .external(let pskID):
                guard let psk = policy.externalPSKs[pskID] else { throw MLSError.missingPSK }
                return (id, psk)
            case .resumption(.application, let pskGroupID, let pskEpoch) where pskGroupID == groupID:
                guard let psk = resumptionPSKs[pskEpoch] else { throw MLSError.missingPSK }
                return (id, psk)
            case .resumption:
                guard let psk = policy.otherGroupsResumptionPSKs[id.kind] else { throw MLSError.missingPSK }
                return (id, psk)
            }
        }
        return try KeySchedule.pskSecret(suite, psks: psks)
    }

    /// The Welcome for new members (§12.4.3.1): the new epoch's GroupInfo
    /// under the welcome key, and for each member its GroupSecrets (joiner
    /// secret, the path secret of its lowest common ancestor with this member,
    /// PSK ids) encrypted to its KeyPackage's init key.
    func welcome(
        for added: [(leaf: LeafIndex, keyPackage: KeyPackage)],
        joinerSecret: [UInt8],
        pskSecret: [UInt8]?,
        pskIDs: [PreSharedKeyID],
        prepared: PreparedUpdatePath?,
        includeTree: Bool
    ) throws -> Welcome {
        let info = try groupInfo(includeRatchetTree: includeTree)
        let welcomeSecret = try KeySchedule.welcomeSecret(suite, joinerSecret: joinerSecret, pskSecret: pskSecret)
        let (key, nonce) = try KeySchedule.welcomeKeyAndNonce(suite, welcomeSecret: welcomeSecret)
        let encryptedGroupInfo = try suite.seal(key: key, nonce: nonce, aad: [], plaintext: info.tlsEncoded())
        let secrets = try added.map { leaf, keyPackage in
            let pathSecret = prepared.flatMap { prepared in
                prepared.commonAncestorNode(with: leaf).flatMap(prepared.pathSecret(for:))
            }
            let groupSecrets = GroupSecrets(joinerSecret: joinerSecret, pathSecret: pathSecret, psks: pskIDs)
            return EncryptedGroupSecrets(
                newMember: try keyPackage.reference(suite),
                encryptedGroupSecrets: try suite.encryptWithLabel(
                    keyPackage.initKey,
                    label: "Welcome",
                    context: encryptedGroupInfo,
                    plaintext: groupSecrets.tlsEncoded()
                )
            )
        }
        return Welcome(cipherSuite: suite.suite, secrets: secrets, encryptedGroupInfo: encryptedGroupInfo)
    }
}
