import MLS
import Testing

/// The code of `Sources/MLS/MLS.docc/GettingStarted.md`, run as one test. Each region
/// between `// snippet: NAME` and `// end-snippet` appears in the article byte for byte
/// (less its indentation); `DocumentationSnippetTests` fails when the two differ. Only
/// the public API is imported, as a reader of the article would.
@Suite struct GettingStartedSnippets {
    @Test func aGroupFromCreationToRemoval() throws {
        // snippet: create-group
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let aliceKeys = suite.generateSignatureKeyPair()
        var alice = try Group.create(
            suite,
            groupID: Array("book club".utf8),
            credential: .basic(identity: Array("alice".utf8)),
            signatureKeys: aliceKeys
        )
        // end-snippet
        #expect(alice.epoch == 0 && alice.members.count == 1)

        // snippet: key-package
        let bobKeys = suite.generateSignatureKeyPair()
        let bobBundle = try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array("bob".utf8)),
            signatureKeys: bobKeys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let published = try MLSMessage.keyPackage(bobBundle.keyPackage).tlsEncoded()
        // end-snippet

        // snippet: add-member
        guard case .keyPackage(let bobsKeyPackage) = try MLSMessage(tlsEncoded: published) else {
            throw MLSError.invalidKeyPackage("not a KeyPackage")
        }
        try bobsKeyPackage.validate()
        let added = try alice.addMembers([bobsKeyPackage])
        // Send added.message to the group and added.welcome to Bob, through the delivery
        // service. Alice's group moves to the next epoch only when the Commit comes back:
        #expect(alice.epoch == 0 && alice.hasPendingCommit)
        _ = try alice.process(added.message)
        #expect(alice.epoch == 1)
        // end-snippet

        // snippet: join
        guard case .welcome(let welcome)? = added.welcome else {
            throw MLSError.invalidWelcome("the Commit added no one")
        }
        var bob = try Group.join(welcome: welcome, keyPackage: bobBundle)
        #expect(bob.epoch == alice.epoch && bob.epochAuthenticator == alice.epochAuthenticator)
        // end-snippet

        // snippet: encrypt
        let ciphertext = try alice.encrypt(Array("hello, Bob".utf8))
        guard case .application(let message) = try bob.process(ciphertext) else {
            throw MLSError.invalidMessage("expected application data")
        }
        #expect(message.data == Array("hello, Bob".utf8))
        #expect(message.credential == .basic(identity: Array("alice".utf8)))
        #expect(throws: MLSError.generationAlreadyUsed(0)) { try bob.process(ciphertext) }  // a replay
        // end-snippet

        // snippet: commit
        let update = try bob.selfUpdate()
        guard case .commit(let summary) = try alice.process(update.message) else {
            throw MLSError.invalidCommit("expected a Commit")
        }
        _ = try bob.process(update.message)  // Bob's own Commit, echoed back
        #expect(summary.committerLeaf == bob.ownLeaf && alice.epoch == 2 && bob.epoch == 2)
        // end-snippet

        // snippet: remove
        let removal = try alice.removeMembers([bob.ownLeaf])
        _ = try alice.process(removal.message)
        guard case .commit(let removed) = try bob.process(removal.message) else {
            throw MLSError.invalidCommit("expected a Commit")
        }
        #expect(removed.removedSelf && !bob.isActive)
        #expect(alice.members.count == 1)
        // end-snippet
    }

    /// The example in `Group`'s own doc comment.
    @Test func groupDocComment() throws {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let (groupID, aliceCredential, aliceKeys) = (
            Array("g".utf8), Credential.basic(identity: [1]), suite.generateSignatureKeyPair()
        )
        let bobsBundle = try KeyPackageBundle(
            suite,
            credential: .basic(identity: [2]),
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        // snippet: group-doc-comment
        var alice = try Group.create(suite, groupID: groupID, credential: aliceCredential, signatureKeys: aliceKeys)
        let added = try alice.addMembers([bobsBundle.keyPackage])  // send added.message and added.welcome
        _ = try alice.process(added.message)  // the delivery service's echo: now epoch 1
        guard case .welcome(let welcome)? = added.welcome else { return }
        var bob = try Group.join(welcome: welcome, keyPackage: bobsBundle)
        let received = try bob.process(alice.encrypt(Array("hi".utf8)))  // .application: "hi" from alice
        // end-snippet
        guard case .application(let message) = received else {
            Issue.record("not application data")
            return
        }
        #expect(message.data == Array("hi".utf8) && message.credential == aliceCredential)
    }
}
