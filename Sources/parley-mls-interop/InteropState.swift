import MLS

/// One client's groups and unused KeyPackages, under the ids the harness uses.
/// Group states are values (RFC 9420 §14: a Commit changes nothing until its
/// echo is processed), so each RPC takes a copy, works on it and stores it back.
actor InteropState {
    /// A group state and what the harness will ask about next.
    struct Member {
        var group: Group
        /// The Commit this member created last, adopted by HandlePendingCommit.
        var pendingCommit: MLSMessage?
        /// The ProposalRefs of this member's own standalone proposals by their
        /// encoding: its own PrivateMessage cannot be decrypted again.
        var ownProposals: [[UInt8]: [UInt8]] = [:]
    }

    /// A KeyPackage waiting for its Welcome, and the PSKs stored for the join.
    struct Transaction {
        var bundle: KeyPackageBundle
        var externalPSKs: [[UInt8]: [UInt8]] = [:]
    }

    /// A member whose group a ReInit closed (RFC 9420 §11.2), with the
    /// KeyPackage of the new suite it joins the successor by.
    struct ReInitMember {
        var old: Group
        var bundle: KeyPackageBundle
    }

    private var members: [UInt32: Member] = [:]
    private var reInits: [UInt32: ReInitMember] = [:]
    /// External senders' signature keys (RFC 9420 §12.1.8.1), by signer id.
    private var signers: [UInt32: SignatureKeyPair] = [:]
    private var transactions: [UInt32: Transaction] = [:]
    private var nextID: UInt32 = 1

    private func newID() -> UInt32 {
        defer { nextID &+= 1 }
        return nextID
    }

    func add(_ member: Member) -> UInt32 {
        let id = newID()
        members[id] = member
        return id
    }

    func add(_ transaction: Transaction) -> UInt32 {
        let id = newID()
        transactions[id] = transaction
        return id
    }

    func member(_ id: UInt32) throws -> Member {
        guard let member = members[id] else { throw InteropError.unknownState(id) }
        return member
    }

    func replace(_ id: UInt32, with member: Member) { members[id] = member }

    func transaction(_ id: UInt32) throws -> Transaction {
        guard let transaction = transactions[id] else { throw InteropError.unknownTransaction(id) }
        return transaction
    }

    func finishTransaction(_ id: UInt32) { transactions[id] = nil }

    /// The closed group moves from its state id to a new reinit id.
    func reInit(_ stateID: UInt32, _ reInit: ReInitMember) -> UInt32 {
        members[stateID] = nil
        let id = newID()
        reInits[id] = reInit
        return id
    }

    func reInitMember(_ id: UInt32) throws -> ReInitMember {
        guard let reInit = reInits[id] else { throw InteropError.unknownReInit(id) }
        return reInit
    }

    func finishReInit(_ id: UInt32) { reInits[id] = nil }

    func add(signer: SignatureKeyPair) -> UInt32 {
        let id = newID()
        signers[id] = signer
        return id
    }

    func signer(_ id: UInt32) throws -> SignatureKeyPair {
        guard let signer = signers[id] else { throw InteropError.unknownSigner(id) }
        return signer
    }

    /// StorePSK names a group state or a pending KeyPackage transaction.
    func storePSK(_ id: UInt32, pskID: [UInt8], secret: [UInt8]) throws {
        if var member = members[id] {
            member.group.policy.externalPSKs[pskID] = secret
            members[id] = member
        } else if var transaction = transactions[id] {
            transaction.externalPSKs[pskID] = secret
            transactions[id] = transaction
        } else {
            throw InteropError.unknownState(id)
        }
    }

    func free(_ id: UInt32) { members[id] = nil }
}
