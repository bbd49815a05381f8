import Crypto
import Foundation
import MLS
import ParleyProtocol

public struct GroupSummary: Sendable, Hashable {
    /// This device's name for the group, which commands use: the server's name, or
    /// `name#2` for a different group that arrived under a name one of yours already has.
    public var name: String
    /// The name its admins gave it, from the MLS GroupContext (the server cannot change it);
    /// what a user should be shown. The server's name for groups made before it existed.
    public var title: String = ""
    public var members: [String]
    public var admins: [String]
    public var epoch: UInt64
    public var lastSeq: UInt64
    public var active: Bool
    /// Why this member can no longer follow the group; nil while it can.
    public var problem: String?
    /// Warnings about the group that stay in its status (e.g. the server said it was
    /// destroyed without an admin confirming it).
    public var warnings: [String] = []
    /// Whether the group uses the post-quantum cipher suite (``ParleySuites/postQuantum``).
    public var postQuantum = false
    /// How its cipher suite is shown: "post-quantum" or "classical" (``ParleySuites/label(_:)``).
    public var security: String { postQuantum ? "post-quantum" : "classical" }
}

extension GroupEngine {
    // MARK: Reading

    func groupSummaries() -> [GroupSummary] {
        let followed = groups.sorted { $0.key < $1.key }.map { name, group in
            GroupSummary(
                name: name,
                title: Self.title(of: group, calledByServer: name),
                members: memberNames(group),
                admins: (try? ParleyGroupPolicy.admins(in: group.context.extensions)) ?? [],
                epoch: group.epoch,
                lastSeq: records[name]?.lastSeq ?? 0,
                active: group.isActive,
                problem: records[name]?.problem,
                warnings: records[name]?.warnings ?? [],
                postQuantum: group.suite.suite == ParleySuites.postQuantum
            )
        }
        let known = records.values.filter { groups[$0.name] == nil }.sorted { $0.name < $1.name }.map {
            GroupSummary(
                name: $0.name,
                title: $0.name,
                members: [],
                admins: [],
                epoch: 0,
                lastSeq: $0.lastSeq,
                active: false,
                problem: $0.problem,
                warnings: $0.warnings ?? []
            )
        }
        return followed + known
    }

