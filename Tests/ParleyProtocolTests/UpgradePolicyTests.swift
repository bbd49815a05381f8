import Foundation
import MLS
import ParleyProtocol
import Testing

/// The one ReInit Parley's policy accepts (ParleyGroupPolicy+Upgrade.swift): an admin's, from
/// the standard suite to the post-quantum one, keeping the extensions, with a fresh 32-byte
/// group ID. Everything else is refused by the same hook members and the server run.
@Suite struct UpgradePolicyTests {
    let standard = try! ParleySuites.standard.provider()
    let postQuantum = try! ParleySuites.postQuantum.provider()

    func member(_ name: String, _ suite: CipherSuiteProvider) throws -> KeyPackageBundle {
        try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array(name.utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
    }

    /// alice (admin) and bob in a group of `suite`, as each holds it.
    func group(_ suite: CipherSuiteProvider) throws -> (alice: Group, bob: Group) {
        var alice = try Group.create(
            suite,
            groupID: suite.randomBytes(32),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            extensions: [
                try ParleyGroupPolicy.adminsExtension(["alice"]), try ParleyGroupPolicy.groupNameExtension("g"),
            ],
            policy: ParleyGroupPolicy.groupPolicy()
        )
        let bob = try member("bob", suite)
        let output = try alice.addMembers([bob.keyPackage])
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        return (alice, try Group.join(welcome: welcome, keyPackage: bob, policy: ParleyGroupPolicy.groupPolicy()))
    }

    func reInit(
        _ group: Group,
        suite: CipherSuite? = nil,
        id: [UInt8]? = nil,
        extensions: [Extension]? = nil
    )
        -> ReInit
    {
        ReInit(
            groupID: id ?? Array(repeating: 1, count: 32),
            cipherSuite: suite ?? ParleySuites.postQuantum,
            extensions: extensions ?? group.context.extensions
        )
    }

    func refusal(_ body: () throws -> Void) -> ParleyPolicyError? {
        do {
            try body()
            return nil
        } catch MLSError.rejectedByPolicy(let rejection) {
            return rejection.error as? ParleyPolicyError
        } catch {
            Issue.record("refused, but not by the policy: \(error)")
            return nil
        }
    }

    @Test func onlyAnAdminsUpgradeToThePostQuantumSuiteKeepingTheGroupIsAccepted() throws {
        var (alice, bob) = try group(standard)
        let commit = { (group: inout Group, reInit: ReInit) in
            _ = try group.commit(CommitOptions(includePendingProposals: false, reInit: reInit))
        }
        let otherSuite = CipherSuite.mls128DHKEMX25519ChaCha20Poly1305SHA256Ed25519
        #expect(refusal { try commit(&alice, reInit(alice, suite: otherSuite)) } == .invalidUpgrade)
        #expect(refusal { try commit(&alice, reInit(alice, id: alice.groupID)) } == .invalidUpgrade)
        #expect(refusal { try commit(&alice, reInit(alice, id: [1, 2, 3])) } == .invalidUpgrade)
        let seized = [
            try ParleyGroupPolicy.adminsExtension(["alice", "bob"]), try ParleyGroupPolicy.groupNameExtension("g"),
        ]
        #expect(refusal { try commit(&alice, reInit(alice, extensions: seized)) } == .invalidUpgrade)
        #expect(refusal { try commit(&bob, reInit(bob)) } == .notAdmin)

        // The upgrade itself: committed, and bob's copy of the policy accepts it too.
        let output = try alice.commit(CommitOptions(includePendingProposals: false, reInit: reInit(alice)))
        _ = try alice.process(output.message)
        _ = try bob.process(output.message)
        #expect(bob.reInit == reInit(alice))
    }

    @Test func aPostQuantumGroupIsNeverReInitialisedAgainNorDowngraded() throws {
        var (alice, _) = try group(postQuantum)
        for suite in [ParleySuites.postQuantum, ParleySuites.standard] {
            #expect(
                refusal {
                    _ = try alice.commit(
                        CommitOptions(includePendingProposals: false, reInit: reInit(alice, suite: suite))
                    )
                } == .invalidUpgrade
            )
        }
    }
}
