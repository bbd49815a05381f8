import Foundation
import MLS
import ParleyProtocol

/// A live Parley group for the stateful targets: alice (admin), bob and
/// carol at epoch 1 under Parley's policy, the server's public view of it,
/// and a KeyPackage of dave's that Welcomes can be addressed to.
///
/// Keys are random, so the group is built once and kept in the file named
/// by `$PARLEY_FUZZ_FIXTURE` (scripts/fuzz sets it): every later run, and
/// every crash reproduction, starts from exactly the same group.
final class LiveGroup: Sendable {
    static let shared: LiveGroup = {
        do {
            return try LiveGroup.loadOrCreate()
        } catch {
            fatalError("cannot set up the live group: \(error)")
        }
    }()

    /// Messages a fuzz input may hold, one after the other.
    static let maximumMessagesPerInput = 4

    let policy = ParleyGroupPolicy.groupPolicy()
    let members: [Group]
    let server: PublicGroup
    let dave: KeyPackageBundle
    /// Inputs of the group-process target: each one or more MLSMessages.
    let processSeeds: [[UInt8]]

    init(members: [Group], server: PublicGroup, dave: KeyPackageBundle, processSeeds: [[UInt8]]) {
        self.members = members
        self.server = server
        self.dave = dave
        self.processSeeds = processSeeds
    }

    /// The single messages among the seeds, for the mls-message target.
    var seedMessages: [[UInt8]] {
        processSeeds.filter { (try? MLSMessage(tlsEncoded: $0)) != nil }
    }

    func groupInfo() throws -> [UInt8] {
        try members[0].groupInfo().tlsEncoded()
    }

    // MARK: group-process

    /// Feeds each message of the input to every member and to the server's
    /// view, in order, as the delivery service and clients would.
    func check(_ bytes: [UInt8]) {
        var members = self.members
        var server = self.server
        for message in Self.messages(in: bytes) {
            switch message {
            case .publicMessage, .privateMessage:
                deliver(message, to: &members, server: &server)
            case .welcome(let welcome):
                _ = Invariant.attempt("joining by a Welcome") { try Group.join(welcome: welcome, keyPackage: dave, policy: policy) }
            case .groupInfo(let groupInfo):
                DecoderChecks.publicView(groupInfo)
            case .keyPackage(let keyPackage):
                DecoderChecks.validate(keyPackage)
            }
        }
    }

    /// The MLSMessages at the start of `bytes`, up to the first that does not decode.
    static func messages(in bytes: [UInt8]) -> [MLSMessage] {
        var reader = TLSReader(bytes)
        var messages: [MLSMessage] = []
        while !reader.isAtEnd, messages.count < maximumMessagesPerInput {
            guard let message = Invariant.attempt("decoding an MLSMessage", { try MLSMessage(from: &reader) }) else { break }
            messages.append(message)
        }
        return messages
    }

    /// A message either moves a group forward or leaves it exactly as it was
    /// (§14); members that accept the same Commit agree on the new epoch.
    private func deliver(_ message: MLSMessage, to members: inout [Group], server: inout PublicGroup) {
        let serverBefore = server.context
        if Invariant.attempt("the server's view processing a message", { try server.process(message) }) == nil {
            Invariant.require(server.context == serverBefore, "a refused message changed the server's view")
        }
        var advanced: [Group] = []
        for index in members.indices {
            let before = (members[index].context, members[index].epochAuthenticator)
            let result = Invariant.attempt("a member processing a message") { try members[index].process(message) }
            let after = (members[index].context, members[index].epochAuthenticator)
            if result == nil {
                Invariant.require(after == before, "a refused message changed a member's group")
            } else if case .commit? = result, members[index].isActive {
                advanced.append(members[index])
            }
        }
        for (first, second) in zip(advanced, advanced.dropFirst()) {
            Invariant.require(first.context == second.context, "members that accepted one Commit disagree on the context")
            Invariant.require(first.epochAuthenticator == second.epochAuthenticator, "members that accepted one Commit disagree on the epoch")
        }
    }

    // MARK: group-state

    /// First byte: 0 a member's stored state, 1 the server's stored view.
    /// Restoring and storing again must reach a fixed point, and a restored
    /// member must fail cleanly or work.
    func checkState(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        if selector % 2 == 0 {
            guard var group = Invariant.attempt("restoring a group", { try Group(serialized: body, policy: policy) }) else { return }
            let stored = Invariant.attempt("storing a restored group") { try group.serialized() }
            let again = stored.flatMap { stored in Invariant.attempt("restoring a stored group") { try Group(serialized: stored, policy: policy).serialized() } }
            Invariant.require(stored != nil && again == stored, "a restored group does not store and restore to itself")
            _ = Invariant.attempt("encrypting with a restored group") { try group.encrypt([1, 2, 3]) }
        } else {
            guard let view = Invariant.attempt("restoring a view", { try PublicGroup(serialized: body, policy: policy) }) else { return }
            let stored = Invariant.attempt("storing a restored view") { try view.serialized() }
            let again = stored.flatMap { stored in Invariant.attempt("restoring a stored view") { try PublicGroup(serialized: stored, policy: policy).serialized() } }
            Invariant.require(stored != nil && again == stored, "a restored view does not store and restore to itself")
        }
    }

    func stateSeeds() throws -> [[UInt8]] {
        try members.map { [0] + (try $0.serialized()) } + [[1] + (try server.serialized())]
    }
}
