import Testing

@testable import MLS

/// Callers branch on MLSError's cases, never on its sentences (issue 17): the cases
/// an application acts on are specific.
@Suite struct TypedErrorTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// A Welcome without the tree says so by case: the application then fetches the
    /// tree (Parley's client asks its server) and joins with it.
    @Test func aWelcomeWithoutItsTreeIsRatchetTreeNotFound() throws {
        var alice = try TestClient("alice", suite).createGroup()
        let bob = try TestClient("bob", suite).keyPackage()
        let output = try alice.commit(CommitOptions(add: [bob.keyPackage], ratchetTreeInWelcome: false))
        _ = try alice.process(output.message)
        guard case .welcome(let welcome)? = output.welcome else { throw MLSError.invalidWelcome("none") }
        #expect(throws: MLSError.ratchetTreeNotFound) { try Group.join(welcome: welcome, keyPackage: bob) }
        let joined = try Group.join(welcome: welcome, keyPackage: bob, ratchetTree: alice.tree)
        #expect(joined.epochAuthenticator == alice.epochAuthenticator)
        #expect(throws: MLSError.ratchetTreeNotFound) {
            try PublicGroup(groupInfo: alice.groupInfo(includeRatchetTree: false))
        }
    }
}
