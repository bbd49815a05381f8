import Testing

@testable import MLS

/// Branching (RFC 9420 §11.3): a new group whose first Commit and Welcome carry
/// the old group's resumption PSK of usage branch (§8.6).
@Suite struct BranchTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func pair() throws -> (alice: Group, bob: Group) {
        var alice = try TestClient("alice", suite).createGroup()
        let bob = try TestClient("bob", suite).keyPackage()
        let output = try alice.addMembers([bob.keyPackage])
        _ = try alice.process(output.message)
        let welcome = try #require(output.welcome.flatMap { if case .welcome(let w) = $0 { w } else { nil } })
        return (alice, try Group.join(welcome: welcome, keyPackage: bob))
    }

    /// Alice's branch of `old` with bob's new KeyPackage: the branch group and its Welcome.
    func branch(_ old: Group, adding bob: KeyPackageBundle) throws -> (group: Group, welcome: Welcome) {
        let psk = old.resumptionPSK(usage: .branch)
        var policy = old.policy
        policy.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk
        var branch = try TestClient("alice", suite).createGroup("branch", policy: policy)
        let output = try branch.commit(CommitOptions(add: [bob.keyPackage], preSharedKeys: [psk.id]))
        _ = try branch.process(output.message)
        let welcome = try #require(output.welcome.flatMap { if case .welcome(let w) = $0 { w } else { nil } })
        return (branch, welcome)
    }

    @Test func aMemberOfTheOldGroupJoinsTheBranchWithItsResumptionPSK() throws {
        let (alice, bob) = try pair()
        let bobsPackage = try TestClient("bob", suite).keyPackage()
        var (branch, welcome) = try branch(alice, adding: bobsPackage)

        let psk = bob.resumptionPSK(usage: .branch)
        var policy = bob.policy
        policy.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk
        var joined = try Group.join(welcome: welcome, keyPackage: bobsPackage, policy: policy)
        #expect(joined.groupID == Array("branch".utf8) && joined.epochAuthenticator == branch.epochAuthenticator)
        guard case .application(let message) = try joined.process(branch.encrypt(Array("hi".utf8))) else {
            Issue.record("not an application message")
            return
        }
        #expect(message.data == Array("hi".utf8))
    }

    @Test func aClientOutsideTheOldGroupCannotJoinTheBranch() throws {
        let (alice, _) = try pair()
        let outsider = try TestClient("mallory", suite).keyPackage()
        let (_, welcome) = try branch(alice, adding: outsider)
        let error = #expect(throws: MLSError.self) { try Group.join(welcome: welcome, keyPackage: outsider) }
        #expect(error?.kind == "missingPSK")
    }

    @Test func aBranchPSKIsRefusedInAnOrdinaryCommit() throws {
        var (alice, _) = try pair()
        let psk = alice.resumptionPSK(usage: .branch)
        alice.policy.otherGroupsResumptionPSKs[psk.id.kind] = psk.psk
        let error = #expect(throws: MLSError.self) { try alice.commit(CommitOptions(preSharedKeys: [psk.id])) }
        #expect(error?.kind == "invalidProposal")
    }
}
