extension Group {
    /// Processes a message from the delivery service (§6, §12.4.2), judging the
    /// grace of past epochs by the time of processing (``GroupPolicy/now``). A
    /// delivery service that stamps its messages should be judged by its stamps:
    /// see ``process(_:deliveredAt:)``.
    public mutating func process(_ message: MLSMessage) throws -> ProcessedMessage {
        try process(message, deliveredAt: policy.now())
    }

    /// Processes a message from the delivery service (§6, §12.4.2).
    ///
    /// On success the group reflects the message (a stored proposal, a new
    /// epoch); on any error it is unchanged, except that past epochs whose
    /// grace has ended are deleted first, whatever the message. This member's
    /// own Commit, echoed back, is recognised and its pending state adopted.
    ///
    /// - Parameter time: when the delivery service accepted the message, in
    ///   seconds since the Unix epoch by its clock; nil when unknown. The grace
    ///   that keeps a past epoch's keys for late application messages (§15.3,
    ///   ``GroupPolicy/pastEpochGrace``) runs on these times: an epoch ends at the
    ///   time of the Commit that ended it, and its keys go when a message whose
    ///   time is more than the grace later is processed. So a member that was
    ///   offline between the two still reads what the delivery service relayed
    ///   within the grace by the same clock. The local clock (``GroupPolicy/now``)
    ///   must agree the grace is over, so a time far ahead (a faulty or dishonest
    ///   service's) cannot end it early; it only ever keeps keys longer. Whatever
    ///   the times say, the count bound ``GroupPolicy/retainedPastEpochs`` holds,
    ///   and a service that lies can do no more than it could by dropping
    ///   messages. KeyPackage lifetimes stay on ``GroupPolicy/now`` alone.
    public mutating func process(_ message: MLSMessage, deliveredAt time: UInt64?) throws -> ProcessedMessage {
        expirePastEpochs(at: time.map { delivered in policy.now().map { min(delivered, $0) } ?? delivered })
        var next = self
        let result = try next.processInPlace(message)
        if case .commit = result { next.markPreviousEpochEnded(at: time) }
        self = next
        return result
    }

    private mutating func processInPlace(_ message: MLSMessage) throws -> ProcessedMessage {
        switch message {
        case .publicMessage(let publicMessage):
            return try processPublic(publicMessage)
        case .privateMessage(let privateMessage):
            return try processPrivate(privateMessage)
        case .welcome, .groupInfo, .keyPackage:
            throw MLSError.invalidMessage(
                "a \(message.wireFormat.rawValue == 3 ? "Welcome" : "GroupInfo or KeyPackage") is not a message within a group"
            )
        }
    }

    private mutating func processPublic(_ message: PublicMessage) throws -> ProcessedMessage {
        let content = message.authenticatedContent
        guard content.content.groupID == groupID else {
            throw MLSError.invalidMessage("the message is for another group")
        }
        guard content.content.epoch == epoch else {
            throw MLSError.wrongEpoch(message: content.content.epoch, group: epoch)
        }
        guard try message.verifyMembershipTag(suite, membershipKey: epochSecrets.membershipKey, context: context) else {
            throw MLSError.invalidMessage("the membership tag does not verify")
        }
        return try processAuthenticated(content)
    }

    private mutating func processPrivate(_ message: PrivateMessage) throws -> ProcessedMessage {
        guard message.groupID == groupID else { throw MLSError.invalidMessage("the message is for another group") }
        if message.epoch != epoch {
            guard message.contentType == .application,
                let index = pastEpochs.firstIndex(where: { $0.context.epoch == message.epoch })
            else {
                throw MLSError.wrongEpoch(message: message.epoch, group: epoch)
            }
            return try decryptLate(message, from: index)
        }
        if try message.decryptSenderData(suite, senderDataSecret: epochSecrets.senderDataSecret).sender == ownLeaf {
            if let pending, pending.message == .privateMessage(message) {
                self = pending.next
                return .commit(pending.summary)
            }
            throw MLSError.ownMessage
        }
        let (content, generation) = try message.unprotect(
            secretTree: &secretTree,
            senderDataSecret: epochSecrets.senderDataSecret
        )
        if case .application(let data) = content.content.body {
            guard isActive else { throw MLSError.groupInactive }
            try publicGroup.verify(content)
            return .application(try applicationMessage(data, content, generation, tree: tree))
        }
        return try processAuthenticated(content)
    }

