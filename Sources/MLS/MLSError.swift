/// Errors raised by the MLS library. Decoding problems are reported as
/// ``DecodingError`` and encoding problems as ``EncodingError``.
public enum MLSError: Error, Hashable, Sendable {
    /// The cipher suite is not one this library implements (X448/Ed448 suites 4 and 6,
    /// GREASE and private-use values): swift-crypto has no X448 or Ed448.
    case unsupportedCipherSuite(UInt16)
    /// A public or private key has the wrong length or is not a valid point / scalar.
    case invalidKey(String)
    /// A signature did not verify.
    case invalidSignature
    /// AEAD or HPKE decryption failed: wrong key, nonce or tampered ciphertext.
    case decryptionFailed
    /// A KDF was asked for more output than it can produce (RFC 5869: 255 × Nh).
    case invalidLength(Int)
    /// HPKE DeriveKeyPair exhausted its 256 candidates (RFC 9180 §7.1.3).
    case deriveKeyPairFailed
    /// A node index or leaf index does not fit the tree it was used with.
    case invalidTreeIndex(UInt32)
    /// A ratchet generation that was already consumed or deleted: a replay
    /// or a message older than the kept window (RFC 9420 §9.2).
    case generationAlreadyUsed(UInt32)
    /// A generation further ahead than the configured window allows.
    case generationTooFarAhead(requested: UInt32, current: UInt32)
    /// A sender's ratchet reached generation 2^32 - 1; the epoch must change.
    case ratchetExhausted
    /// A ratchet tree or a change to it breaks a rule of RFC 9420 §7 / §12.1;
    /// the sentence says which.
    case invalidTree(String)
    /// A LeafNode fails validation (RFC 9420 §7.3).
    case invalidLeafNode(String)
    /// An UpdatePath cannot be applied or decrypted (RFC 9420 §7.5, §7.6).
    case invalidUpdatePath(String)
    /// A message is malformed or not valid for this group and epoch (RFC 9420 §6).
    case invalidMessage(String)
    /// A late application message from an earlier epoch whose sender a later
    /// commit removed: a removed member's keys no longer speak for the group.
    case senderRemoved(LeafIndex)
    /// A message was for another epoch than the group's current one.
    case wrongEpoch(message: UInt64, group: UInt64)
    /// A proposal or proposal list breaks RFC 9420 §12.1–§12.2.
    case invalidProposal(String)
    /// This epoch already caches as many proposals, or as many bytes of them,
    /// as ``GroupPolicy`` allows; the proposal was not stored.
    case tooManyProposals(maximumCount: Int, maximumBytes: Int)
    /// A Commit is invalid (RFC 9420 §12.4); the sentence says why.
    case invalidCommit(String)
    /// A KeyPackage fails validation (RFC 9420 §10.1).
    case invalidKeyPackage(String)
    /// A Welcome cannot be used to join (RFC 9420 §12.4.3.1).
    case invalidWelcome(String)
    /// A GroupInfo carries no `ratchet_tree` extension and no tree was supplied:
    /// the joiner must get the tree elsewhere (§12.4.3.1 leaves how to the application).
    case ratchetTreeNotFound
    /// The application's policy hook refused a credential, a proposal or a
    /// commit; the hook's own error travels inside, as a value.
    case rejectedByPolicy(PolicyRejection)
    /// The group can no longer be used: this member was removed or the group was reinitialised.
    case groupInactive
    /// An external proposal's signer is not in the group's `external_senders` extension (§12.1.8.1).
    case notAnExternalSender
    /// A successor group (§11.2) was asked of a group that no ReInit has closed.
    case notReinitialized
    /// A message this member sent itself; it cannot be decrypted again (its key is deleted).
    case ownMessage
    /// A pre-shared key the message needs is not available.
    case missingPSK
    /// Stored group state could not be restored.
    case invalidState(String)
}

/// An application hook's refusal (``CredentialValidator``, ``CommitPolicy``),
/// carried as a value so the application maps its own error type at its edge
/// instead of matching text.
public struct PolicyRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// What the hook was asked about.
    public enum Subject: String, Hashable, Sendable {
        case credential, proposal, commit
    }

    public var subject: Subject
    /// The error the hook threw.
    public var error: any Error

    public init(_ subject: Subject, _ error: any Error) {
        self.subject = subject
        self.error = error
    }

    public var description: String { "\(subject.rawValue) refused: \(error)" }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.subject == rhs.subject && lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(subject)
        hasher.combine(description)
    }
}
