import MLS
import Testing

/// The code of the ReInit walkthrough in `Group+ReInit.swift`'s doc comment, run as a
/// test; `DocumentationSnippetTests` fails when the two differ.
@Suite struct ReInitSnippets {
    @Test func aGroupMovesToThePostQuantumSuite() throws {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        var alice = try Group.create(
            suite,
            groupID: Array("book club".utf8),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: suite.generateSignatureKeyPair()
        )
        let bobBundle = try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array("bob".utf8)),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let added = try alice.addMembers([bobBundle.keyPackage])
        _ = try alice.process(added.message)
        guard case .welcome(let firstWelcome)? = added.welcome else { throw MLSError.invalidWelcome("none") }
        var bob = try Group.join(welcome: firstWelcome, keyPackage: bobBundle)

        // snippet: reinit
        let pq = try CipherSuite.mls256XWingChaCha20Poly1305SHA256Ed25519.provider()
        let closing = try alice.commit(CommitOptions(reInit: ReInit(groupID: alice.groupID, cipherSuite: pq.suite)))
        _ = try alice.process(closing.message)
        _ = try bob.process(closing.message)  // both groups are now closed: bob.reInit != nil
        let bobsNewBundle = try KeyPackageBundle(
            pq,
            credential: .basic(identity: Array("bob".utf8)),
            signatureKeys: pq.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let successor = try alice.createSuccessor(
            signatureKeys: pq.generateSignatureKeyPair(),
            keyPackages: [bobsNewBundle.keyPackage]
        )
        guard let welcome = successor.welcome else { throw MLSError.invalidWelcome("no Welcome") }
        let bobInTheNewGroup = try bob.joinSuccessor(welcome: welcome, keyPackage: bobsNewBundle)
        // end-snippet
        #expect(!alice.isActive && bobInTheNewGroup.suite.suite == pq.suite)
        #expect(bobInTheNewGroup.epochAuthenticator == successor.group.epochAuthenticator)
    }
}