    /// Deletes the keys of past epochs that ended more than
    /// ``GroupPolicy/pastEpochGrace`` before ``GroupPolicy/now`` (§15.3 leaves the
    /// window to the application). ``process(_:)`` does this itself; call it to
    /// delete them sooner.
    public mutating func expirePastEpochs() { expirePastEpochs(at: policy.now()) }

    /// Deletes the keys of past epochs that ended more than
    /// ``GroupPolicy/pastEpochGrace`` before `time` (§15.3), on the clock their
    /// ends were stamped with (see ``process(_:deliveredAt:)``); nil deletes none.
    public mutating func expirePastEpochs(at time: UInt64?) {
        guard let time else { return }
        let grace = policy.pastEpochGrace
        // Subtract only what is smaller: no time, however hostile, traps. A clock that
        // went back (time < ended) keeps the epoch; the count still bounds it.
        pastEpochs.removeAll { past in past.endedAt.map { time > $0 && time - $0 > grace } ?? false }
    }

    /// Stamps the epoch a just-merged Commit ended with that Commit's time: the
    /// start of its grace (§15.3). `advanced(to:…)` cannot: for this member's own
    /// Commit it runs when the Commit is made, before the delivery service accepts it.
    private mutating func markPreviousEpochEnded(at time: UInt64?) {
        guard epoch > 0, let index = pastEpochs.lastIndex(where: { $0.context.epoch == epoch - 1 }) else { return }
        // The stored state writes "no time" as 0: a time of 0 is none here too, so a restore
        // never changes when an epoch's keys go.
        pastEpochs[index].endedAt = time == 0 ? nil : time
    }

    /// An application message from an earlier epoch, with that epoch's keys,
    /// from a sender that no later commit removed.
    private mutating func decryptLate(_ message: PrivateMessage, from index: Int) throws -> ProcessedMessage {
        var past = pastEpochs[index]
        let sender = try message.decryptSenderData(suite, senderDataSecret: past.senderDataSecret).sender
        if sender == ownLeaf { throw MLSError.ownMessage }
        guard !past.removedLater.contains(sender) else { throw MLSError.senderRemoved(sender) }
        let (content, generation) = try message.unprotect(
            secretTree: &past.secretTree,
            senderDataSecret: past.senderDataSecret
        )
        guard case .application(let data) = content.content.body, case .member(let sender) = content.content.sender,
            let leaf = past.tree.leafNode(at: sender),
            try content.verifySignature(suite, publicKey: leaf.signatureKey, context: past.context)
        else { throw MLSError.invalidSignature }
        pastEpochs[index] = past
        return .application(try applicationMessage(data, content, generation, tree: past.tree))
    }

    private func applicationMessage(
        _ data: [UInt8],
        _ content: AuthenticatedContent,
        _ generation: UInt32,
        tree: RatchetTree
    ) throws -> ApplicationMessage {
        guard case .member(let sender) = content.content.sender, let leaf = tree.leafNode(at: sender) else {
            throw MLSError.invalidMessage("application data must come from a member")
        }
        return ApplicationMessage(
            data: data,
            sender: sender,
            credential: leaf.credential,
            authenticatedData: content.content.authenticatedData,
            epoch: content.content.epoch,
            generation: generation
        )
    }

