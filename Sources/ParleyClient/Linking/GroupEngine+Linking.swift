import Foundation
import MLS
import ParleyProtocol

/// What linking asks of the group engine: the approving device adds the new one to a group and
/// exports history; the new device checks who sent its bundle and files the lines.
extension GroupEngine {
    /// Adds this account's device with `signatureKey` to `name`, with a KeyPackage the directory
    /// hands out for it; nothing when it is a member already. The claim skips every other device
    /// of this account (those in the group, and every other one the account's signed list names),
    /// so it takes the new device's KeyPackage only and no other device's one-time KeyPackage is
    /// spent. Throws ``LinkedDeviceError/noKeyPackage`` when the directory has none of that device.
    func addOwnDevice(signatureKey: [UInt8], to name: String) async throws {
        let group = try usableGroup(name)
        guard !group.tree.members.contains(where: { $0.leaf.signatureKey.bytes == signatureKey }) else { return }
        let present = group.tree.members.filter {
            ParleyGroupPolicy.username(of: $0.leaf.credential) == identity.username
        }.map(\.leaf.signatureKey.bytes)
        let listed = try await verifiedDeviceList(of: identity.username)?.entries.map(\.signatureKey) ?? []
        let skip = Set(present + listed).subtracting([signatureKey]).sorted { $0.lexicographicallyPrecedes($1) }
        let claimed: [Data]
        do {
            claimed = try await transport.claimKeyPackages(
                of: identity.username,
                skipping: skip,
                suite: group.suite.suite
            )
        } catch ClientError.server(let body) where body.code == .noKeyPackages {
            throw LinkedDeviceError.noKeyPackage
        }
        var found: KeyPackage?
        for encoded in claimed {
            guard case .keyPackage(let package) = try? MLSMessage(tlsEncoded: [UInt8](encoded)),
                ParleyGroupPolicy.username(of: package.leafNode.credential) == identity.username,
                package.leafNode.signatureKey.bytes == signatureKey, package.cipherSuite == group.suite.suite
            else { continue }
            found = package
        }
        guard let package = found else { throw LinkedDeviceError.noKeyPackage }
        try await commit(in: name, CommitOptions(add: [package], includePendingProposals: false))
    }

    /// On the new device, once the bundle's link secret checked out: the account's own signed list,
    /// verified and pinned. The list must verify under the key of the identity the bundle carries
    /// (a server that serves another list is refused); the bundle's sender and this device must
    /// both be active on it. Returns the identity to keep.
    func pinOwnList(bundle: HistoryBundle) async throws -> AccountIdentity {
        let me = identity.username
        guard let account = try? AccountIdentity(seed: bundle.accountIdentitySeed),
            let bytes = try await transport.deviceList(of: me)
        else { throw LinkError.bundleIdentityMismatch }
        let pin = try store.contactPin(of: me)
        let signed: SignedDeviceList
        let list: DeviceList
        do {
            signed = try SignedDeviceList(encoded: bytes)
            list = try signed.verify(user: me, pinnedIdentityKey: account.publicKey, known: pin?.list.list)
        } catch {
            throw LinkError.bundleIdentityMismatch
        }
        guard pin == nil || pin?.identityKey == account.publicKey, list.isActive(bundle.senderSignatureKey),
            list.isActive(identity.signatureKeys.publicKey.bytes)
        else { throw LinkError.bundleIdentityMismatch }
        try store.setContactPin(ContactPin(identityKey: account.publicKey, list: signed), of: me)
        return account
    }

    /// This device's pins of the people it shares a group with (the last signed list accepted of
    /// each, under the pinned identity key), for the new device's bundle.
    func exportContactPins() throws -> [SignedDeviceList] {
        let me = identity.username
        let contacts = Set(
            groups.values.flatMap { group in
                group.tree.members.compactMap { ParleyGroupPolicy.username(of: $0.leaf.credential) }
            }
        ).subtracting([me])
        return try contacts.sorted().compactMap { try store.contactPin(of: $0)?.list }
    }

    /// On the new device, once the bundle's secret and its own list checked out: pins each contact
    /// as the approving device had them, so the server cannot give this device another identity
    /// for a contact on first contact. A list whose signature does not verify under the key it
    /// carries is skipped; a pin this device already holds under the same key and at least as new
    /// is kept; any other (made from what the server served before the bundle) is replaced.
    func seedContactPins(_ lists: [SignedDeviceList]) throws {
        for signed in lists where signed.list.user != identity.username {
            let user = signed.list.user
            guard let list = try? signed.verify(user: user, pinnedIdentityKey: signed.list.identityKey) else {
                continue
            }
            if let pin = try store.contactPin(of: user), pin.identityKey == list.identityKey,
                pin.list.list.version >= list.version
            {
                continue
            }
            try store.setContactPin(ContactPin(identityKey: list.identityKey, list: signed), of: user)
        }
    }

    /// The last `limit` text lines of every group this device follows, oldest first.
    func exportHistory(limit: Int) throws -> [HistoryBundle.GroupHistory] {
        let limit = min(max(limit, 0), HistoryBundle.maxLinesPerGroup)
        return try groups.keys.sorted().map { name in
            let lines = try store.history(of: name).filter { $0.kind == .text }.suffix(limit).map {
                HistoryBundle.Line(seq: $0.seq, time: $0.time, sender: $0.sender, text: $0.text)
            }
            return HistoryBundle.GroupHistory(group: name, lines: Array(lines))
        }
    }

    /// Whether `signatureKey` is a leaf of this very account in `name`: a bundle's lines for a group
    /// are taken only from a device the group's own (MLS-authenticated) tree shows as ours.
    func isOwnDevice(_ signatureKey: [UInt8], in name: String) -> Bool {
        guard let group = groups[name] else { return false }
        return group.tree.members.contains {
            $0.leaf.signatureKey.bytes == signatureKey
                && ParleyGroupPolicy.username(of: $0.leaf.credential) == identity.username
        }
    }

    /// Files transferred lines in `name`'s history, each marked as coming from `device`; they are
    /// history only (never queued, never sent to the server). Once per group: a bundle processed
    /// again (a retry after a failure, the server keeps it until acknowledged) adds nothing twice.
    func importTransferred(_ lines: [HistoryBundle.Line], to name: String, from device: String) throws {
        let note = "from your device \(device)"
        guard !lines.isEmpty, try !store.history(of: name).contains(where: { $0.note == note }) else { return }
        try store.appendHistory(
            systemLine(name, "\(lines.count) earlier messages from your device \(device):"),
            to: name
        )
        for line in lines {
            try store.appendHistory(
                HistoryEntry(
                    seq: line.seq,
                    time: line.time,
                    sender: line.sender,
                    kind: .text,
                    text: line.text,
                    note: note
                ),
                to: name
            )
        }
    }
}

/// Failures of the engine's part in linking.
public enum LinkedDeviceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The directory handed out no KeyPackage of the new device.
    case noKeyPackage

    public var description: String {
        switch self {
        case .noKeyPackage:
            "The server has no key package of the new device; let it finish logging in, then approve again."
        }
    }
}
