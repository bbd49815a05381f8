/// Serialising a member's whole group state into one blob and back (the
/// mls-rs model: one atomic record per group). The blob holds private keys
/// and epoch secrets: store it encrypted. Policy hooks are not part of it.
extension Group {
    /// 2 added, per past epoch, when it ended and which leaves were removed since;
    /// 3 the ReInit that closed the group; 4 the leaf that committed it.
    static let stateFormatVersion: UInt16 = 4

    /// The complete state, including a pending Commit and the kept past epochs.
    public func serialized() throws -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.stateFormatVersion)
        try encodeState(to: &writer)
        return writer.bytes
    }

    /// Restores a group from ``serialized()``; it then works as before.
    public init(serialized bytes: [UInt8], policy: GroupPolicy = GroupPolicy()) throws {
        var reader = TLSReader(bytes)
        let version = try reader.read(UInt16.self)
        guard (1...Self.stateFormatVersion).contains(version) else {
            throw MLSError.invalidState("the stored group state has an unknown format version")
        }
        do {
            self = try Group(decodingStateFrom: &reader, version: version, policy: policy)
            try reader.finish()
        } catch let error as MLSError {
            throw error
        } catch {
            throw MLSError.invalidState("the stored group state is corrupt: \(error)")
        }
    }

    private func encodeState(to writer: inout TLSWriter) throws {
        try publicGroup.encodeState(to: &writer)
        try writer.write(ownLeaf)
        try writer.writeOpaque(signer.bytes)
        try writer.writeOpaque(treeKeys.leafKey.bytes)
        try writer.writeVector { inner in
            for (node, key) in treeKeys.pathKeys.sorted(by: { $0.key < $1.key }) {
                inner.write(node.rawValue)
                try inner.writeOpaque(key.bytes)
            }
        }
        for secret in epochSecrets.all { try writer.writeOpaque(secret) }
        try secretTree.encodeState(to: &writer)
        try writer.writeOpaque(confirmationTag)
        try writer.writeVector { inner in
            for past in pastEpochs {
                try inner.write(past.context)
                try inner.writeOpaque(past.tree.encoded())
                try past.secretTree.encodeState(to: &inner)
                try inner.writeOpaque(past.senderDataSecret)
                inner.write(past.endedAt ?? 0)
                try inner.writeVector(past.removedLater.sorted())
            }
        }
        try writer.writeVector { inner in
            for (epoch, psk) in resumptionPSKs.sorted(by: { $0.key < $1.key }) {
                inner.write(epoch)
                try inner.writeOpaque(psk)
            }
        }
        if let pending {
            writer.write(UInt8(1))
            try writer.write(pending.content)
            try writer.write(pending.message)
            try writer.writeOpaque(pending.next.serialized())
            try pending.summary.encode(to: &writer)
        } else {
            writer.write(UInt8(0))
        }
        writer.write(UInt8(isActive ? 1 : 0))
        try writer.writeOptional(reInit.map { Proposal.reInit($0) })
        try writer.writeOptional(reInitCommitter)
    }

    private init(decodingStateFrom reader: inout TLSReader, version: UInt16, policy: GroupPolicy) throws {
        let publicGroup = try PublicGroup(decodingStateFrom: &reader, policy: policy)
        let suite = publicGroup.suite
        let ownLeaf = try reader.read(LeafIndex.self)
        let signer = SignaturePrivateKey(try reader.readOpaque())
        let leafKey = HPKEPrivateKey(try reader.readOpaque())
        let pathKeys = try reader.readVector(of: { inner in
            (NodeIndex(try inner.read(UInt32.self)), HPKEPrivateKey(try inner.readOpaque()))
        })
        let secrets = try EpochSecrets(all: (0..<EpochSecrets.count).map { _ in try reader.readOpaque() })
        let secretTree = try SecretTree(decodingStateFrom: &reader, suite, configuration: policy.secretTree)
        let confirmationTag = try reader.readOpaque()
        var pastEpochs = try reader.readVector(of: { inner in
            let pastContext = try inner.read(GroupContext.self)
            let pastTree = try RatchetTree(suite, encoded: inner.readOpaque())
            var past = PastEpoch(
                context: pastContext,
                tree: pastTree,
                secretTree: try SecretTree(decodingStateFrom: &inner, suite, configuration: policy.secretTree),
                senderDataSecret: try inner.readOpaque()
            )
            if version >= 2 {
                let ended = try inner.read(UInt64.self)
                past.endedAt = ended == 0 ? nil : ended
                past.removedLater = Set(try inner.readVector(of: LeafIndex.self))
            }
            return past
        })
        // Version 1 did not record when past epochs ended or who was removed
        // since, so their keys cannot be kept safely: drop them.
        if version < 2 { pastEpochs = [] }
        let psks = try reader.readVector(of: { inner in (try inner.read(UInt64.self), try inner.readOpaque()) })
        self.init(
            publicGroup: publicGroup,
            ownLeaf: ownLeaf,
            signer: signer,
            treeKeys: TreeKEMPrivateKeys(
                leafIndex: ownLeaf,
                leafKey: leafKey,
                pathKeys: Dictionary(pathKeys, uniquingKeysWith: { $1 })
            ),
            epochSecrets: secrets,
            secretTree: secretTree,
            confirmationTag: confirmationTag,
            pastEpochs: pastEpochs,
            resumptionPSKs: Dictionary(psks, uniquingKeysWith: { $1 })
        )
        pending = try reader.readOptional { inner in
            let content = try inner.read(AuthenticatedContent.self)
            let message = try inner.read(MLSMessage.self)
            let next = try Group(serialized: inner.readOpaque(), policy: policy)
            return PendingCommit(
                content: content,
                message: message,
                next: next,
                summary: try CommitSummary(from: &inner)
            )
        }
        switch try reader.readUInt8() {
        case 0: isActive = false
        case 1: isActive = true
        case let other: throw DecodingError.invalidOptionalPresence(other)
        }
        if version >= 3 {
            switch try reader.readOptional(Proposal.self) {
            case nil: break
            case .reInit(let value)?: reInit = value
            case _?: throw MLSError.invalidState("the stored ReInit is another kind of proposal")
            }
        }
        if version >= 4 {
            reInitCommitter = try reader.readOptional(LeafIndex.self)
            guard (reInitCommitter == nil) == (reInit == nil) else {
                throw MLSError.invalidState("the stored ReInit and its committer do not go together")
            }
        }
    }
}

