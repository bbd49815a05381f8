import MLS
import ParleyProtocol

extension GroupEngine {
    // MARK: This device's names for its groups, and the server's

    /// The name the server addresses a local group by.
    func serverName(_ local: String) -> String { records[local]?.serverName ?? local }

    /// This device's groups the server calls `server`: one, except after a newcomer arrived
    /// under a name in use (``join(_:)``), oldest name first.
    func locals(calledByServer server: String) -> [String] {
        records.values.filter { $0.serverName == server }.map(\.name).sorted()
    }

    /// The frame with its group named as this device names it. A message goes to the group
    /// whose MLS group ID it carries (RFC 9420 §6: `group_id` is in the clear in both
    /// PublicMessage and PrivateMessage): the server's name alone cannot say which of two
    /// groups it calls the same it means. Welcomes are placed by ``join(_:)``.
    func localized(_ frame: ServerFrame) -> ServerFrame {
        guard case .message(var message) = frame else { return frame }
        let candidates = locals(calledByServer: message.group)
        if candidates.count == 1 {
            message.group = candidates[0]
        } else if candidates.count > 1 {
            let groupID: [UInt8]? =
                switch try? MLSMessage(tlsEncoded: [UInt8](message.message)) {
                case .publicMessage(let framed): framed.content.groupID
                case .privateMessage(let framed): framed.groupID
                default: nil
                }
            message.group = candidates.first { groups[$0]?.groupID == groupID } ?? message.group
        }
        return .message(message)
    }

    /// A local name for a newcomer the server calls `server`, unused in this home: `server#2`,
    /// `server#3`, …
    func newLocalName(for server: String) -> String {
        var number = 2
        while records[server + "#\(number)"] != nil { number += 1 }
        return server + "#\(number)"
    }

    /// The group a command means by `typed`: this device's name for it, else the one group
    /// whose admins named it so (the GroupContext name the user is shown). Several groups
    /// of that name are refused with the names that tell them apart.
    func resolve(_ typed: String) throws -> String {
        if records[typed] != nil { return typed }
        let titled = groups.filter { Self.title(of: $0.value, calledByServer: serverName($0.key)) == typed }
            .keys.sorted()
        switch titled.count {
        case 0: throw ClientError.noSuchGroup(typed)
        case 1: return titled[0]
        default: throw ClientError.ambiguousGroup(typed, candidates: titled)
        }
    }
}
