import Foundation
import MLS

/// Parley's rules for groups, enforced identically by every member and by the
/// server (RFC 9420 §12.2 lets applications add such rules). They judge who
/// proposed each change, not only who committed it:
/// - a member's credential is a `basic` credential naming a valid username,
///   and a member's leaf keeps its username (§5.3.1);
/// - the admins are listed in the `parley_admins` GroupContext extension;
/// - only an admin proposes adding members, removing others, or new group
///   extensions, and only an admin commits proposals others made, except a
///   member's own leave, which any member may commit; any member may add a
///   device of its own account (linking);
/// - where a ``DeviceDirectoryCheck`` is given (the server), every added device
///   must be active in its account's signed device list, whoever adds it;
/// - group extensions keep a decodable, non-empty admin list that still names
///   every current admin: the list cannot demote an admin or be seized;
/// - group extensions keep a valid group name (`GroupNameExtension.swift`) once
///   the group has one;
/// - a member may remove itself (leave), but an admin is never removed;
/// - a ReInit only upgrades (`parley upgrade`, ParleyGroupPolicy+Upgrade.swift): an admin's,
///   from the standard suite to the post-quantum one, keeping the group's extensions; the
///   one PSK is the successor's reinit PSK in its first commit;
/// - other PSK proposals, ExternalInit proposals, external senders and external
///   commits are refused: members join by Welcome.
public enum ParleyGroupPolicy {
    /// A private-use extension type (RFC 9420 §17.3: 0xF000–0xFFFF) carrying the admins' usernames.
    public static let adminsExtension = ExtensionType(rawValue: 0xF0A0)

    public static func adminsExtension(_ admins: [String]) throws -> Extension {
        var writer = TLSWriter()
        try writer.writeVector { inner in
            for admin in admins { try inner.writeOpaque(Array(admin.utf8)) }
        }
        return Extension(extensionType: adminsExtension, extensionData: writer.bytes)
    }

    /// The admins named in `extensions`.
    public static func admins(in extensions: [Extension]) throws -> [String] {
        guard let data = extensions.first(adminsExtension) else { return [] }
        var reader = TLSReader(data)
        let names = try reader.readVector(of: { try $0.readOpaque() })
        try reader.finish()
        return names.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The username a credential names, if it is a well-formed Parley credential.
    public static func username(of credential: Credential) -> String? {
        guard case .basic(let identity) = credential else { return nil }
        let name = String(decoding: identity, as: UTF8.self)
        return Username.isValid(name) ? name : nil
    }

    /// The policy for a group: both hooks, the usual bounds, and the real
    /// clock, so KeyPackage lifetimes are enforced when members are added.
    public static func groupPolicy(
        credentialValidator: any CredentialValidator = CredentialRule(),
        deviceDirectory: (any DeviceDirectoryCheck)? = nil,
        now: @escaping @Sendable () -> UInt64? = ParleyGroupPolicy.currentTime
    ) -> GroupPolicy {
        GroupPolicy(
            credentialValidator: credentialValidator,
            commitPolicy: CommitRule(deviceDirectory: deviceDirectory),
            now: now
        )
    }

    /// Seconds since the Unix epoch; nil (no lifetime checks) only if the clock is before 1970.
    @Sendable public static func currentTime() -> UInt64? {
        UInt64(exactly: Date().timeIntervalSince1970.rounded(.down))
    }

    /// Accepts `basic` credentials naming a valid username, and a member's
    /// new leaf only when it names the same username as before.
    public struct CredentialRule: CredentialValidator {
        public init() {}

        public func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            guard ParleyGroupPolicy.username(of: credential) != nil else { throw ParleyPolicyError.invalidCredential }
        }

        public func validateSuccessor(_ credential: Credential, replacing old: Credential) throws {
            let name = ParleyGroupPolicy.username(of: credential)
            guard name != nil, name == ParleyGroupPolicy.username(of: old) else {
                throw ParleyPolicyError.identityChange
            }
        }
    }

    /// The admin rules, by proposer and by committer.
    public struct CommitRule: CommitPolicy {
        /// The device directory the Add rule consults; nil where none is at hand (clients check
        /// added devices against the signed lists themselves, `DeviceDirectory` in ParleyClient).
        let deviceDirectory: (any DeviceDirectoryCheck)?

        public init(deviceDirectory: (any DeviceDirectoryCheck)? = nil) {
            self.deviceDirectory = deviceDirectory
        }