    func memberNames(_ group: Group) -> [String] {
        Set(group.members.compactMap { ParleyGroupPolicy.username(of: $0.credential) }).sorted()
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

    func members(_ name: String) throws -> [String] { memberNames(try group(name)) }

    func isAdmin(of name: String) -> Bool { groups[name].map(isAdmin) ?? false }

    // MARK: Group operations

    /// Creates a group with this user as its admin, in the post-quantum suite when asked
    /// (its members then join with KeyPackages of that suite, which every device uploads).
    func createGroup(_ typed: String, postQuantum: Bool = false) async throws {
        // The server takes names in Unicode NFC only (GroupName); terminals may type them decomposed.
        let name = typed.precomposedStringWithCanonicalMapping
        let suite = postQuantum ? try ParleySuites.postQuantum.provider() : suite
        let group = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: identity.credential,
            signatureKeys: identity.signatureKeys,
            extensions: [
                try ParleyGroupPolicy.adminsExtension([identity.username]),
                try ParleyGroupPolicy.groupNameExtension(name),
            ],
            policy: policy
        )
        let groupInfo = Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())
        try await transport.createGroup(API.CreateGroup(name: name, groupInfo: groupInfo))
        groups[name] = group
        records[name] = GroupRecord(name: name, updated: Date().timeIntervalSince1970)
        anchorHistory(name, group, at: 0)
        try persist(name, lines: [systemLine(name, "You created \(name).", seq: 0)])
    }

    /// Adds users (every device of each that their signed device list names) with one commit;
    /// returns a warning for each device the server offered that a list does not name.
    @discardableResult
    func add(_ users: [String], to name: String) async throws -> [String] {
        try await sync()
        let group = try usableGroup(name)
        var keyPackages: [KeyPackage] = []
        var warnings: [String] = []
        for user in users {
            let (missing, refused) = try await missingDevices(of: user, in: group, name: name)
            keyPackages += missing
            warnings += refused
        }
        let adding = keyPackages
        try await commit(in: name, CommitOptions(add: adding, includePendingProposals: false))
        for warning in warnings { try warn(name, warning) }
        return warnings
    }

    /// KeyPackages of `user`'s listed devices that `tree` lacks, and a warning for each device the
    /// server offered that `user`'s signed list does not name. Devices already in the group are
    /// skipped before the claim, so their one-time KeyPackages are not spent for nothing.
    func missingDevices(
        of user: String,
        in group: Group,
        name: String
    ) async throws -> (missing: [KeyPackage], refused: [String]) {
        let tree = group.tree
        let list = try await verifiedDeviceList(of: user)
        let present = tree.members.filter { ParleyGroupPolicy.username(of: $0.leaf.credential) == user }
            .map(\.leaf.signatureKey.bytes)
        if let list, !present.isEmpty, list.activeDevices.allSatisfy({ present.contains($0.signatureKey) }) {
            throw ClientError.alreadyMember(user, group: name)
        }
        var offered: [KeyPackage] = []
        do {
            let suite = group.suite.suite
            for encoded in try await transport.claimKeyPackages(of: user, skipping: present, suite: suite) {
                guard case .keyPackage(let package) = try MLSMessage(tlsEncoded: [UInt8](encoded)),
                    ParleyGroupPolicy.username(of: package.leafNode.credential) == user
                else {
                    throw ClientError.foreignKeyPackage(user: user)
                }
                // A server that hands out another suite's KeyPackage (a downgrade, or a mistake)
                // is refused here, before MLS would refuse the Add with a less clear error.
                guard package.cipherSuite == suite else { throw ClientError.wrongSuiteKeyPackage(user: user) }
                offered.append(package)
            }
        } catch ClientError.server(let body) where body.code == .noKeyPackages && !present.isEmpty && list == nil {
            throw ClientError.alreadyMember(user, group: name)
        }
        let (listed, refused) = Self.listedPackages(offered, of: user, list: list)
        guard !listed.isEmpty else { throw ClientError.noListedDevices(user: user) }
        // MLS refuses a second leaf with the same key: a server that ignored `skipping` gains nothing.
        let missing = listed.filter { tree.leaf(withSignatureKey: $0.leafNode.signatureKey) == nil }
        guard !missing.isEmpty else { throw ClientError.alreadyMember(user, group: name) }
        return (missing, refused)
    }

    /// Removes every device of `user`.
    func remove(_ user: String, from name: String) async throws {
        try await sync()
        let leaves = try usableGroup(name).members.filter { ParleyGroupPolicy.username(of: $0.credential) == user }
            .map(\.index)
        guard !leaves.isEmpty else { throw ClientError.noSuchMember(user, group: name) }
        try await commit(in: name, CommitOptions(remove: leaves, includePendingProposals: false))
    }

    /// Refreshes this device's leaf and path keys in `name` (post-compromise security).
    func update(_ name: String) async throws {
        try await sync()
        _ = try usableGroup(name)
        try await commit(in: name, .selfUpdate)
    }

    /// Asks to leave: an admin's client commits the request when it next syncs.
    func leave(_ name: String) async throws {
        try await sync()
        _ = try usableGroup(name)
        try await submit(in: name) { group, claim in (try group.proposeLeave(authenticatedData: claim), nil) }
    }

    /// Tells the members, with a notice MLS signs as this admin's (the server's own word
    /// deletes nothing on their devices), then destroys the group on the server and here.
    func destroy(_ name: String) async throws {
        let notice = try ApplicationContent.destroyGroup.encoded()
        let seq = try await submit(in: name) { group, data in
            (try group.encrypt(notice, authenticatedData: data), nil)
        }
        try await transport.destroyGroup(serverName(name), notice: seq)
        try destroyConfirmed(name)
    }

    // MARK: KeyPackages

    /// Uploads KeyPackages of each of Parley's suites (``ParleySuites/all``) when the server
    /// holds fewer than `minimum` of it: anyone may create a post-quantum group, or upgrade one
    /// this device is in, while it is offline.
    func topUpKeyPackages(minimum: Int) async throws {
        for suite in ParleySuites.all {
            try await topUpKeyPackages(minimum: minimum, suite: try suite.provider())
        }
    }

    private func topUpKeyPackages(minimum: Int, suite: CipherSuiteProvider) async throws {
        let stock = try await transport.keyPackageStock(suite: suite.suite)
        // The server's numbers are clamped: a hostile one cannot make the arithmetic trap
        // or this device mint millions of KeyPackages.
        let cap = suite.suite == ParleySuites.standard ? Self.maxKeyPackageStock : Self.maxPostQuantumKeyPackageStock
        let watermark = min(max(minimum, stock.lowWatermark), cap)
        let available = max(0, stock.available)
        guard available < watermark else { return }
        let count = watermark * 2 - available
        var packages: [Data] = []
        for index in 0...count {
            let bundle = try KeyPackageBundle(
                suite,
                credential: identity.credential,
                signatureKeys: identity.signatureKeys,
                lifetime: Lifetime(notBefore: 0, notAfter: now() / 1000 + 90 * 86400),
                lastResort: index == count
            )
            try store.storeKeyPackage(bundle, reference: try bundle.keyPackage.reference(suite))
            packages.append(Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded()))
        }
        let lastResort = packages.removeLast()
        try await transport.uploadKeyPackages(API.UploadKeyPackages(keyPackages: packages, lastResort: lastResort))
    }

    // MARK: Safety numbers

    /// A safety number for this user and `user`: 60 digits both sides compute from their
    /// account identity keys (pinned, so linking or revoking a device does not change it), or,
    /// for an account without one, from the signature keys their groups actually use. Compare
    /// out of band. `changed` is true when `user`'s keys differ from those seen last time.
    func verify(_ user: String) async throws -> (number: String, changed: Bool) {
        if let mine = try store.contactPin(of: identity.username), let theirs = try await verifiedDeviceList(of: user) {
            return try safetyNumber(user, mine: [mine.identityKey], theirs: [theirs.identityKey])
        }
        var theirKeys = Set<[UInt8]>()
        for group in groups.values {
            for member in group.tree.members where ParleyGroupPolicy.username(of: member.leaf.credential) == user {
                theirKeys.insert(member.leaf.signatureKey.bytes)
            }
        }
        if theirKeys.isEmpty { theirKeys = Set(try await transport.signatureKeys(of: user)) }
        let sortedKeys = theirKeys.sorted { $0.lexicographicallyPrecedes($1) }
        return try safetyNumber(user, mine: [identity.signatureKeys.publicKey.bytes], theirs: sortedKeys)
    }

    private func safetyNumber(
        _ user: String,
        mine: [[UInt8]],
        theirs sortedKeys: [[UInt8]]
    ) throws -> (number: String, changed: Bool) {
        let halves = [(identity.username, mine), (user, sortedKeys)].sorted { $0.0 < $1.0 }
        let number = halves.map { Self.fingerprintDigits(name: $0.0, keys: $0.1) }.joined()
        let digest = Array(SHA256.hash(data: sortedKeys.flatMap { $0 }))
        let previous = try store.knownKeys(of: user)
        try store.setKnownKeys(digest, of: user)
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
