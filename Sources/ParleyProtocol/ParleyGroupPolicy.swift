import MLS

/// Parley's rules for groups, enforced identically by every member and by the
/// server (RFC 9420 §12.2 lets applications add such rules):
/// - a member's credential is a `basic` credential naming a valid username;
/// - the admins are listed in the `parley_admins` GroupContext extension;
/// - only an admin adds members, removes others, or changes group extensions;
/// - a member may remove itself (leave), but an admin is never removed;
/// - no external commits: members join by Welcome.
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

    /// The policy for a group: both hooks, plus the usual bounds.
    public static func groupPolicy(credentialValidator: any CredentialValidator = CredentialRule()) -> GroupPolicy {
        GroupPolicy(credentialValidator: credentialValidator, commitPolicy: CommitRule())
    }

    /// Accepts `basic` credentials naming a valid username.
    public struct CredentialRule: CredentialValidator {
        public init() {}
        public func validate(_ credential: Credential, signatureKey: SignaturePublicKey) throws {
            guard ParleyGroupPolicy.username(of: credential) != nil else {
                throw ErrorBody(.invalidMessage, "credentials must be basic credentials naming a Parley username")
            }
        }
    }

    /// Admin-only membership changes; admins cannot be removed.
    public struct CommitRule: CommitPolicy {
        public init() {}

        public func validate(_ proposals: [ProposalWithSender], committer: Sender, group: PublicGroup) throws {
            guard case .member(let committerLeaf) = committer else {
                throw ErrorBody(.notPermitted, "Parley groups are joined by invitation, not by external commit.")
            }
            let admins = Set(try ParleyGroupPolicy.admins(in: group.context.extensions))
            func name(_ leaf: LeafIndex) -> String? {
                group.tree.leafNode(at: leaf).flatMap { ParleyGroupPolicy.username(of: $0.credential) }
            }
            let committerIsAdmin = name(committerLeaf).map(admins.contains) ?? false
            for item in proposals {
                switch item.proposal {
                case .add, .groupContextExtensions, .reInit:
                    guard committerIsAdmin else { throw ErrorBody(.notPermitted) }
                case .remove(let leaf):
                    if let removed = name(leaf), admins.contains(removed) {
                        throw ErrorBody(.notPermitted, "A group admin cannot be removed.")
                    }
                    let leaving = item.sender == .member(leaf)
                    guard leaving || committerIsAdmin else { throw ErrorBody(.notPermitted) }
                case .externalInit:
                    throw ErrorBody(.notPermitted, "Parley groups are joined by invitation, not by external commit.")
                case .update, .preSharedKey:
                    break
                }
            }
        }
    }
}

/// Username rules (3–32 characters of a–z, 0–9, `.`, `_`, `-`).
public enum Username {
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...32).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }
}
