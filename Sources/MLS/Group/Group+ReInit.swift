/// Reinitialisation (RFC 9420 §11.2): a Commit carrying a ReInit proposal
/// (§12.1.5) closes the group; one member then creates its successor with the
/// ReInit's group ID, version, cipher suite and extensions, adds every member
/// by a KeyPackage of the new suite, and injects the old group's last
/// resumption PSK with usage `reinit` (§8.6), which proves to the joiners
/// that the new group continues the old one.
///
/// ```swift
/// let pq = try CipherSuite.mls256XWingChaCha20Poly1305SHA256Ed25519.provider()
/// let closing = try alice.commit(CommitOptions(reInit: ReInit(groupID: alice.groupID, cipherSuite: pq.suite)))
/// _ = try alice.process(closing.message)
/// _ = try bob.process(closing.message)  // both groups are now closed: bob.reInit != nil
/// let bobsNewBundle = try KeyPackageBundle(
///     pq,
///     credential: .basic(identity: Array("bob".utf8)),
///     signatureKeys: pq.generateSignatureKeyPair(),
///     lifetime: Lifetime(notBefore: 0, notAfter: .max)
/// )
/// let successor = try alice.createSuccessor(
///     signatureKeys: pq.generateSignatureKeyPair(),
///     keyPackages: [bobsNewBundle.keyPackage]
/// )
/// guard let welcome = successor.welcome else { throw MLSError.invalidWelcome("no Welcome") }
/// let bobInTheNewGroup = try bob.joinSuccessor(welcome: welcome, keyPackage: bobsNewBundle)
/// ```
extension Group {
    /// The resumption PSK of this closed group's last epoch under usage `reinit`
    /// (§8.6), for the successor's first Commit and Welcome. Its fresh nonce is
    /// Nh bytes of the successor's suite, where the PSK is used (§8.4).
    public func reInitPSK() throws -> (id: PreSharedKeyID, psk: [UInt8]) {
        guard let reInit else { throw MLSError.notReinitialized }
        let kind = PreSharedKeyID.Kind.resumption(usage: .reinit, groupID: groupID, epoch: epoch)
        return (PreSharedKeyID.fresh(kind, suite: try reInit.cipherSuite.provider()), epochSecrets.resumptionPSK)
    }

    /// Creates the successor of this group, which a ReInit closed (§11.2): a
    /// group with the ReInit's parameters whose first Commit adds `keyPackages`
    /// (one per other member, in the ReInit's cipher suite) with the reinit PSK.
    /// The caller becomes its first member with its current credential.
    ///
    /// The new group must hold the old group's members and no one else
    /// (§12.4.3.1 asks joiners to check that "all the members of the old group
    /// are also members of the new group"), compared by credential; otherwise
    /// this throws and nothing is sent. Members come with new keys, so whether a
    /// credential really is the old member's is the ``GroupPolicy/credentialValidator``'s
    /// judgement, as for any join (§5.3.1): with bare `basic` credentials any
    /// member could present a KeyPackage under another's name.
    ///
    /// - Returns: the new group at epoch 1 and the Welcome for the others
    ///   (nil when the caller was the only member).
    public func createSuccessor(
        signatureKeys: SignatureKeyPair,
        keyPackages: [KeyPackage],
        capabilities: Capabilities? = nil,
        forcePath: Bool = false,
        ratchetTreeInWelcome: Bool = true
    ) throws -> (group: Group, welcome: Welcome?) {
        guard let reInit else { throw MLSError.notReinitialized }
        guard reInit.version == .mls10 else {
            throw MLSError.invalidProposal("ReInit names an unknown protocol version")
        }
        guard let credential = ownCredential else { throw MLSError.groupInactive }
        let psk = try reInitPSK()
        var creating = policy
        creating.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk
        var group = try Group.create(
            reInit.cipherSuite.provider(),
            groupID: reInit.groupID,
            credential: credential,
            signatureKeys: signatureKeys,
            capabilities: capabilities,
            extensions: reInit.extensions,
            policy: creating
        )
        let output = try group.commit(
            CommitOptions(
                add: keyPackages,
                includePendingProposals: false,
                forcePath: forcePath,
                ratchetTreeInWelcome: ratchetTreeInWelcome,
                preSharedKeys: [psk.id]
            )
        )
        _ = try group.process(output.message)
        try checkSameMembers(
            as: group,
            MLSError.invalidCommit("the successor group must hold exactly the old group's members")
        )
        group.policy = policy
        guard case .welcome(let welcome)? = output.welcome else { return (group, nil) }
        return (group, welcome)
    }

    /// Joins the successor of this group, which a ReInit closed (§11.2), from
    /// its Welcome, with a KeyPackage of the ReInit's cipher suite. Beyond
    /// ``join(welcome:keyPackage:ratchetTree:policy:)`` it checks what
    /// §12.4.3.1 asks of a reinit Welcome: it names this group's reinit PSK of
    /// its last epoch, the new group's parameters are the ReInit's, and it
    /// holds this group's members and no one else (by credential).
    public func joinSuccessor(
        welcome: Welcome,
        keyPackage: KeyPackageBundle,
        ratchetTree: RatchetTree? = nil
    ) throws -> Group {
        try joinSuccessorNamingCreator(welcome: welcome, keyPackage: keyPackage, ratchetTree: ratchetTree).group
    }

    /// ``joinSuccessor(welcome:keyPackage:ratchetTree:)``, also naming the successor's creator:
    /// the leaf, in the new group, that signed the Welcome's GroupInfo (§12.4.3). The signature
    /// was verified with that leaf's signature key, so whoever built this Welcome holds the
    /// private key of that leaf; an application that knows whom to expect (the member that
    /// committed the ReInit, ``reInitCommitter``) compares the two leaves' keys.
    public func joinSuccessorNamingCreator(
        welcome: Welcome,
        keyPackage: KeyPackageBundle,
        ratchetTree: RatchetTree? = nil
    ) throws -> (group: Group, creator: LeafIndex) {
        guard let reInit else { throw MLSError.notReinitialized }
        let psk = try reInitPSK()
        let expected = psk.id.kind
        var joining = policy
        joining.otherGroupsResumptionPSKs[expected] = psk.psk
        let joined = try Group.joinNamingPSKs(
            welcome: welcome,
            keyPackage: keyPackage,
            ratchetTree: ratchetTree,
            policy: joining
        )
        var group = joined.group
        guard joined.psks.contains(where: { $0.kind == expected }) else {
            throw MLSError.invalidWelcome("the Welcome does not carry this group's reinit PSK")
        }
        let context = group.context
        guard context.groupID == reInit.groupID, context.version == reInit.version,
            context.cipherSuite == reInit.cipherSuite, context.extensions == reInit.extensions
        else {
            throw MLSError.invalidWelcome("the new group's parameters are not the ReInit's")
        }
        try checkSameMembers(as: group, MLSError.invalidWelcome("the new group does not hold exactly the old members"))
        group.policy = policy
        return (group, joined.signer)
    }

    /// Throws `error` unless `other` has exactly this group's members, compared
    /// by credential (each credential as often as here).
    private func checkSameMembers(as other: Group, _ error: MLSError) throws {
        let mine = try members.map { try $0.credential.tlsEncoded() }.sorted { $0.lexicographicallyPrecedes($1) }
        let theirs = try other.members.map { try $0.credential.tlsEncoded() }.sorted {
            $0.lexicographicallyPrecedes($1)
        }
        guard mine == theirs else { throw error }
    }
}
