/// The policy hook through which the server's group rule consults the device directory
/// (``ParleyGroupPolicy/CommitRule``): the rule stays in one place, the server fills the hook.
public protocol DeviceDirectoryCheck: Sendable {
    /// Whether `signatureKey` is an active device in `user`'s current signed device list.
    /// True for an account that has no list (created before the directory existed).
    func isListed(user: String, signatureKey: [UInt8]) throws -> Bool
}
