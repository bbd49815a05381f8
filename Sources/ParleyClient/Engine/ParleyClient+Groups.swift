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
        guard case .keyPackage(let keyPackage) = try reader.read(MLSMessage.self) else { throw ClientError.invalid("a stored key package is corrupt") }
        let bundle = KeyPackageBundle(
            keyPackage: keyPackage, initPrivateKey: HPKEPrivateKey(try reader.readOpaque()),
            encryptionPrivateKey: HPKEPrivateKey(try reader.readOpaque()), signaturePrivateKey: SignaturePrivateKey(try reader.readOpaque()))
        try reader.finish()
        return bundle
    }

    func loadGroups() throws {
        let key = try sealingKey()
        for stored in try store.groups() {
            groups[stored.name] = try Group(serialized: key.open(stored.sealed, context: "group:" + stored.name), policy: policy)
            lastSeq[stored.name] = stored.lastSeq
            if stored.needsUpdate { needsUpdate.insert(stored.name) }
        }
    }

    func persist(_ name: String, needsUpdate: Bool? = nil, lines: [HistoryEntry] = [], sentID: String? = nil) throws {
        guard let group = groups[name] else { return }
        let key = try sealingKey()
        try store.save(
            group: name, sealed: try key.seal(try group.serialized(), context: "group:" + name), lastSeq: lastSeq[name] ?? 0,
            needsUpdate: needsUpdate, lines: try lines.map { try sealed($0, group: name) }, sentID: sentID)
    }

    func sealed(_ entry: HistoryEntry, group: String) throws -> ClientStore.HistoryLine {
        ClientStore.HistoryLine(seq: entry.seq, time: entry.time, sender: entry.sender, kind: entry.kind.rawValue,
                                sealed: try sealingKey().seal(Array(entry.text.utf8), context: "history:" + group))
    }

    /// The group's history, oldest first.
    public func history(_ name: String) throws -> [HistoryEntry] {
        let key = try sealingKey()
        return try store.history(group: name).map { _, line in
            HistoryEntry(seq: line.seq, time: line.time, sender: line.sender, kind: HistoryEntry.Kind(rawValue: line.kind) ?? .system,
                         text: String(decoding: try key.open(line.sealed, context: "history:" + name), as: UTF8.self))
        }
    }

    // MARK: Frames

    /// Applies one server frame: the heart of staying in sync.
    func handle(_ frame: ServerFrame) async throws {
        switch frame {
        case .message(let message):
            try handle(message)
        case .welcome(let welcome):
            try await join(welcome)
        case .groupDestroyed(let destroyed):
            if groups[destroyed.group] != nil {
                try store.addHistory(group: destroyed.group, try sealed(
                    HistoryEntry(seq: lastSeq[destroyed.group] ?? 0, time: UInt64(Date().timeIntervalSince1970 * 1000), sender: "", kind: .system,
                                 text: "An admin destroyed this group."), group: destroyed.group))
            }
            groups.removeValue(forKey: destroyed.group)
            lastSeq.removeValue(forKey: destroyed.group)
            try store.deleteGroup(destroyed.group)
        case .error, .replayFinished:
            break
        }
    }

    private func handle(_ frame: ServerFrame.Message) throws {
        guard var group = groups[frame.group] else { return }
        let last = lastSeq[frame.group] ?? 0
        guard frame.seq > last else { return }
        var lines: [HistoryEntry] = []
        if frame.seq > last + 1 {
            lines.append(system(frame, "Messages \(last + 1) to \(frame.seq - 1) were not delivered by the server."))
        }
        var sentID: String?
        do {
            let processed = try group.process(try MLSMessage(tlsEncoded: [UInt8](frame.message)))
            switch processed {
            case .application(let message):
                let sender = ParleyGroupPolicy.username(of: message.credential) ?? frame.sender
                lines.append(HistoryEntry(seq: frame.seq, time: frame.time, sender: sender, kind: .text, text: String(decoding: message.data, as: UTF8.self)))
            case .proposal(_, let proposal):
                if case .remove(let leaf) = proposal.proposal, proposal.sender == .member(leaf) {
                    lines.append(system(frame, "\(frame.sender) asked to leave the group."))
                }
            case .commit(let summary):
                lines += describe(summary, frame)
            }
        } catch MLSError.ownMessage {
            // Our own application message, echoed: the outbox has its text.
            if let id = frame.id, let entry = try store.outbox().first(where: { $0.id == id }) {
                let text = String(decoding: try sealingKey().open(entry.sealed, context: "outbox"), as: UTF8.self)
                lines.append(HistoryEntry(seq: frame.seq, time: frame.time, sender: username ?? frame.sender, kind: .text, text: text))
                sentID = id
            }
        } catch {
            lines.append(system(frame, "A message from \(frame.sender) could not be decrypted: \(error)."))
        }
        groups[frame.group] = group
        lastSeq[frame.group] = frame.seq
        try persist(frame.group, lines: lines, sentID: sentID)
    }

    private func system(_ frame: ServerFrame.Message, _ text: String) -> HistoryEntry {
        HistoryEntry(seq: frame.seq, time: frame.time, sender: "", kind: .system, text: text)
    }

    private func describe(_ summary: CommitSummary, _ frame: ServerFrame.Message) -> [HistoryEntry] {
        var lines: [HistoryEntry] = []
        let names = { (members: [(index: LeafIndex, credential: Credential)]) in
            Array(Set(members.compactMap { ParleyGroupPolicy.username(of: $0.credential) })).sorted().joined(separator: ", ")
        }
        if !summary.added.isEmpty { lines.append(system(frame, "\(frame.sender) added \(names(summary.added)).")) }
        if !summary.removed.isEmpty {
            lines.append(system(frame, summary.removedSelf ? "You were removed from the group." : "\(frame.sender) removed \(names(summary.removed))."))
        }
        return lines
    }

    /// Joins from a Welcome with the matching stored KeyPackage, then plans a self-update.
    private func join(_ frame: ServerFrame.WelcomeFrame) async throws {
        guard groups[frame.group] == nil,
              case .welcome(let welcome) = try MLSMessage(tlsEncoded: [UInt8](frame.welcome)) else { return }
        let key = try sealingKey()
        for entry in welcome.secrets {
            guard let sealed = try store.keyPackage(reference: entry.newMember) else { continue }
            let bundle = try decodeBundle(try key.open(sealed, context: "keypackage"))
            do {
                groups[frame.group] = try Group.join(welcome: welcome, keyPackage: bundle, policy: policy)
            } catch MLSError.invalidWelcome(let reason) where reason.hasPrefix("no ratchet tree") {
                // Other clients may leave the tree out of the Welcome; the server keeps it.
                let (api, token) = try await requireAPI()
                let response = try await api.call(.GET, "/v1/groups/\(frame.group)/tree", token: token, as: API.RatchetTree.self)
                let tree = try RatchetTree(suite, encoded: [UInt8](response.tree))
                groups[frame.group] = try Group.join(welcome: welcome, keyPackage: bundle, ratchetTree: tree, policy: policy)
            }
            lastSeq[frame.group] = frame.seq
            needsUpdate.insert(frame.group)
            if !bundle.keyPackage.isLastResort { try store.deleteKeyPackage(reference: entry.newMember) }
            try persist(frame.group, needsUpdate: true, lines: [HistoryEntry(seq: frame.seq, time: frame.time, sender: "", kind: .system, text: "You joined \(frame.group).")])
            try socket?.send(.ack(.init(group: frame.group, seq: frame.seq)))
            return
        }
    }

    // MARK: Submitting

    /// Sends what `build` makes from the group's current state, and waits for
    /// the server's echo, processing other frames in order meanwhile. On
    /// `wrongEpoch` another commit won: by then it has been processed, so the
    /// message is rebuilt on the new epoch and sent again.
    @discardableResult
    func submit(in name: String, id: String = UUID().uuidString, _ build: (inout Group) throws -> (MLSMessage, MLSMessage?)) async throws -> ServerFrame.Message {
        try await connect()
        for _ in 0..<5 {
            guard var group = groups[name] else { throw ClientError.noSuchGroup(name) }
            let (message, welcome) = try build(&group)
            groups[name] = group
            try socket!.send(.send(.init(id: id, group: name, message: Data(try message.tlsEncoded()), welcome: try welcome.map { Data(try $0.tlsEncoded()) })))
            while true {
                guard let frame = try await socket!.next(timeout: timeout) else { throw ClientError.timedOut }
                switch frame {
                case .message(let echo) where echo.id == id:
                    try await handle(frame)
                    return echo
                case .error(let error) where error.id == id:
                    groups[name]?.discardPendingCommit()
                    guard error.error.code == .wrongEpoch else { throw ClientError.server(error.error) }
                default:
                    try await handle(frame)
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

    /// Sends queued messages, oldest first.
    func flushOutbox() async throws {
        let key = try sealingKey()
        for entry in try store.outbox() {
            guard groups[entry.group]?.isActive == true else { continue }
            let text = try key.open(entry.sealed, context: "outbox")
            try await submit(in: entry.group, id: entry.id) { group in (try group.encrypt(text), nil) }
        }
    }

    // MARK: Operations

    public func groupSummaries() -> [GroupSummary] {
        groups.sorted { $0.key < $1.key }.map { name, group in
            GroupSummary(
                name: name, members: memberNames(group), admins: (try? ParleyGroupPolicy.admins(in: group.context.extensions)) ?? [],
                epoch: group.epoch, lastSeq: lastSeq[name] ?? 0, active: group.isActive)
        }
    }

    func memberNames(_ group: Group) -> [String] {
        Array(Set(group.members.compactMap { ParleyGroupPolicy.username(of: $0.credential) })).sorted()
    }

    func group(_ name: String) throws -> Group {
        guard let group = groups[name] else { throw ClientError.noSuchGroup(name) }
        return group
    }

    /// Creates a group with this user as its admin.
    public func createGroup(_ name: String) async throws {
        let (api, token) = try await requireAPI()
        guard let username else { throw ClientError.notLoggedIn }
        let group = try Group.create(
            suite, groupID: suite.randomBytes(32), credential: credential, signatureKeys: try signatureKeys(),
            extensions: [try ParleyGroupPolicy.adminsExtension([username])], policy: policy)
        _ = try await api.call(.POST, "/v1/groups", token: token,
            json: API.CreateGroup(name: name, groupInfo: Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())), as: API.Group.self)
        groups[name] = group
        lastSeq[name] = 0
        try persist(name, lines: [HistoryEntry(seq: 0, time: UInt64(Date().timeIntervalSince1970 * 1000), sender: "", kind: .system, text: "You created \(name).")])
        try store.set("updated:" + name, string: String(Date().timeIntervalSince1970))
    }

    /// Adds users (every device of each) with one commit.
    public func add(_ users: [String], to name: String) async throws {
        try await sync()
        _ = try group(name)
        let (api, token) = try await requireAPI()
        var keyPackages: [KeyPackage] = []
        for user in users {
            let claimed = try await api.call(.POST, "/v1/users/\(user)/keypackages/claim", token: token, as: API.ClaimedKeyPackages.self)
            for entry in claimed.keyPackages {
                guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](entry.keyPackage)),
                      ParleyGroupPolicy.username(of: package.leafNode.credential) == user else {
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
        let leaves = try group(name).members.filter { ParleyGroupPolicy.username(of: $0.credential) == user }.map(\.index)
        guard !leaves.isEmpty else { throw ClientError.noSuchMember(user, group: name) }
        try await commit(in: name) { try $0.commit(CommitOptions(remove: leaves, includePendingProposals: false)) }
    }

    /// Refreshes this device's leaf and path keys in `name` (post-compromise security).
    public func update(_ name: String) async throws {
        try await sync()
        _ = try group(name)
        try await commit(in: name) { try $0.selfUpdate() }
    }

    /// Asks to leave: an admin's client commits the request when it next syncs.
    public func leave(_ name: String) async throws {
        try await sync()
        _ = try group(name)
        try await submit(in: name) { group in (try group.proposeLeave(), nil) }
    }

    public func destroy(_ name: String) async throws {
        let (api, token) = try await requireAPI()
        try await api.request(.DELETE, "/v1/groups/\(name)", token: token)
        groups.removeValue(forKey: name)
        lastSeq.removeValue(forKey: name)
        try store.deleteGroup(name)
    }

    public func members(_ name: String) throws -> [String] { memberNames(try group(name)) }

    /// The MLS group id and epoch of `name` (for the package's own load generator).
    package func wireIdentity(of name: String) throws -> (groupID: [UInt8], epoch: UInt64) {
        let group = try group(name)
        return (group.groupID, group.epoch)
    }

    /// Sends a text: stored in the outbox first, so it survives being offline.
    public func send(_ text: String, to name: String) async throws -> SendOutcome {
        _ = try group(name)
        let id = UUID().uuidString
        try store.enqueue(id: id, group: name, sealed: try sealingKey().seal(Array(text.utf8), context: "outbox"))
        do {
            try await connect()
            try await flushOutbox()
            try acknowledgeAll()
        } catch ClientError.unreachable {
            return .queued
        }
        let sent = try history(name).last { $0.sender == username && $0.text == text }
        return sent.map { .sent(seq: $0.seq) } ?? .queued
    }

    /// Processes the frames that arrive within `timeout` and returns the
    /// names of the groups whose history changed. For interactive use: one
    /// task alternates between this and the user's commands.
    public func pump(timeout: Duration) async throws -> Set<String> {
        try await connect()
        var changed = Set<String>()
        var wait = timeout
        while let frame = try await socket!.next(timeout: wait) {
            switch frame {
            case .message(let message): changed.insert(message.group)
            case .welcome(let welcome): changed.insert(welcome.group)
            case .groupDestroyed(let destroyed): changed.insert(destroyed.group)
            case .error, .replayFinished: break
            }
            try await handle(frame)
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
    public func follow(_ name: String, until stop: @escaping @Sendable () -> Bool = { false }, onEntry: @Sendable (HistoryEntry) async -> Void) async throws {
        try await connect()
        var seen = try history(name).count
        while !stop() {
            guard let frame = try await socket!.next(timeout: .milliseconds(250)) else { continue }
            try await handle(frame)
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
            theirKeys = Set(try await api.call(.GET, "/v1/users/\(user)", token: token, as: API.User.self).signatureKeys.map { [UInt8]($0) })
        }
        let mine = try signatureKeys().publicKey.bytes
        let halves = [(me, [mine]), (user, theirKeys.sorted { $0.lexicographicallyPrecedes($1) })].sorted { $0.0 < $1.0 }
        let number = halves.map { Self.fingerprintDigits(name: $0.0, keys: $0.1) }.joined()
        let digest = Array(SHA256.hash(data: theirKeys.sorted { $0.lexicographicallyPrecedes($1) }.flatMap { $0 }))
        let previous = try store.knownKeys(user)
        try store.setKnownKeys(user, digest)
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
