import Crypto
import Foundation
import MLS
import ParleyProtocol

/// One line of a group's history as the user sees it.
public struct HistoryEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case text, system }
    public var seq: UInt64
    public var time: UInt64
    public var sender: String
    public var kind: Kind
    public var text: String
}

public struct GroupSummary: Sendable, Hashable {
    public var name: String
    public var members: [String]
    public var admins: [String]
    public var epoch: UInt64
    public var lastSeq: UInt64
    public var active: Bool
    /// Why this member can no longer follow the group; nil while it can.
    public var problem: String?
}

/// How a `send` ended.
public enum SendOutcome: Sendable, Equatable {
    case sent(seq: UInt64)
    /// Stored in the outbox; it goes out on the next sync.
    case queued
}

extension ParleyClient {
    // MARK: Persistence

    func encode(_ bundle: KeyPackageBundle) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.write(MLSMessage.keyPackage(bundle.keyPackage))
        try writer.writeOpaque(bundle.initPrivateKey.bytes)
        try writer.writeOpaque(bundle.encryptionPrivateKey.bytes)
        try writer.writeOpaque(bundle.signaturePrivateKey.bytes)
        return writer.bytes
    }

    func decodeBundle(_ bytes: [UInt8]) throws -> KeyPackageBundle {
        var reader = TLSReader(bytes)
        guard case .keyPackage(let keyPackage) = try reader.read(MLSMessage.self) else {
            throw ClientError.invalid("a stored key package is corrupt")
        }
        let bundle = KeyPackageBundle(
            keyPackage: keyPackage,
            initPrivateKey: HPKEPrivateKey(try reader.readOpaque()),
            encryptionPrivateKey: HPKEPrivateKey(try reader.readOpaque()),
            signaturePrivateKey: SignaturePrivateKey(try reader.readOpaque())
        )
        try reader.finish()
        return bundle
    }

    // MARK: Submitting

    /// Sends what `build` makes from the group's current state, and waits for
    /// the server's echo, processing other frames in order meanwhile. On
    /// `wrongEpoch` another commit won: by then it has been processed, so the
    /// message is rebuilt on the new epoch and sent again.
    @discardableResult
    func submit(
        in name: String,
        id: String = UUID().uuidString,
        _ build: (inout Group) throws -> (MLSMessage, MLSMessage?)
    ) async throws -> ServerFrame.Message {
        try await connect()
        for _ in 0..<5 {
            var group = try usableGroup(name)
            let (message, welcome) = try build(&group)
            groups[name] = group
            try socket!.send(
                .send(
                    .init(
                        id: id,
                        group: name,
                        message: Data(try message.tlsEncoded()),
                        welcome: try welcome.map { Data(try $0.tlsEncoded()) }
                    )
                )
            )
            while true {
                guard let frame = try await socket!.next(timeout: timeout) else { throw ClientError.timedOut }
                switch frame {
                case .message(let echo) where echo.id == id:
                    try await apply(frame)
                    return echo
                case .error(let error) where error.id == id:
                    groups[name]?.discardPendingCommit()
                    guard error.error.code == .wrongEpoch else { throw ClientError.server(error.error) }
                default:
                    try await apply(frame)
                    continue
                }
                break
            }
        }
        throw ClientError.server(ErrorBody(.wrongEpoch, "The group kept changing; try again."))
    }

    func commit(in name: String, _ make: @escaping (inout Group) throws -> CommitOutput) async throws {
        try await submit(in: name) { group in
            let output = try make(&group)
            return (output.message, output.welcome)
        }
    }

    /// Sends queued messages, oldest first. A message that cannot go out (its
    /// group cannot be followed, this member left, the server refuses it, or
    /// it failed `outboxAttempts` times) is parked with a line in its group;
    /// it never fails the command, nor holds up messages to other groups.
    func flushOutbox() async throws {
        for (row, item) in try outbox() {
            if let reason = unsendableReason(item.group) {
                try park(row, item, because: reason)
                continue
            }
            do {
                try await submit(in: item.group, id: item.id) { group in (try group.encrypt(Array(item.text.utf8)), nil)
                }
            } catch let error as ClientError where error.isConnectionLoss {
                throw error
            } catch {
                guard try outbox().contains(where: { $0.row == row }) else { continue }  // its echo arrived meanwhile
                var retried = item
                retried.attempts += 1
                if retried.attempts >= Self.outboxAttempts || !Self.isRetryable(error) {
                    try park(row, retried, because: "\(error)")
                } else {
                    try updateQueued(row, retried)
                }
            }
        }
    }

    private func unsendableReason(_ name: String) -> String? {
        guard let group = groups[name] else { return "you are not in \(name) any more." }
        if let problem = records[name]?.problem { return "you can no longer follow \(name): \(problem)" }
        return group.isActive ? nil : "you are no longer a member of \(name)."
    }

    /// Failures worth another attempt on a later sync.
    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case ClientError.timedOut: true
        case ClientError.server(let body): [.rateLimited, .wrongEpoch, .internalError].contains(body.code)
        default: false
        }
    }

    // MARK: Operations

    public func groupSummaries() -> [GroupSummary] {
        groups.sorted { $0.key < $1.key }.map { name, group in
            GroupSummary(
                name: name,
                members: memberNames(group),
                admins: (try? ParleyGroupPolicy.admins(in: group.context.extensions)) ?? [],
                epoch: group.epoch,
                lastSeq: records[name]?.lastSeq ?? 0,
                active: group.isActive,
                problem: records[name]?.problem
            )
        }
            + records.values.filter { groups[$0.name] == nil }.sorted { $0.name < $1.name }.map {
                GroupSummary(
                    name: $0.name,
                    members: [],
                    admins: [],
                    epoch: 0,
                    lastSeq: $0.lastSeq,
                    active: false,
                    problem: $0.problem
                )
            }
    }

    func memberNames(_ group: Group) -> [String] {
        Array(Set(group.members.compactMap { ParleyGroupPolicy.username(of: $0.credential) })).sorted()
    }

    func group(_ name: String) throws -> Group {
        guard let group = groups[name] else { throw ClientError.noSuchGroup(name) }
        return group
    }

    /// A group this member can still send and commit in.
    func usableGroup(_ name: String) throws -> Group {
        let group = try group(name)
        if let problem = records[name]?.problem { throw ClientError.groupUnusable(name, reason: problem) }
        return group
    }

    /// Creates a group with this user as its admin.
    public func createGroup(_ typed: String) async throws {
        // The server takes names in Unicode NFC only (GroupName); terminals may type them decomposed.
        let name = typed.precomposedStringWithCanonicalMapping
        let (api, token) = try await requireAPI()
        guard let username else { throw ClientError.notLoggedIn }
        let group = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: credential,
            signatureKeys: try signatureKeys(),
            extensions: [try ParleyGroupPolicy.adminsExtension([username])],
            policy: policy
        )
        _ = try await api.call(
            .POST,
            "/v1/groups",
            token: token,
            json: API.CreateGroup(
                name: name,
                groupInfo: Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())
            ),
            as: API.Group.self
        )
        groups[name] = group
        records[name] = GroupRecord(name: name, updated: Date().timeIntervalSince1970)
        try persist(name, lines: [systemLine(name, "You created \(name).", seq: 0)])
    }

    /// Adds users (every device of each) with one commit.
    public func add(_ users: [String], to name: String) async throws {
        try await sync()
        _ = try usableGroup(name)
        let (api, token) = try await requireAPI()
        var keyPackages: [KeyPackage] = []
        for user in users {
            let claimed = try await api.call(
                .POST,
                "/v1/users/\(Self.pathComponent(user))/keypackages/claim",
                token: token,
                as: API.ClaimedKeyPackages.self
            )
            for entry in claimed.keyPackages {
                guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](entry.keyPackage)),
                    ParleyGroupPolicy.username(of: package.leafNode.credential) == user
                else {
                    throw ClientError.invalid("The server handed out a key package that is not \(user)'s.")
                }
                keyPackages.append(package)
            }
        }
        try await commit(in: name) { try $0.commit(CommitOptions(add: keyPackages, includePendingProposals: false)) }
    }

    /// Removes every device of `user`.
    public func remove(_ user: String, from name: String) async throws {
        try await sync()
        let leaves = try usableGroup(name).members.filter { ParleyGroupPolicy.username(of: $0.credential) == user }.map(
            \.index
        )
        guard !leaves.isEmpty else { throw ClientError.noSuchMember(user, group: name) }
        try await commit(in: name) { try $0.commit(CommitOptions(remove: leaves, includePendingProposals: false)) }
    }

    /// Refreshes this device's leaf and path keys in `name` (post-compromise security).
    public func update(_ name: String) async throws {
        try await sync()
        _ = try usableGroup(name)
        try await commit(in: name) { try $0.selfUpdate() }
    }

    /// Asks to leave: an admin's client commits the request when it next syncs.
    public func leave(_ name: String) async throws {
        try await sync()
        _ = try usableGroup(name)
        try await submit(in: name) { group in (try group.proposeLeave(), nil) }
    }

    public func destroy(_ name: String) async throws {
        let (api, token) = try await requireAPI()
        try await api.request(.DELETE, "/v1/groups/\(Self.pathComponent(name))", token: token)
        try forget(name)
    }

    public func members(_ name: String) throws -> [String] { memberNames(try group(name)) }

    /// The MLS group id and epoch of `name` (for the package's own load generator).
    package func wireIdentity(of name: String) throws -> (groupID: [UInt8], epoch: UInt64) {
        let group = try group(name)
        return (group.groupID, group.epoch)
    }

    /// Sends a text: stored in the outbox first, so it survives being offline.
    public func send(_ text: String, to name: String) async throws -> SendOutcome {
        _ = try usableGroup(name)
        let id = UUID().uuidString
        try queue(OutboxItem(id: id, group: name, text: text))
        do {
            try await connect()
            try await flushOutbox()
            try acknowledgeAll()
        } catch ClientError.unreachable {
            return .queued
        }
        guard try outbox().contains(where: { $0.item.id == id }) else {
            let sent = try history(name).last { $0.sender == username && $0.text == text }
            return sent.map { .sent(seq: $0.seq) } ?? .queued
        }
        return .queued
    }

    /// Processes the frames that arrive within `timeout` and returns the
    /// names of the groups whose history changed. For interactive use: one
    /// task alternates between this and the user's commands.
    public func pump(timeout: Duration) async throws -> Set<String> {
        // A reconnect's replay changes groups too (the chat screen must redraw them).
        var changed = try await connect()
        var wait = timeout
        while let frame = try await socket!.next(timeout: wait) {
            switch frame {
            case .message(let message): changed.insert(message.group)
            case .welcome(let welcome): changed.insert(welcome.group)
            case .groupDestroyed(let destroyed): changed.insert(destroyed.group)
            case .error, .replayFinished: break
            }
            try await apply(frame)
            wait = .zero
        }
        if !changed.isEmpty { try acknowledgeAll() }
        return changed
    }

    /// Whether this user is an admin of `name`.
    public func isAdmin(of name: String) -> Bool {
        groups[name].map(isAdmin) ?? false
    }

    /// Keeps processing frames as they arrive and hands each new history
    /// entry of `name` to `onEntry`, until `stop` returns true.
    public func follow(
        _ name: String,
        until stop: @escaping @Sendable () -> Bool = { false },
        onEntry: @Sendable (HistoryEntry) async -> Void
    ) async throws {
        try await connect()
        var seen = try history(name).count
        while !stop() {
            guard let frame = try await socket!.next(timeout: .milliseconds(250)) else { continue }
            try await apply(frame)
            try acknowledgeAll()
            let entries = try history(name)
            for entry in entries.dropFirst(seen) { await onEntry(entry) }
            seen = entries.count
        }
    }

    // MARK: Safety numbers

    /// A safety number for this user and `user`: 60 digits both sides compute
    /// from the signature keys their groups actually use. Compare out of band.
    /// `changed` is true when `user`'s keys differ from those seen last time.
    public func verify(_ user: String) async throws -> (number: String, changed: Bool) {
        guard let me = username else { throw ClientError.notLoggedIn }
        var theirKeys = Set<[UInt8]>()
        for group in groups.values {
            for member in group.tree.members where ParleyGroupPolicy.username(of: member.leaf.credential) == user {
                theirKeys.insert(member.leaf.signatureKey.bytes)
            }
        }
        if theirKeys.isEmpty {
            let (api, token) = try await requireAPI()
            theirKeys = Set(
                try await api.call(.GET, "/v1/users/\(Self.pathComponent(user))", token: token, as: API.User.self)
                    .signatureKeys.map { [UInt8]($0) }
            )
        }
        let mine = try signatureKeys().publicKey.bytes
        let halves = [(me, [mine]), (user, theirKeys.sorted { $0.lexicographicallyPrecedes($1) })].sorted {
            $0.0 < $1.0
        }
        let number = halves.map { Self.fingerprintDigits(name: $0.0, keys: $0.1) }.joined()
        let digest = Array(SHA256.hash(data: theirKeys.sorted { $0.lexicographicallyPrecedes($1) }.flatMap { $0 }))
        let userID = try sealingKey().identifier("user", user)
        let previous = try store.knownKeys(userID)
        try store.setKnownKeys(userID, digest)
        let grouped = stride(from: 0, to: number.count, by: 5).map { offset -> String in
            let start = number.index(number.startIndex, offsetBy: offset)
            return String(number[start..<number.index(start, offsetBy: 5)])
        }
        return (grouped.joined(separator: " "), previous != nil && previous != digest)
    }

    /// 30 decimal digits from an iterated hash of a user's name and keys.
    static func fingerprintDigits(name: String, keys: [[UInt8]]) -> String {
        var hash = Array("parley-safety-number-v1".utf8) + Array(name.utf8) + keys.flatMap { $0 }
        for _ in 0..<1024 { hash = Array(SHA512.hash(data: hash + keys.flatMap { $0 })) }
        return (0..<6).map { chunk in
            let value = hash[chunk * 5..<chunk * 5 + 5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % 100_000
            return String(format: "%05llu", value)
        }.joined()
    }
}
