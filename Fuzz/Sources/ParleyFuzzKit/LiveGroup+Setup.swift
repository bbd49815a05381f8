import Foundation
import MLS
import ParleyProtocol

extension LiveGroup {
    /// Bumped when the fixture's layout changes, so an old file is rebuilt.
    static let fixtureVersion: UInt16 = 3
    static let groupID = Array("fuzz-group".utf8)

    /// The group in `suite`, from its fixture file if there is one: `$PARLEY_FUZZ_FIXTURE` for
    /// suite 1, the same name with `-pq` before its extension for the post-quantum suite.
    static func loadOrCreate(_ suite: CipherSuite) throws -> LiveGroup {
        guard let shared = ProcessInfo.processInfo.environment["PARLEY_FUZZ_FIXTURE"] else {
            return try create(suite)
        }
        let path = suite == ParleySuites.standard ? shared : postQuantumFixture(shared)
        if let data = FileManager.default.contents(atPath: path),
            let group = try? LiveGroup(fixture: Array(data)), group.members[0].suite.suite == suite
        {
            return group
        }
        let group = try create(suite)
        try Data(group.fixture()).write(to: URL(fileURLWithPath: path))
        return group
    }

    /// `work/live-group.fixture` -> `work/live-group-pq.fixture`.
    static func postQuantumFixture(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = url.deletingPathExtension().lastPathComponent + "-pq"
        let renamed = url.deletingLastPathComponent().appendingPathComponent(name)
        return (url.pathExtension.isEmpty ? renamed : renamed.appendingPathExtension(url.pathExtension)).path
    }

    /// Builds the group in `cipherSuite` through the public API, exactly as Parley clients do:
    /// alice creates it as admin and adds bob and carol in one Commit that
    /// the server's view and every member processes.
    static func create(_ cipherSuite: CipherSuite) throws -> LiveGroup {
        let suite = try cipherSuite.provider()
        let policy = ParleyGroupPolicy.groupPolicy()
        let keys = (0..<3).map { _ in suite.generateSignatureKeyPair() }
        let bundle = { (name: String, keys: SignatureKeyPair) throws -> KeyPackageBundle in
            try KeyPackageBundle(
                suite,
                credential: .basic(identity: Array(name.utf8)),
                signatureKeys: keys,
                lifetime: Lifetime(notBefore: 0, notAfter: .max)
            )
        }
        var alice = try Group.create(
            suite,
            groupID: groupID,
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: keys[0],
            extensions: [ParleyGroupPolicy.adminsExtension(["alice"])],
            policy: policy
        )
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        let joiners = try [bundle("bob", keys[1]), bundle("carol", keys[2])]
        let added = try alice.addMembers(joiners.map(\.keyPackage))
        _ = try server.process(added.message)
        _ = try alice.process(added.message)
        guard case .welcome(let welcome)? = added.welcome else {
            throw MLSError.invalidWelcome("no Welcome for bob and carol")
        }
        let members = try [alice] + joiners.map { try Group.join(welcome: welcome, keyPackage: $0, policy: policy) }
        let dave = try bundle("dave", suite.generateSignatureKeyPair())
        return LiveGroup(
            members: members,
            signers: keys.map(\.privateKey),
            server: server,
            dave: dave,
            processSeeds: try Seeds(members: members, dave: dave).all()
        )
    }

    // MARK: The fixture file

    func fixture() throws -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.fixtureVersion)
        try writer.writeVector { inner in
            for member in members { try inner.writeOpaque(member.serialized()) }
        }
        try writer.writeVector { inner in
            for signer in signers { try inner.writeOpaque(signer.bytes) }
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
        let signers = try reader.readVector(of: { SignaturePrivateKey(try $0.readOpaque()) })
        let server = try PublicGroup(serialized: reader.readOpaque(), policy: policy)
        let dave = try KeyPackageBundle(
            keyPackage: KeyPackage(tlsEncoded: reader.readOpaque()),
            initPrivateKey: HPKEPrivateKey(reader.readOpaque()),
            encryptionPrivateKey: HPKEPrivateKey(reader.readOpaque()),
            signaturePrivateKey: SignaturePrivateKey(reader.readOpaque())
        )
        let seeds = try reader.readVector(of: { try $0.readOpaque() })
        try reader.finish()
        guard members.count == 3, signers.count == 3 else {
            throw MLSError.invalidState("the fuzz fixture needs three members")
        }
        self.init(members: members, signers: signers, server: server, dave: dave, processSeeds: seeds)
    }
}
