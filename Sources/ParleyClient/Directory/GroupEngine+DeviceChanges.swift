import Foundation
import MLS
import ParleyProtocol

/// What every member checks when a commit changes a group's devices (docs/SECURITY.md, "Device
/// directory"): each added leaf's signature key against the signed device list of the user its
/// credential names (verified under the identity key pinned for them, pinned now on first
/// contact), and a line in the group's history when a member gains or loses a device.
///
/// A leaf the list does not name is flagged, not refused: the commit is an admin's (MLS signs it,
/// the server cannot forge one), so the warning says who may have slipped it in, and stays in the
/// group's status. Sending is not blocked: that would let any admin and the server silence a
/// group, and the people in it decide better than a rule whether to leave, remove it or carry on.
extension GroupEngine {
    /// A device in a group's tree: the user its credential names and its signature key.
    struct MemberDevice: Hashable {
        var user: String
        var signatureKey: [UInt8]
    }

    static func devices(of tree: RatchetTree) -> Set<MemberDevice> {
        Set(
            tree.members.compactMap { member in
                ParleyGroupPolicy.username(of: member.leaf.credential).map {
                    MemberDevice(user: $0, signatureKey: member.leaf.signatureKey.bytes)
                }
            }
        )
    }

    /// After a message of `name` was handled: when it moved the group from `before` to a new
    /// epoch, checks the devices it added and describes the devices it added or removed for
    /// users who stay members. A list that cannot be fetched or verified is a line too, so a
    /// server that withholds it does not suppress the check silently.
    func checkDeviceChanges(in name: String, from before: Group?, seq: UInt64) async throws {
        guard let before, let after = groups[name], after.epoch > before.epoch, records[name]?.problem == nil else {
            return
        }
        let old = Self.devices(of: before.tree)
        let new = Self.devices(of: after.tree)
        let added = new.subtracting(old)
        let removed = old.subtracting(new)
        guard !added.isEmpty || !removed.isEmpty else { return }
        let staying = Set(old.map(\.user)).intersection(new.map(\.user))
        var lines: [String] = []
        for user in Set(added.map(\.user)).union(removed.map(\.user)).sorted() {
            let list: DeviceList?
            do {
                list = try await verifiedDeviceList(of: user)
            } catch let error as ClientError where error.isConnectionLoss {
                list = nil
                lines.append("\(user)'s device list could not be fetched to check a change to their devices here.")
            } catch {
                try warn(
                    name,
                    "A device of \(user) changed here, but \(user)'s device list was refused: \(error)",
                    seq: seq
                )
                continue
            }
            guard let list else { continue }
            // Any entry counts, revoked ones too: a member catching up on an old commit sees a
            // device that was listed then and has been revoked since.
            for device in added where device.user == user && !Self.names(device, in: list) {
                try warn(name, Self.ghostWarning(user), seq: seq)
            }
            guard staying.contains(user) else { continue }
            lines += Self.deviceLines(user, added: added, removed: removed, list: list, me: identity.username)
        }
        try persist(name, lines: lines.map { systemLine(name, $0, seq: seq) })
    }

    static func names(_ device: MemberDevice, in list: DeviceList) -> Bool {
        list.entries.contains { $0.signatureKey == device.signatureKey }
    }

    static func ghostWarning(_ user: String) -> String {
        "The server or an admin added a device of \(user) that \(user)'s signed device list does not contain; "
            + "it can read what is sent here. Remove \(user) and add them again, or leave the group."
    }

    /// "bob linked a device: laptop", "bob removed a device: phone", for one user who stays.
    static func deviceLines(
        _ user: String,
        added: Set<MemberDevice>,
        removed: Set<MemberDevice>,
        list: DeviceList,
        me: String
    ) -> [String] {
        let who = user == me ? "You" : user
        let named = { (device: MemberDevice) in list.entries.first { $0.signatureKey == device.signatureKey }?.name }
        let linked = added.filter { $0.user == user }.compactMap(named).sorted()
        let gone = removed.filter { $0.user == user }.map { named($0) ?? "an unnamed device" }.sorted()
        return linked.map { "\(who) linked a device: \($0)" } + gone.map { "\(who) removed a device: \($0)" }
    }

    /// An admin's duty when it syncs (at most every `deviceSweep.interval`): removes from each
    /// group it administers the devices their account's signed list has revoked. The user's other
    /// device does this when it revokes (``ParleyClient/revokeDevice(named:)``); this covers a
    /// revocation whose commits never came (that device went offline). Only revoked entries of a
    /// list that verifies: a hostile server cannot make an admin remove a listed device, and a
    /// leaf no list ever named is flagged (``checkDeviceChanges(in:from:seq:)``), not removed.
    /// Another admin's devices are left to that admin's own account (the policy keeps admins).
    func removeRevokedDevices() async throws {
        let now = Date().timeIntervalSince1970
        guard now - deviceSweep.last >= deviceSweep.interval else { return }
        deviceSweep.last = now
        var lists: [String: DeviceList] = [:]
        for (name, group) in groups.sorted(by: { $0.key < $1.key })
        where group.isActive && isAdmin(group) && records[name]?.problem == nil {
            var revoked: [LeafIndex] = []
            for member in group.tree.members where member.index != group.ownLeaf {
                guard let user = ParleyGroupPolicy.username(of: member.leaf.credential),
                    user == identity.username || !ParleyGroupPolicy.isAdmin(user, in: group.context.extensions)
                else { continue }
                if lists[user] == nil, let list = try? await verifiedDeviceList(of: user) { lists[user] = list }
                let key = member.leaf.signatureKey.bytes
                guard lists[user]?.entries.contains(where: { $0.signatureKey == key && $0.revokedAt != nil }) == true
                else { continue }
                revoked.append(member.index)
            }
            guard !revoked.isEmpty else { continue }
            try await isolated(name, "Removing revoked devices") {
                try await commit(in: name, CommitOptions(remove: revoked, includePendingProposals: false))
            }
        }
    }

    func setDeviceSweepInterval(_ interval: TimeInterval) { deviceSweep = (interval, 0) }
}