        public func validateProposal(_ item: ProposalWithSender, group: PublicGroup) throws {
            let proposer = try Self.memberLeaf(item.sender)
            let roster = try Roster(group)
            let proposerIsAdmin = roster.isAdmin(proposer)
            switch item.proposal {
            case .add(let keyPackage):
                try checkAdd(keyPackage, proposer: proposer, roster: roster)
            case .remove(let leaf):
                // An admin may drop another device of its own (a lost or stolen one);
                // `validate` keeps at least one of its devices in the group.
                let ownOtherDevice =
                    leaf != proposer && roster.name(leaf) != nil && roster.name(leaf) == roster.name(proposer)
                guard !roster.isAdmin(leaf) || ownOtherDevice else { throw ParleyPolicyError.adminCannotBeRemoved }
                // Any member may drop its own account's other device (a revoked one).
                guard leaf == proposer || proposerIsAdmin || ownOtherDevice else { throw ParleyPolicyError.notAdmin }
            case .update:
                // Always the proposer's own leaf; its identity is CredentialRule's successor check.
                break
            case .groupContextExtensions(let extensions):
                guard proposerIsAdmin else { throw ParleyPolicyError.notAdmin }
                guard let admins = try? ParleyGroupPolicy.admins(in: extensions), !admins.isEmpty,
                    admins.allSatisfy(Username.isValid)
                else {
                    throw ParleyPolicyError.invalidAdminList
                }
                guard roster.admins.isSubset(of: admins) else { throw ParleyPolicyError.adminListChange }
                try ParleyGroupPolicy.checkGroupName(replacing: group.context.extensions, with: extensions)
            case .reInit(let reInit):
                try ParleyGroupPolicy.checkUpgrade(reInit, proposerIsAdmin: proposerIsAdmin, group: group)
            case .preSharedKey(let id):
                try ParleyGroupPolicy.checkSuccessorPSK(id, proposerIsAdmin: proposerIsAdmin, group: group)
            case .externalInit:
                throw ParleyPolicyError.proposalNotAllowed(item.proposal.proposalType)
            }
        }

        public func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {
            let committerLeaf = try Self.memberLeaf(committer)
            let roster = try Roster(group)
            try roster.checkEveryAdminStays(removing: proposals)
            guard !roster.isAdmin(committerLeaf) else { return }
            // A non-admin commits only its own proposals and others' leaves.
            for item in proposals where item.sender != committer {
                guard case .remove(let leaf) = item.proposal, item.sender == .member(leaf) else {
                    throw ParleyPolicyError.notAdmin
                }
            }
        }

        /// An admin adds anyone's listed devices; any member adds its own account's listed devices.
        /// Listed: active in the account's signed device list, when a directory is consulted.
        private func checkAdd(_ keyPackage: KeyPackage, proposer: LeafIndex, roster: Roster) throws {
            let added = ParleyGroupPolicy.username(of: keyPackage.leafNode.credential)
            if let deviceDirectory, let added {
                guard try deviceDirectory.isListed(user: added, signatureKey: keyPackage.leafNode.signatureKey.bytes)
                else { throw ParleyPolicyError.deviceNotListed }
            }
            guard roster.isAdmin(proposer) || (added != nil && added == roster.name(proposer)) else {
                throw ParleyPolicyError.notAdmin
            }
        }

        /// Only members propose and commit: no external senders, no external joins.
        static func memberLeaf(_ sender: Sender) throws -> LeafIndex {
            switch sender {
            case .member(let leaf): return leaf
            case .newMemberCommit: throw ParleyPolicyError.externalJoinNotAllowed
            case .external, .newMemberProposal: throw ParleyPolicyError.externalSenderNotAllowed
            }
        }
    }

    /// The admins of a group and who is one, as of the group's current epoch.
    struct Roster {
        let group: PublicGroup
        let admins: Set<String>

        init(_ group: PublicGroup) throws {
            self.group = group
            guard let names = try? ParleyGroupPolicy.admins(in: group.context.extensions) else {
                throw ParleyPolicyError.invalidAdminList
            }
            admins = Set(names)
        }

        func name(_ leaf: LeafIndex) -> String? {
            group.tree.leafNode(at: leaf).flatMap { ParleyGroupPolicy.username(of: $0.credential) }
        }

        func isAdmin(_ leaf: LeafIndex) -> Bool {
            name(leaf).map(admins.contains) ?? false
        }

        /// Admins are never removed: a commit may drop some of an admin's
        /// devices, never all of those it has in the group.
        func checkEveryAdminStays(removing proposals: [ProposalWithSender]) throws {
            var removed = Set<LeafIndex>()
            for item in proposals { if case .remove(let leaf) = item.proposal { removed.insert(leaf) } }
            let adminLeaves = group.tree.members.filter { isAdmin($0.index) }
            let remaining = Set(adminLeaves.filter { !removed.contains($0.index) }.compactMap { name($0.index) })
            guard remaining == Set(adminLeaves.compactMap { name($0.index) }) else {
                throw ParleyPolicyError.adminCannotBeRemoved
            }
        }
    }
}