extension PublicGroup {
    /// Unchanged since the first release: servers keep these blobs.
    static let stateFormatVersion: UInt16 = 1

    /// The public state alone (context, tree, transcript hash, proposals):
    /// what a delivery service stores per group.
    public func serialized() throws -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.stateFormatVersion)
        try encodeState(to: &writer)
        return writer.bytes
    }

    /// Restores a view from ``serialized()``; the tree is checked against the stored tree hash.
    public init(serialized bytes: [UInt8], policy: GroupPolicy = GroupPolicy()) throws {
        var reader = TLSReader(bytes)
        guard try reader.read(UInt16.self) == Self.stateFormatVersion else {
            throw MLSError.invalidState("the stored group view has an unknown format version")
        }
        self = try PublicGroup(decodingStateFrom: &reader, policy: policy)
        try reader.finish()
    }

    func encodeState(to writer: inout TLSWriter) throws {
        try writer.write(context)
        try writer.writeOpaque(tree.encoded())
        try writer.writeOpaque(interimTranscriptHash)
        try writer.writeVector { inner in
            for (reference, entry) in proposals.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                try inner.writeOpaque(reference)
                try inner.write(entry.sender)
                try inner.write(entry.proposal)
            }
        }
    }

    init(decodingStateFrom reader: inout TLSReader, policy: GroupPolicy) throws {
        let context = try reader.read(GroupContext.self)
        let tree = try RatchetTree(context.cipherSuite.provider(), encoded: reader.readOpaque())
        guard tree.treeHash == context.treeHash else {
            throw MLSError.invalidState("the stored tree does not match the stored context")
        }
        self.init(context: context, tree: tree, interimTranscriptHash: try reader.readOpaque(), policy: policy)
        for (reference, entry) in try reader.readVector(of: { inner -> ([UInt8], ProposalWithSender) in
            let reference = try inner.readOpaque()
            let sender = try inner.read(Sender.self)
            return (reference, ProposalWithSender(proposal: try inner.read(), sender: sender, reference: reference))
        }) {
            proposals[reference] = entry
            proposalBytes += try entry.proposal.tlsEncoded().count
        }
    }
}

extension EpochSecrets {
    static let count = 9

    /// The secrets in a fixed order, for storage.
    var all: [[UInt8]] {
        [
            senderDataSecret, encryptionSecret, exporterSecret, externalSecret, confirmationKey, membershipKey,
            resumptionPSK, epochAuthenticator, initSecret,
        ]
    }

