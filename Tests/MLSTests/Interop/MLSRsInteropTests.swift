import Testing

@testable import MLS

/// Parley's MLS against an independent implementation, AWS mls-rs, in one
/// group: each side creates, joins, commits and decrypts what the other made.
@Suite(.serialized) struct MLSRsInteropTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    @Test func parleyAndMLSRsShareAGroup() throws {
        let rs = try MLSRsBridge()
        try rs.call("new_client", client: "alice")
        try rs.call("new_client", client: "carol")
        let groupID = text("interop-group")
        try rs.call("create_group", client: "alice", ["group_id": groupID.hex])

        // mls-rs adds a Parley member from its KeyPackage; Parley joins from the Welcome.
        let bobClient = TestClient("bob", suite)
        let bobBundle = try bobClient.keyPackage()
        let added = try rs.call(
            "add",
            client: "alice",
            ["key_packages": [try MLSMessage.keyPackage(bobBundle.keyPackage).tlsEncoded().hex]]
        )
        guard case .welcome(let welcome) = try MLSMessage(tlsEncoded: [UInt8](hex: added["welcome"])) else {
            Issue.record("mls-rs did not produce a Welcome")
            return
        }
        var bob = try Group.join(welcome: welcome, keyPackage: bobBundle)
        #expect(bob.epoch == 1 && bob.members.count == 2)
        let exported = try rs.call("export", client: "alice", ["label": "interop", "context": "01", "length": 32])
        #expect(try bob.export(label: "interop", context: [1], length: 32) == [UInt8](hex: exported["secret"]))

        // Application messages both ways.
        let fromAlice = try rs.call("encrypt", client: "alice", ["data": text("hello from mls-rs").hex])
        #expect(
            try bob.process(MLSMessage(tlsEncoded: [UInt8](hex: fromAlice["message"]))).applicationText
                == "hello from mls-rs"
        )
        let toAlice = try rs.call(
            "process",
            client: "alice",
            [
                "message": try bob.encrypt(text("hello from parley")).tlsEncoded().hex, "remember_sender_as": "bob",
            ]
        )
        #expect(try [UInt8](hex: toAlice["data"]) == text("hello from parley"))

        // Parley commits an Add of an mls-rs client; alice follows, carol joins from Parley's Welcome.
        let carolKeyPackage = try rs.call("key_package", client: "carol")
        guard
            case .keyPackage(let carolPackage) = try MLSMessage(
                tlsEncoded: [UInt8](hex: carolKeyPackage["key_package"])
            )
        else {
            Issue.record("not a KeyPackage")
            return
        }
        let addCarol = try bob.addMembers([carolPackage])
        _ = try bob.process(addCarol.message)
        #expect(
            try rs.call("process", client: "alice", ["message": try addCarol.message.tlsEncoded().hex])["kind"]
                as? String == "commit"
        )
        try rs.call("join", client: "carol", ["welcome": try addCarol.welcome!.tlsEncoded().hex])
        let fromCarol = try rs.call("encrypt", client: "carol", ["data": text("carol here").hex])
        #expect(
            try bob.process(MLSMessage(tlsEncoded: [UInt8](hex: fromCarol["message"]))).applicationText == "carol here"
        )
        let bobToAll = try bob.encrypt(text("three of us")).tlsEncoded().hex
        for client in ["alice", "carol"] {
            #expect(
                try [UInt8](hex: rs.call("process", client: client, ["message": bobToAll])["data"])
                    == text("three of us")
            )
        }

        // An mls-rs self-update commit is followed by Parley.
        let update = try rs.call("commit", client: "alice")
        #expect(try bob.process(MLSMessage(tlsEncoded: [UInt8](hex: update["commit"]))).commitSummary?.epoch == 3)
        try rs.call("process", client: "carol", ["message": update["commit"] as! String])

        // Parley removes carol: alice follows, carol learns it was removed.
        let removeCarol = try bob.removeMembers([LeafIndex(2)])
        _ = try bob.process(removeCarol.message)
        let removalHex = try removeCarol.message.tlsEncoded().hex
        #expect(try rs.call("process", client: "alice", ["message": removalHex])["removed_self"] as? Bool == false)
        #expect(try rs.call("process", client: "carol", ["message": removalHex])["removed_self"] as? Bool == true)
        let afterRemoval = try rs.call("encrypt", client: "alice", ["data": text("just us").hex])
        #expect(
            try bob.process(MLSMessage(tlsEncoded: [UInt8](hex: afterRemoval["message"]))).applicationText == "just us"
        )

        // mls-rs removes the Parley member: Parley follows its own removal.
        let removeBob = try rs.call("remove", client: "alice", ["member": "bob"])
        let seen = try bob.process(MLSMessage(tlsEncoded: [UInt8](hex: removeBob["commit"])))
        #expect(seen.commitSummary?.removedSelf == true)
        #expect(!bob.isActive)
    }
}