/// Why Parley's group rules refused a credential, a proposal or a commit.
/// ``errorBody`` is the one place it becomes the wire error.
public enum ParleyPolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The credential is not a `basic` credential naming a valid username.
    case invalidCredential
    /// A member's new leaf names another username than its old one.
    case identityChange
    /// Only an admin may propose or commit this.
    case notAdmin
    /// Admins cannot be removed, not even by themselves.
    case adminCannotBeRemoved
    /// Parley does not use this proposal type (PSK, ReInit, ExternalInit).
    case proposalNotAllowed(ProposalType)
    /// Proposals come only from members.
    case externalSenderNotAllowed
    /// Parley groups are joined by Welcome, not by external commit.
    case externalJoinNotAllowed
    /// The group extensions lack a decodable, non-empty list of valid admin usernames.
    case invalidAdminList
    /// New group extensions would drop a current admin.
    case adminListChange
    /// The group name extension is malformed or not a valid group name.
    case invalidGroupName
    /// New group extensions would leave a named group without a name.
    case groupNameRemoved
    /// An added device is not active in its account's signed device list.
    case deviceNotListed
    /// A ReInit that is not Parley's upgrade (ParleyGroupPolicy+Upgrade.swift).
    case invalidUpgrade

    public var errorBody: ErrorBody {
        switch self {
        case .invalidCredential:
            ErrorBody(.invalidMessage, "Credentials must be basic credentials naming a Parley username.")
        case .identityChange: ErrorBody(.notPermitted, "A member's device may not change its username.")
        case .notAdmin: ErrorBody(.notPermitted)
        case .adminCannotBeRemoved: ErrorBody(.notPermitted, "A group admin cannot be removed.")
        case .proposalNotAllowed(let type):
            ErrorBody(.notPermitted, "Parley groups do not use proposal type \(type.rawValue).")
        case .externalSenderNotAllowed: ErrorBody(.notPermitted, "Only members of a group may propose changes to it.")
        case .externalJoinNotAllowed:
            ErrorBody(.notPermitted, "Parley groups are joined by invitation, not by external commit.")
        case .invalidAdminList: ErrorBody(.notPermitted, "A group must keep a valid, non-empty list of admins.")
        case .adminListChange: ErrorBody(.notPermitted, "The admin list may add admins but never drop one.")
        case .invalidGroupName: ErrorBody(.invalidMessage, "A group's name must be a valid group name.")
        case .groupNameRemoved: ErrorBody(.notPermitted, "A group's name may be changed but not removed.")
        case .deviceNotListed:
            ErrorBody(.deviceNotListed, "An added device is not in its account's signed device list.")
        case .invalidUpgrade:
            ErrorBody(
                .notPermitted,
                "A group may only be upgraded from the standard to the post-quantum suite, keeping its admins and name."
            )
        }
    }

    public var description: String { errorBody.message }

    /// The wire error for a policy hook's refusal: Parley's own rules map
    /// through ``errorBody``; anything else (another hook's error) is "not permitted".
    public static func errorBody(for rejection: PolicyRejection) -> ErrorBody {
        switch rejection.error {
        case let error as ParleyPolicyError: error.errorBody
        case let body as ErrorBody: body
        default: ErrorBody(.notPermitted, "Not permitted: \(rejection).")
        }
    }
}

/// Username rules (3–32 characters of a–z, 0–9, `.`, `_`, `-`).
public enum Username {
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...32).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }
}

/// Group name rules: 1–64 UTF-8 bytes, in Unicode Normalization Form C, without `/`, control,
/// format (bidi overrides, zero-width), line or paragraph separator, private-use or unassigned
/// characters, and not `.` or `..`.
///
/// Why NFC: Swift compares strings by canonical equivalence ("é" == "e\u{301}", KELVIN SIGN == "K")
/// while storage compares bytes, so two names that differ only in normalization would be two
/// groups to SQLite and one to every Swift dictionary. Among NFC strings, canonical equivalence
/// is byte equality, so the two views agree. The other rules keep names harmless on terminals,
/// in logs and as a URL path segment.
public enum GroupName {
    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), name != ".", name != ".." else { return false }
        guard name.unicodeScalars.allSatisfy(isAllowed) else { return false }
        return Array(name.precomposedStringWithCanonicalMapping.utf8) == Array(name.utf8)
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar != "/" else { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: return false
        default: return true
        }
    }
}
