import MLS

/// The group's name, end to end: a Parley private-use GroupContext extension (RFC 9420 §17.3:
/// 0xF000–0xFFFF), `struct { opaque name<V>; }` holding a ``GroupName``-valid UTF-8 name.
///
/// It is set when the group is created and changed only by a GroupContextExtensions commit,
/// which ``ParleyGroupPolicy/CommitRule`` allows only admins. Every member agrees on it
/// because the GroupContext is in the key schedule (§8): a server that renames a group in
/// its frames changes nothing a member displays.
extension ParleyGroupPolicy {
    public static let groupNameExtension = ExtensionType(rawValue: 0xF0A1)

    /// The extension naming a group `name`; throws ``ParleyPolicyError/invalidGroupName`` for an invalid name.
    public static func groupNameExtension(_ name: String) throws(ParleyPolicyError) -> Extension {
        guard GroupName.isValid(name) else { throw .invalidGroupName }
        var writer = TLSWriter()
        do { try writer.writeOpaque(Array(name.utf8)) } catch { throw .invalidGroupName }
        return Extension(extensionType: groupNameExtension, extensionData: writer.bytes)
    }

    /// The group name in `extensions`: nil when there is none (groups created before the
    /// extension); throws ``ParleyPolicyError/invalidGroupName`` when it is malformed or
    /// not a valid ``GroupName``.
    public static func groupName(in extensions: [Extension]) throws(ParleyPolicyError) -> String? {
        guard let data = extensions.first(groupNameExtension) else { return nil }
        var reader = TLSReader(data)
        let bytes: [UInt8]
        do {
            bytes = try reader.readOpaque()
            try reader.finish()
        } catch {
            throw .invalidGroupName
        }
        guard let name = String(validating: bytes, as: UTF8.self), GroupName.isValid(name) else {
            throw .invalidGroupName
        }
        return name
    }

    /// New group extensions keep a valid name, and keep one if the group had one: a commit
    /// may rename a group but never leave it nameless or give it a name no client displays.
    static func checkGroupName(replacing current: [Extension], with proposed: [Extension]) throws {
        let proposedName = try groupName(in: proposed)
        if proposedName == nil, (try? groupName(in: current)) ?? nil != nil {
            throw ParleyPolicyError.groupNameRemoved
        }
    }

    /// Whether `username` is an admin of a group whose GroupContext has `extensions`.
    /// A receiver asks this of the epoch an admin-only message (``ApplicationContent/destroyGroup``)
    /// was sent in.
    public static func isAdmin(_ username: String, in extensions: [Extension]) -> Bool {
        ((try? admins(in: extensions)) ?? []).contains(username)
    }
}