    init(all: [[UInt8]]) throws {
        guard all.count == Self.count else { throw MLSError.invalidState("wrong number of epoch secrets") }
        self.init(
            senderDataSecret: all[0],
            encryptionSecret: all[1],
            exporterSecret: all[2],
            externalSecret: all[3],
            confirmationKey: all[4],
            membershipKey: all[5],
            resumptionPSK: all[6],
            epochAuthenticator: all[7],
            initSecret: all[8]
        )
    }
}

extension SecretTree {
    func encodeState(to writer: inout TLSWriter) throws {
        writer.write(leafCount.rawValue)
        try writer.writeVector { inner in
            for (node, secret) in nodeSecrets.sorted(by: { $0.key < $1.key }) {
                inner.write(node.rawValue)
                try inner.writeOpaque(secret)
            }
        }
        try writer.writeVector { inner in
            for (leaf, pair) in ratchets.sorted(by: { $0.key < $1.key }) {
                try inner.write(leaf)
                try pair.handshake.encodeState(to: &inner)
                try pair.application.encodeState(to: &inner)
            }
        }
    }

    init(
        decodingStateFrom reader: inout TLSReader,
        _ suite: CipherSuiteProvider,
        configuration: SecretTreeConfiguration
    ) throws {
        guard let leafCount = LeafCount(rawValue: try reader.read()) else {
            throw MLSError.invalidState("a stored secret tree has an invalid size")
        }
        let nodes = try reader.readVector(of: { inner in
            (NodeIndex(try inner.read(UInt32.self)), try inner.readOpaque())
        })
        let ratchets = try reader.readVector(of: { inner in
            (
                try inner.read(LeafIndex.self),
                (
                    handshake: try HashRatchet(decodingStateFrom: &inner),
                    application: try HashRatchet(decodingStateFrom: &inner)
                )
            )
        })
        self.init(
            suite,
            leafCount: leafCount,
            configuration: configuration,
            nodeSecrets: Dictionary(nodes, uniquingKeysWith: { $1 }),
            ratchets: Dictionary(ratchets.map { ($0.0, $0.1) }, uniquingKeysWith: { $1 })
        )
    }
}

extension HashRatchet {
    func encodeState(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(secret)
        writer.write(nextGeneration)
        try writer.writeVector { inner in
            for (generation, key) in retained.sorted(by: { $0.key < $1.key }) {
                inner.write(generation)
                try inner.writeOpaque(key.key)
                try inner.writeOpaque(key.nonce)
            }
        }
    }

    init(decodingStateFrom reader: inout TLSReader) throws {
        let secret = try reader.readOpaque()
        let next = try reader.read(UInt32.self)
        let retained = try reader.readVector(of: { inner -> (UInt32, RatchetKey) in
            let generation = try inner.read(UInt32.self)
            return (
                generation,
                RatchetKey(generation: generation, key: try inner.readOpaque(), nonce: try inner.readOpaque())
            )
        })
        self.init(secret: secret, nextGeneration: next, retained: Dictionary(retained, uniquingKeysWith: { $1 }))
    }
}

extension CommitSummary {
    func encode(to writer: inout TLSWriter) throws {
        try writer.write(committer)
        try writer.write(committerLeaf)
        for list in [added, removed] {
            try writer.writeVector { inner in
                for (leaf, credential) in list {
                    try inner.write(leaf)
                    try inner.write(credential)
                }
            }
        }
        try writer.writeVector(updated)
        writer.write(epoch)
        writer.write(UInt8(isOwnCommit ? 1 : 0))
        writer.write(UInt8(removedSelf ? 1 : 0))
        try writer.writeOptional(reInit.map { Proposal.reInit($0) })
    }

    init(from reader: inout TLSReader) throws {
        committer = try reader.read()
        committerLeaf = try reader.read()
        let readMembers = { (inner: inout TLSReader) in
            (try inner.read(LeafIndex.self), try inner.read(Credential.self))
        }
        added = try reader.readVector(of: readMembers).map { (index: $0.0, credential: $0.1) }
        removed = try reader.readVector(of: readMembers).map { (index: $0.0, credential: $0.1) }
        updated = try reader.readVector()
        epoch = try reader.read()
        isOwnCommit = try reader.readUInt8() == 1
        removedSelf = try reader.readUInt8() == 1
        if case .reInit(let value)? = try reader.readOptional(Proposal.self) { reInit = value } else { reInit = nil }
    }
}
