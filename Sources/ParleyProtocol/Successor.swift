import Foundation

extension API {
    /// `POST /v1/groups/{name}/successor`: the successor a ReInit commit in the group asked for
    /// (`parley upgrade`, RFC 9420 §11.2), sent by the device that committed the ReInit. The
    /// server checks the GroupInfo against the ReInit and the group's devices, adopts it as the
    /// group's state under the same name, and appends the Welcome to the group's log, where
    /// every member device, online or not, finds it right after the ReInit commit.
    public struct Successor: Codable, Sendable {
        /// Names the request, as a `send`'s id does: a retry with the same id is answered with
        /// the seq stored the first time.
        public var id: String
        /// MLSMessage(GroupInfo) of the successor at epoch 1, with the ratchet tree, signed by
        /// the sender's leaf.
        public var groupInfo: Data
        /// MLSMessage(Welcome) for every other member device, with the reinit PSK.
        public var welcome: Data

        public init(id: String, groupInfo: Data, welcome: Data) {
            self.id = id
            self.groupInfo = groupInfo
            self.welcome = welcome
        }
    }

    /// The answer to ``Successor``: the seq of the Welcome in the group's log.
    public struct SuccessorAccepted: Codable, Sendable {
        public var seq: UInt64
        public init(seq: UInt64) { self.seq = seq }
    }
}
