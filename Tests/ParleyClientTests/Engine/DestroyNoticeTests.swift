import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyClient

/// The admin's signed destroy reaches members who were offline: the server keeps it and
/// hands it out with `groupDestroyed`; a member deletes the group only if it verifies
/// against its own state (docs/SECURITY.md).
@Suite struct DestroyNoticeTests {
    /// bob is offline while alice (the admin) destroys g; the log is gone when he returns,
    /// but the notice the server kept is hers: g is deleted, and the history names her.
    @Test func aMemberOfflineDuringTheDestroyDeletesTheGroupWhenHeReturns() async throws {
        let scene = try await EngineScene()
        await scene.bob.close()
        let notice = try scene.alice.encrypt(try ApplicationContent.destroyGroup.encoded())
        scene.server.deliver(.groupDestroyed(.init(group: "g", notice: Data(try notice.tlsEncoded()))))
        try await scene.restart()
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(await scene.bob.groupSummaries().isEmpty)
        #expect(try await scene.bob.history("g").last?.text == "alice (an admin) destroyed this group.")
    }

    /// Notices that are not an admin's signed destroy of this group: alice's ordinary text,
    /// a destroy signed by carol (a member, not an admin), junk bytes. Each deletes nothing,
    /// is a warning, and the group keeps working.
    @Test func aForgedNoticeDeletesNothingAndWarns() async throws {
        let scene = try await EngineScene()
        let carol = try KeyPackageBundle(
            scene.suite,
            credential: .basic(identity: Array("carol".utf8)),
            signatureKeys: scene.suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let adding = try scene.alice.addMembers([carol.keyPackage])
        _ = try scene.alice.process(adding.message)
        scene.server.deliver(try scene.frame(adding.message))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        guard case .welcome(let welcome)? = adding.welcome else { throw ClientError.invalid("no Welcome") }
        var carolsGroup = try Group.join(welcome: welcome, keyPackage: carol, policy: ParleyGroupPolicy.groupPolicy())

        let notices: [Data] = [
            Data(try scene.alice.encrypt(try ApplicationContent.text("not a destroy").encoded()).tlsEncoded()),
            Data(try carolsGroup.encrypt(try ApplicationContent.destroyGroup.encoded()).tlsEncoded()),
            Data([0x00, 0x01, 0x02]),
        ]
        for notice in notices {
            scene.server.deliver(.groupDestroyed(.init(group: "g", notice: notice)))
            _ = try await scene.bob.pump(timeout: .milliseconds(1))
            #expect(await scene.summary()?.active == true)
        }
        #expect(
            try await scene.notices().contains(
                "Warning: the server says this group was destroyed, but the notice it gave is not an admin's signed "
                    + "destroy for this group. Nothing was deleted."
            )
        )
        scene.server.deliver(try scene.fromAlice("still here"))
        _ = try await scene.bob.pump(timeout: .milliseconds(1))
        #expect(try await scene.texts() == ["still here"])
    }
}
