@testable import MLS

/// A client identity: credential and signature keys, able to mint KeyPackages.
struct TestClient {
    let name: String
    let suite: CipherSuiteProvider
    let signatureKeys: SignatureKeyPair

    init(_ name: String, _ suite: CipherSuiteProvider) {
        self.name = name
        self.suite = suite
        signatureKeys = suite.generateSignatureKeyPair()
    }

    var credential: Credential { .basic(identity: Array(name.utf8)) }

    func keyPackage() throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: credential,
            signatureKeys: signatureKeys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
    }

    func createGroup(
        _ id: String = "group",
        policy: GroupPolicy = GroupPolicy(),
        extensions: [Extension] = []
    ) throws -> Group {
        try Group.create(
            suite,
            groupID: Array(id.utf8),
            credential: credential,
            signatureKeys: signatureKeys,
            extensions: extensions,
            policy: policy
        )
    }
}

extension ProcessedMessage {
    var applicationText: String? {
        guard case .application(let message) = self else { return nil }
        return String(decoding: message.data, as: UTF8.self)
    }

    var commitSummary: CommitSummary? {
        guard case .commit(let summary) = self else { return nil }
        return summary
    }
}

/// Adds `clients` to `group` with one commit; returns their joined groups
/// after every existing member in `others` has processed the commit.
func add(
    _ clients: [TestClient],
    to committer: inout Group,
    others: inout [Group],
    policy: GroupPolicy = GroupPolicy()
) throws -> [Group] {
    let bundles = try clients.map { try $0.keyPackage() }
    let output = try committer.addMembers(bundles.map(\.keyPackage))
    _ = try committer.process(output.message)
    for index in others.indices { _ = try others[index].process(output.message) }
    guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("no Welcome") }
    return try bundles.map { try Group.join(welcome: welcome, keyPackage: $0, policy: policy) }
}

extension TestClient {
    /// alice (the creator), bob and charlie in one group at epoch 1, and the
    /// server's secret-free view of it.
    static func threeMemberGroup(
        _ suite: CipherSuiteProvider,
        policy: GroupPolicy
    ) throws -> (alice: Group, bob: Group, charlie: Group, server: PublicGroup) {
        var alice = try TestClient("alice", suite).createGroup(policy: policy)
        var server = try PublicGroup(groupInfo: alice.groupInfo(), policy: policy)
        let bundles = try [TestClient("bob", suite), TestClient("charlie", suite)].map { try $0.keyPackage() }
        let output = try alice.addMembers(bundles.map(\.keyPackage))
        _ = try server.process(output.message)
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (
            alice, try Group.join(welcome: welcome, keyPackage: bundles[0], policy: policy),
            try Group.join(welcome: welcome, keyPackage: bundles[1], policy: policy), server
        )
    }
}
