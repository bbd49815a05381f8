import Foundation
import MLS
import ParleyProtocol

extension LiveGroup {
    /// Bumped when the fixture's layout changes, so an old file is rebuilt.
    static let fixtureVersion: UInt16 = 1

    static func loadOrCreate() throws -> LiveGroup {
        guard let path = ProcessInfo.processInfo.environment["PARLEY_FUZZ_FIXTURE"] else { return try create() }
        if let data = FileManager.default.contents(atPath: path), let group = try? LiveGroup(fixture: Array(data)) {
            return group
        }
        let group = try create()
        try Data(group.fixture()).write(to: URL(fileURLWithPath: path))
        return group
    }

    /// Builds the group through the public API, exactly as Parley clients do:
    /// alice creates it as admin and adds bob and carol in one Commit that
    /// the server's view and every member processes.
    static func create() throws -> LiveGroup {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let policy = ParleyGroupPolicy.groupPolicy()
        let bundle = { (name: String) throws -> KeyPackageBundle in
            try KeyPackageBundle(
                suite, credential: .basic(identity: Array(name.utf8)), signatureKeys: suite.generateSignatureKeyPair(),
                lifetime: Lifetime(notBefore: 0, notAfter: .max))
        }
        var alice = try Group.create(
            suite, groupID: Array("fuzz-group".utf8), credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(), extensions: [ParleyGroupPolicy.adminsExtension(["alice"])],
            policy: policy)
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        let joiners = try [bundle("bob"), bundle("carol")]
        let added = try alice.addMembers(joiners.map(\.keyPackage))
        _ = try server.process(added.message)
        _ = try alice.process(added.message)
        guard case .welcome(let welcome)? = added.welcome else { throw MLSError.invalidWelcome("no Welcome for bob and carol") }
        let members = try [alice] + joiners.map { try Group.join(welcome: welcome, keyPackage: $0, policy: policy) }
        let dave = try bundle("dave")
        return LiveGroup(members: members, server: server, dave: dave, processSeeds: try seeds(members, dave))
    }

    /// Valid messages of epoch 1, made on copies so the group stays put:
    /// application messages, proposals, Commits of every kind Parley uses
    /// (with and without a path, by value and by reference), a Welcome to
    /// dave, a GroupInfo and a KeyPackage.
    private static func seeds(_ members: [Group], _ dave: KeyPackageBundle) throws -> [[UInt8]] {
        var (alice, bob, carol) = (members[0], members[1], members[2])
        var seeds: [[MLSMessage]] = [
            [try alice.encrypt(Array("hello from alice".utf8))],
            [try bob.encrypt(Array("hello from bob".utf8), authenticatedData: [1, 2, 3])],
            [try alice.selfUpdate().message],
            [try bob.selfUpdate().message],
            [try alice.removeMembers([LeafIndex(2)]).message],
            [.groupInfo(try alice.groupInfo())],
            [.keyPackage(dave.keyPackage)],
        ]
        let adding = try alice.addMembers([dave.keyPackage])
        seeds.append([adding.message])
        if let welcome = adding.welcome { seeds.append([welcome]) }
        let admins = try ParleyGroupPolicy.adminsExtension(["alice", "bob"])
        seeds.append([try alice.commit(CommitOptions(groupContextExtensions: [admins])).message])
        seeds.append([try bob.propose(.groupContextExtensions([admins]))])
        seeds.append([try bob.propose(.remove(removed: LeafIndex(0)))])
        // A proposal and the Commit that covers it by reference: carol leaves, alice commits.
        let leave = try carol.proposeLeave()
        var committer = members[0]
        _ = try committer.process(leave)
        seeds.append([leave, try committer.commit().message])
        // An application message from the next epoch after a self-update.
        var updater = members[0]
        let update = try updater.selfUpdate().message
        _ = try updater.process(update)
        seeds.append([update, try updater.encrypt(Array("after the update".utf8))])
        return try seeds.map { messages in try messages.flatMap { try $0.tlsEncoded() } }
    }

    // MARK: The fixture file

    func fixture() throws -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.fixtureVersion)
        try writer.writeVector { inner in
            for member in members { try inner.writeOpaque(member.serialized()) }
        }
        try writer.writeOpaque(server.serialized())
        try writer.writeOpaque(dave.keyPackage.tlsEncoded())
        for key in [dave.initPrivateKey.bytes, dave.encryptionPrivateKey.bytes, dave.signaturePrivateKey.bytes] {
            try writer.writeOpaque(key)
        }
        try writer.writeVector { inner in
            for seed in processSeeds { try inner.writeOpaque(seed) }
        }
        return writer.bytes
    }

    convenience init(fixture bytes: [UInt8]) throws {
        let policy = ParleyGroupPolicy.groupPolicy()
        var reader = TLSReader(bytes)
        guard try reader.read(UInt16.self) == Self.fixtureVersion else {
            throw MLSError.invalidState("the fuzz fixture has another layout version")
        }
        let members = try reader.readVector(of: { try Group(serialized: $0.readOpaque(), policy: policy) })
        let server = try PublicGroup(serialized: reader.readOpaque(), policy: policy)
        let dave = try KeyPackageBundle(
            keyPackage: KeyPackage(tlsEncoded: reader.readOpaque()), initPrivateKey: HPKEPrivateKey(reader.readOpaque()),
            encryptionPrivateKey: HPKEPrivateKey(reader.readOpaque()), signaturePrivateKey: SignaturePrivateKey(reader.readOpaque()))
        let seeds = try reader.readVector(of: { try $0.readOpaque() })
        try reader.finish()
        guard members.count == 3 else { throw MLSError.invalidState("the fuzz fixture needs three members") }
        self.init(members: members, server: server, dave: dave, processSeeds: seeds)
    }
}
