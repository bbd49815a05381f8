import MLS
import ParleyProtocol

/// The client's use of the signed device directory: a contact's device list is believed only
/// when it verifies under the identity key pinned for them, and only the devices it names are
/// ever added to a group (docs/SECURITY.md, "Device directory").
extension GroupEngine {
    /// `user`'s current device list, verified: signed by the pinned identity key (pinned now if
    /// this is the first contact) and not older than the last one accepted. Nil only for an
    /// account that has never had a list (created before the directory) and was never pinned.
    func verifiedDeviceList(of user: String) async throws -> DeviceList? {
        let pin = try store.contactPin(of: user)
        guard let bytes = try await transport.deviceList(of: user) else {
            // A contact whose list this home has seen cannot lose it: the server withholds it.
            if pin != nil { throw ClientError.deviceList(user: user, .malformed) }
            return nil
        }
        let signed: SignedDeviceList
        let list: DeviceList
        do {
            signed = try SignedDeviceList(encoded: bytes)
            list = try signed.verify(user: user, pinnedIdentityKey: pin?.identityKey, known: pin?.list.list)
        } catch {
            throw ClientError.deviceList(user: user, error)
        }
        if pin?.list != signed {
            try store.setContactPin(ContactPin(identityKey: list.identityKey, list: signed), of: user)
        }
        return list
    }

    /// The KeyPackages among `packages` whose leaf signature key is an active device in `list`
    /// (all of them for a list-less legacy account), and a sentence for each one refused.
    static func listedPackages(
        _ packages: [KeyPackage],
        of user: String,
        list: DeviceList?
    ) -> (listed: [KeyPackage], warnings: [String]) {
        guard let list else { return (packages, []) }
        let listed = packages.filter { list.isActive($0.leafNode.signatureKey.bytes) }
        let ghosts = packages.count - listed.count
        let warning =
            "The server offered a device for \(user) that \(user)'s signed device list does not contain; "
            + "it was not added."
        return (listed, ghosts > 0 ? [warning] : [])
    }
}
