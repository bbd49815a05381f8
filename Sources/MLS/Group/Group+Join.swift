extension Group {
    /// Joins a group from a Welcome (§12.4.3.1) addressed to one of this
    /// client's KeyPackages.
    ///
    /// - Parameter ratchetTree: the group's tree when the Welcome's GroupInfo
    ///   does not carry it; either way it must match the GroupInfo's tree hash.
    public static func join(
        welcome: Welcome,
        keyPackage bundle: KeyPackageBundle,
        ratchetTree: RatchetTree? = nil,
        policy: GroupPolicy = GroupPolicy()
    ) throws -> Group {
        try joinNamingPSKs(welcome: welcome, keyPackage: bundle, ratchetTree: ratchetTree, policy: policy).group
    }

    /// ``join(welcome:keyPackage:ratchetTree:policy:)``, also returning the PSKs the Welcome names
    /// and the leaf that signed its GroupInfo (checked against that leaf's key in the new tree).
    static func joinNamingPSKs(
        welcome: Welcome,
        keyPackage bundle: KeyPackageBundle,
        ratchetTree: RatchetTree?,
        policy: GroupPolicy
    ) throws -> (group: Group, psks: [PreSharedKeyID], signer: LeafIndex) {
        let suite = try welcome.cipherSuite.provider()
        guard bundle.keyPackage.cipherSuite == welcome.cipherSuite else {
            throw MLSError.invalidWelcome("the Welcome is for another cipher suite than the KeyPackage")
        }
        let groupSecrets = try decryptGroupSecrets(welcome, bundle, suite)
        let pskSecret = try joinPSKSecret(groupSecrets.psks, suite, policy)
        let groupInfo = try decryptGroupInfo(welcome, groupSecrets, pskSecret: pskSecret, suite)

        try checkFirstEpoch(groupInfo, psks: groupSecrets.psks)
        let publicGroup = try PublicGroup(groupInfo: groupInfo, tree: ratchetTree, policy: policy)
        let tree = publicGroup.tree
        guard let ownLeaf = tree.members.first(where: { $0.leaf == bundle.keyPackage.leafNode })?.index else {
            throw MLSError.invalidWelcome("this client's leaf is not in the group's tree")
        }
        var keys = TreeKEMPrivateKeys(leafIndex: ownLeaf, leafKey: bundle.encryptionPrivateKey)
        if let pathSecret = groupSecrets.pathSecret {
            try storeWelcomePathSecrets(pathSecret, in: &keys, committer: groupInfo.signer, tree, suite)
        }

        let context = groupInfo.groupContext
        let secrets = try KeySchedule.epochSecrets(
            suite,
            joinerSecret: groupSecrets.joinerSecret,
            pskSecret: pskSecret,
            groupContext: context
        )
        guard
            TranscriptHash.verifyConfirmationTag(
                suite,
                groupInfo.confirmationTag,
                confirmationKey: secrets.confirmationKey,
                confirmed: context.confirmedTranscriptHash
            )
        else {
            throw MLSError.invalidWelcome("the GroupInfo's confirmation tag does not match the joiner secret")
        }
        let group = Group(
            publicGroup: publicGroup,
            ownLeaf: ownLeaf,
            signer: bundle.signaturePrivateKey,
            treeKeys: keys,
            epochSecrets: secrets,
            secretTree: SecretTree(
                suite,
                encryptionSecret: secrets.encryptionSecret,
                leafCount: tree.leafCount,
                configuration: policy.secretTree
            ),
            confirmationTag: groupInfo.confirmationTag,
            resumptionPSKs: [context.epoch: secrets.resumptionPSK]
        )
        return (group, groupSecrets.psks, groupInfo.signer)
    }

    /// §12.4.3.1: a reinit or branch PSK starts a new group, whose Welcome is for its first epoch.
    private static func checkFirstEpoch(_ groupInfo: GroupInfo, psks: [PreSharedKeyID]) throws {
        let startsFromAnotherGroup = psks.contains { id in
            if case .resumption(let usage, _, _) = id.kind { usage != .application } else { false }
        }
        guard !startsFromAnotherGroup || groupInfo.groupContext.epoch == 1 else {
            throw MLSError.invalidWelcome("a Welcome with a reinit or branch PSK must be for epoch 1")
        }
    }

    /// The GroupSecrets of the Welcome's entry for this KeyPackage (§12.4.3.1).
    private static func decryptGroupSecrets(
        _ welcome: Welcome,
        _ bundle: KeyPackageBundle,
        _ suite: CipherSuiteProvider
    ) throws -> GroupSecrets {
        let reference = try bundle.keyPackage.reference(suite)
        guard let entry = welcome.secrets.first(where: { $0.newMember == reference }) else {
            throw MLSError.invalidWelcome("the Welcome is not addressed to this KeyPackage")
        }
        do {
            return try GroupSecrets(
                tlsEncoded: suite.decryptWithLabel(
                    bundle.initPrivateKey,
                    label: "Welcome",
                    context: welcome.encryptedGroupInfo,
                    ciphertext: entry.encryptedGroupSecrets
                )
            )
        } catch {
            throw MLSError.invalidWelcome("the group secrets cannot be decrypted with this KeyPackage's init key")
        }
    }

    /// The Welcome's GroupInfo, opened with the welcome key and nonce (§8.3, §12.4.3.1).
    private static func decryptGroupInfo(
        _ welcome: Welcome,
        _ groupSecrets: GroupSecrets,
        pskSecret: [UInt8]?,
        _ suite: CipherSuiteProvider
    ) throws -> GroupInfo {
        let welcomeSecret = try KeySchedule.welcomeSecret(
            suite,
            joinerSecret: groupSecrets.joinerSecret,
            pskSecret: pskSecret
        )
        let (key, nonce) = try KeySchedule.welcomeKeyAndNonce(suite, welcomeSecret: welcomeSecret)
        let groupInfo: GroupInfo
        do {
            groupInfo = try GroupInfo(
                tlsEncoded: suite.open(key: key, nonce: nonce, aad: [], ciphertext: welcome.encryptedGroupInfo)
            )
        } catch {
            throw MLSError.invalidWelcome(
                "the GroupInfo cannot be decrypted: the Welcome is corrupt or the PSKs differ"
            )
        }
        guard groupInfo.groupContext.cipherSuite == welcome.cipherSuite else {
            throw MLSError.invalidWelcome("the GroupInfo's cipher suite differs from the Welcome's")
        }
        return groupInfo
    }

    /// Stores the committer's path secret for our lowest common ancestor with it, then
    /// the secret of every non-blank node above (§12.4.3.1), checking each derived key
    /// against the tree's.
    private static func storeWelcomePathSecrets(
        _ pathSecret: [UInt8],
        in keys: inout TreeKEMPrivateKeys,
        committer: LeafIndex,
        _ tree: RatchetTree,
        _ suite: CipherSuiteProvider
    ) throws {
        var node = tree.leafCount.commonAncestor(keys.leafIndex.nodeIndex, committer.nodeIndex)
        var secret = pathSecret
        while true {
            guard let parent = tree.parentNode(at: node),
                try keys.setPathSecret(secret, at: node, suite) == parent.encryptionKey
            else {
                throw MLSError.invalidWelcome("the path secret does not match the tree's keys")
            }
            guard let up = tree.leafCount.directPath(of: node).first(where: { tree.parentNode(at: $0) != nil })
            else { return }
            node = up
            secret = try suite.deriveSecret(secret, label: "path")
        }
    }

    /// psk_secret for a Welcome: a joiner knows external PSKs and the resumption
    /// PSKs of the groups it comes from (a branch or ReInit, §11.2, §11.3).
    static func joinPSKSecret(
        _ ids: [PreSharedKeyID],
        _ suite: CipherSuiteProvider,
        _ policy: GroupPolicy
    ) throws -> [UInt8]? {
        guard !ids.isEmpty else { return nil }
        // §12.2's PSK rules hold for a Welcome's list too: each nonce Nh bytes, no PSK twice.
        guard ids.allSatisfy({ $0.pskNonce.count == suite.hashLength }) else {
            throw MLSError.invalidWelcome("a PSK nonce must be Nh bytes long")
        }
        guard Set(ids).count == ids.count else { throw MLSError.invalidWelcome("the same PSK is listed twice") }
        let psks = try ids.map { id -> (id: PreSharedKeyID, psk: [UInt8]) in
            let psk: [UInt8]? =
                switch id.kind {
                case .external(let pskID): policy.externalPSKs[pskID]
                case .resumption: policy.otherGroupsResumptionPSKs[id.kind]
                }
            guard let psk else { throw MLSError.missingPSK }
            return (id, psk)
        }
        return try KeySchedule.pskSecret(suite, psks: psks)
    }

    /// Joins by an external Commit (§12.4.3.2) from a GroupInfo that carries
    /// `external_pub`. Returns the Commit to send and the group as it will be
    /// once the delivery service accepts that Commit.
    ///
    /// - Parameters:
    ///   - oldLeaf: this client's old leaf, to resynchronise after losing state.
    ///   - preSharedKeys: external PSKs (held in `policy.externalPSKs`, and by
    ///     every member) that the Commit injects as PreSharedKey proposals.
    public static func joinExternally(
        groupInfo: GroupInfo,
        ratchetTree: RatchetTree? = nil,
        credential: Credential,
        signatureKeys: SignatureKeyPair,
        capabilities: Capabilities? = nil,
        removing oldLeaf: LeafIndex? = nil,
        preSharedKeys: [PreSharedKeyID] = [],
        authenticatedData: [UInt8] = [],
        policy: GroupPolicy = GroupPolicy()
    ) throws -> (group: Group, commit: MLSMessage) {
        let publicGroup = try PublicGroup(groupInfo: groupInfo, tree: ratchetTree, policy: policy)
        let suite = publicGroup.suite
        let (kemOutput, initSecret) = try exportExternalInit(groupInfo, suite)
        let proposals = externalCommitProposals(kemOutput, removing: oldLeaf, preSharedKeys)
        let list = proposals.map { ProposalWithSender(proposal: $0, sender: .newMemberCommit) }
        let (applied, ownLeaf, prepared, provisional, path) = try externalCommitPath(
            publicGroup,
            list,
            joiner: (credential, signatureKeys, capabilities)
        )

        let content = FramedContent(
            groupID: publicGroup.groupID,
            epoch: publicGroup.epoch,
            sender: .newMemberCommit,
            authenticatedData: authenticatedData,
            body: .commit(Commit(proposals: proposals.map { .proposal($0) }, path: path))
        )
        var signed = try AuthenticatedContent.sign(
            content,
            wireFormat: .publicMessage,
            context: publicGroup.context,
            signer: signatureKeys.privateKey,
            suite
        )
        let (newContext, secrets, tag) = try externalCommitSecrets(
            publicGroup,
            signed,
            provisional: provisional,
            initSecret: initSecret,
            commitSecret: prepared.commitSecret,
            pskSecret: joinPSKSecret(applied.pskIDs, suite, policy)
        )
        signed.auth.confirmationTag = tag
        let message = MLSMessage.publicMessage(
            try PublicMessage.protect(signed, membershipKey: nil, context: publicGroup.context, suite)
        )

        let staged = PublicGroup.StagedCommit(
            content: signed,
            proposals: list,
            applied: applied,
            committer: ownLeaf,
            path: path,
            provisionalContext: provisional,
            newContext: newContext,
            interimTranscriptHash: try TranscriptHash.interim(
                suite,
                confirmed: newContext.confirmedTranscriptHash,
                confirmationTag: tag
            )
        )
        let group = externalJoiner(
            publicGroup,
            adopting: staged,
            signer: signatureKeys.privateKey,
            treeKeys: prepared.privateKeys,
            secrets: secrets,
            confirmationTag: tag
        )
        return (group, message)
    }

    /// An external Commit's proposals (§12.4.3.2): its ExternalInit, at most
    /// one Remove of the joiner's old leaf, and PSKs.
    private static func externalCommitProposals(
        _ kemOutput: [UInt8],
        removing oldLeaf: LeafIndex?,
        _ preSharedKeys: [PreSharedKeyID]
    ) -> [Proposal] {
        var proposals: [Proposal] = [.externalInit(kemOutput: kemOutput)]
        if let oldLeaf { proposals.append(.remove(removed: oldLeaf)) }
        return proposals + preSharedKeys.map { .preSharedKey($0) }
    }

    /// This client's leaf as an Add would place it; the UpdatePath then replaces its
    /// encryption key (§12.4.3.2), so the placeholder's private key is never kept.
    private static func placeholderLeaf(
        credential: Credential,
        signatureKeys: SignatureKeyPair,
        capabilities: Capabilities?,
        _ suite: CipherSuiteProvider
    ) throws -> LeafNode {
        let placeholderKeys = try suite.generateHPKEKeyPair()
        return LeafNode(
            encryptionKey: placeholderKeys.publicKey,
            signatureKey: signatureKeys.publicKey,
            credential: credential,
            capabilities: capabilities
                ?? Capabilities(cipherSuites: [suite.suite], credentials: [credential.credentialType]),
            source: .update
        )
    }

    /// The external Commit's proposals applied, this client's leaf added where an Add
    /// would put it, and the UpdatePath from it under the provisional GroupContext.
    private static func externalCommitPath(
        _ publicGroup: PublicGroup,
        _ list: [ProposalWithSender],
        joiner: (credential: Credential, signatureKeys: SignatureKeyPair, capabilities: Capabilities?)
    ) throws -> (
        applied: PublicGroup.AppliedProposals, ownLeaf: LeafIndex, prepared: PreparedUpdatePath,
        provisional: GroupContext, path: UpdatePath
    ) {
        var applied = try publicGroup.apply(list, committer: .newMemberCommit)
        let ownLeaf = try applied.tree.add(
            placeholderLeaf(
                credential: joiner.credential,
                signatureKeys: joiner.signatureKeys,
                capabilities: joiner.capabilities,
                publicGroup.suite
            )
        )
        let prepared = try applied.tree.prepareUpdatePath(
            from: ownLeaf,
            signer: joiner.signatureKeys.privateKey,
            groupID: publicGroup.groupID
        )
        applied.tree = prepared.tree
        var provisional = applied.context
        provisional.epoch = try publicGroup.nextEpoch()
        provisional.treeHash = applied.tree.treeHash
        let path = try prepared.encrypt(groupContext: provisional)
        return (applied, ownLeaf, prepared, provisional, path)
    }

    /// The new epoch's GroupContext, secrets and confirmation tag for an external
    /// Commit: its init_secret comes from the HPKE export, not the previous epoch (§8.3).
    private static func externalCommitSecrets(
        _ publicGroup: PublicGroup,
        _ signed: AuthenticatedContent,
        provisional: GroupContext,
        initSecret: [UInt8],
        commitSecret: [UInt8],
        pskSecret: [UInt8]?
    ) throws -> (newContext: GroupContext, secrets: EpochSecrets, confirmationTag: [UInt8]) {
        let suite = publicGroup.suite
        var newContext = provisional
        newContext.confirmedTranscriptHash = try TranscriptHash.confirmed(
            suite,
            interimBefore: publicGroup.interimTranscriptHash,
            commit: signed
        )
        let joinerSecret = try KeySchedule.joinerSecret(
            suite,
            initSecret: initSecret,
            commitSecret: commitSecret,
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
        return (newContext, secrets, tag)
    }

    /// kem_output and init_secret for an external Commit: an HPKE export to the
    /// GroupInfo's external_pub (§8.3, §12.4.3.2).
    private static func exportExternalInit(
        _ groupInfo: GroupInfo,
        _ suite: CipherSuiteProvider
    ) throws -> (kemOutput: [UInt8], secret: [UInt8]) {
        guard let externalPub: HPKEPublicKey = try groupInfo.extensions.decode(.externalPub) else {
            throw MLSError.invalidMessage(
                "the GroupInfo has no external_pub, so the group does not accept external joins"
            )
        }
        return try suite.hpkeExportSender(
            publicKey: externalPub,
            info: [],
            exporterContext: Array("MLS 1.0 external init secret".utf8),
            length: suite.hashLength
        )
    }

    /// The joiner's group once its external Commit is accepted: the old public state
    /// with the staged Commit adopted, and the new epoch's secrets.
    private static func externalJoiner(
        _ publicGroup: PublicGroup,
        adopting staged: PublicGroup.StagedCommit,
        signer: SignaturePrivateKey,
        treeKeys: TreeKEMPrivateKeys,
        secrets: EpochSecrets,
        confirmationTag: [UInt8]
    ) -> Group {
        var group = Group(
            publicGroup: publicGroup,
            ownLeaf: staged.committer,
            signer: signer,
            treeKeys: treeKeys,
            epochSecrets: secrets,
            secretTree: SecretTree(
                publicGroup.suite,
                encryptionSecret: secrets.encryptionSecret,
                leafCount: staged.applied.tree.leafCount,
                configuration: publicGroup.policy.secretTree
            ),
            confirmationTag: confirmationTag
        )
        group.publicGroup.adopt(staged)
        group.resumptionPSKs = [staged.newContext.epoch: secrets.resumptionPSK]
        return group
    }
}