    /// A verified-to-be-unprotected proposal or commit.
    private mutating func processAuthenticated(_ content: AuthenticatedContent) throws -> ProcessedMessage {
        guard isActive else { throw MLSError.groupInactive }
        switch content.content.body {
        case .application:
            throw MLSError.invalidMessage("application data must be sent as PrivateMessage")
        case .proposal:
            try publicGroup.verify(content)
            // A PSK this member cannot resolve would make every commit that covers the
            // proposal fail here: refused on arrival, never cached (§8.4, §12.1.4) — after the
            // RFC's own rules and the application's policy, which say why first.
            var next = publicGroup
            let (reference, proposal) = try next.cacheProposal(content)
            if case .preSharedKey(let id) = proposal.proposal { _ = try pskSecret(for: [id]) }
            publicGroup = next
            return .proposal(reference: reference, proposal)
        case .commit:
            if content.content.sender == .member(ownLeaf) {
                guard let pending, pending.content == content else {
                    throw MLSError.invalidCommit("a commit from this member that is not its pending commit")
                }
                self = pending.next
                return .commit(pending.summary)
            }
            return .commit(try applyCommit(content))
        }
    }

    /// §12.4.2 "Processing a Commit" for a commit from someone else.
    private mutating func applyCommit(_ content: AuthenticatedContent) throws -> CommitSummary {
        let staged = try publicGroup.stage(content)
        if staged.applied.removed.contains(where: { $0.leaf == ownLeaf }) {
            // The path was encrypted past us, so the new epoch's secrets (and
            // its confirmation tag) are out of reach: record the removal and stop.
            publicGroup.adopt(staged)
            pending = nil
            isActive = false
            return staged.summary(isOwnCommit: false, removedSelf: true)
        }
        var keys = try ownKeys(after: staged)
        var commitSecret = KeySchedule.zeros(suite)
        if let path = staged.path {
            let result = try keys.applying(
                path,
                from: staged.committer,
                in: staged.applied.tree,
                groupContext: staged.provisionalContext,
                excluding: Set(staged.applied.added.map(\.leaf))
            )
            keys = result.keys
            commitSecret = result.commitSecret
        }
        keys.prune(to: staged.applied.tree)

        let joinerSecret = try KeySchedule.joinerSecret(
            suite,
            initSecret: initSecret(for: staged),
            commitSecret: commitSecret,
            groupContext: staged.newContext
        )
        let secrets = try KeySchedule.epochSecrets(
            suite,
            joinerSecret: joinerSecret,
            pskSecret: pskSecret(for: staged.applied.pskIDs),
            groupContext: staged.newContext
        )
        let tag = staged.content.auth.confirmationTag ?? []
        guard
            TranscriptHash.verifyConfirmationTag(
                suite,
                tag,
                confirmationKey: secrets.confirmationKey,
                confirmed: staged.newContext.confirmedTranscriptHash
            )
        else {
            throw MLSError.invalidCommit(
                "the confirmation tag does not match: this member and the committer disagree about the group"
            )
        }
        self = try advanced(to: staged, secrets: secrets, treeKeys: keys, confirmationTag: tag)
        return staged.summary(isOwnCommit: false, removedSelf: false)
    }

    /// This member's tree keys once the commit's proposals apply: when it
    /// commits this member's Update, the leaf key is the one made for it (§12.1.2).
    private func ownKeys(after staged: PublicGroup.StagedCommit) throws -> TreeKEMPrivateKeys {
        var keys = treeKeys
        guard staged.applied.updated.contains(ownLeaf) else { return keys }
        guard let leaf = staged.applied.tree.leafNode(at: ownLeaf), let key = updateKeys[leaf.encryptionKey] else {
            throw MLSError.invalidCommit("the commit applies an Update of this member's leaf that it never proposed")
        }
        keys.leafKey = key
        return keys
    }

    /// init_secret of the epoch a commit ends: the previous epoch's, or for an
    /// external commit the secret exported from its ExternalInit's KEM output (§8.3).
    private func initSecret(for staged: PublicGroup.StagedCommit) throws -> [UInt8] {
        guard let kemOutput = staged.applied.externalInit else { return epochSecrets.initSecret }
        let external = try epochSecrets.externalKeyPair(suite)
        return try suite.hpkeExportReceiver(
            privateKey: external.privateKey,
            kemOutput: kemOutput,
            info: [],
            exporterContext: Array("MLS 1.0 external init secret".utf8),
            length: suite.hashLength
        )
    }
}
