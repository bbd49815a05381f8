import Foundation
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyClient

/// Real clients behind ``HostileServerProxy``, a TLS proxy in front of a real server that
/// tampers with what each member is shown. Each test performs the attack through the proxy
/// and asserts what the victim sees, that nothing it already had is lost, and that it keeps
/// working.
@Suite(.serialized) struct HostileServerProxyTests {
    @Test func anHonestProxyIsInvisibleAndEveryFramePassesThroughIt() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        _ = try await alice.send("hello through the proxy", to: "g")
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["hello through the proxy"])
        // The proxy, not the real server, is whom bob's home pinned and talked to.
        #expect(homes.proxy.delivered(to: "bob").contains { if case .message = $0 { true } else { false } })
        #expect(homes.proxy.sent(by: "alice").contains { if case .send = $0 { true } else { false } })
        await homes.stop([alice, bob])
    }

    /// Issue 13: a `seq` of 2^63 or more crashed the client on every run. The proxy moves
    /// every message bob is shown past 2^63: bob refuses them with a sentence, keeps his
    /// cursor, and gets them all once the server numbers them honestly again.
    @Test func seqsAtOrAbove2To63NeitherCrashNorStopTheClient() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame else { return .deliver([frame]) }
            message.seq |= 1 << 63
            return .deliver([.message(message)])
        }
        _ = try await alice.send("one", to: "g")
        _ = try await alice.send("two", to: "g")
        try await bob.sync()
        #expect(try await homes.texts(bob) == [])
        #expect(try await homes.lines(bob).contains { $0.contains("which no group's log reaches; it was refused") })
        #expect(try await homes.summary(bob).lastSeq < 1 << 63)
        homes.proxy.setRule(nil)
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["one", "two"])
        _ = try await bob.send("three", to: "g")
        try await alice.sync()
        #expect(try await homes.texts(alice) == ["one", "two", "three"])
        await bob.close()
        let reopened = try ParleyClient(home: homes.root + "/bob")
        try await reopened.unlock(password: "password of bob")
        #expect(try await homes.texts(reopened) == ["one", "two", "three"])
        await homes.stop([alice, reopened])
    }

    /// Issue 13: the server rewrote `sender` so the history said "mallory added frank". The
    /// history names the committer from its MLS credential, whatever the frame says.
    @Test func aRewrittenSenderDoesNotChangeWhoTheHistoryNames() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        let carol = try await homes.registered("carol")
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame else { return .deliver([frame]) }
            message.sender = "mallory"
            return .deliver([.message(message)])
        }
        try await alice.add(["carol"], to: "g")
        _ = try await alice.send("welcome carol", to: "g")
        try await bob.sync()
        let lines = try await bob.history("g")
        #expect(lines.contains { $0.text == "alice added carol." })
        #expect(!lines.contains { $0.text.contains("mallory") || $0.sender == "mallory" })
        #expect(lines.contains { $0.kind == .text && $0.text == "welcome carol" && $0.sender == "alice" })
        #expect(try await bob.members("g") == ["alice", "bob", "carol"])
        await homes.stop([alice, bob, carol])
    }

    /// The server drops one message for bob only. bob is told, keeps what he had, and
    /// receives what follows.
    @Test func aDroppedMessageIsReportedAndLaterOnesStillArrive() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        _ = try await alice.send("before", to: "g")
        try await bob.sync()
        let victim = FirstValue()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(let message) = frame else { return .deliver([frame]) }
            return victim.keep(message.seq) == message.seq ? .deliver([]) : .deliver([frame])
        }
        _ = try await alice.send("withheld from bob", to: "g")
        _ = try await alice.send("after", to: "g")
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["before", "after"])
        #expect(try await bob.history("g").contains { $0.text.contains("were not delivered") })
        homes.proxy.setRule(nil)
        _ = try await bob.send("still here", to: "g")
        try await alice.sync()
        #expect(try await homes.texts(alice).last == "still here")
        await homes.stop([alice, bob])
    }

    /// Every frame twice, then an old frame replayed live: each message shows once.
    @Test func duplicatedAndReplayedFramesShowOnce() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message = frame else { return .deliver([frame]) }
            return .deliver([frame, frame])
        }
        _ = try await alice.send("once", to: "g")
        _ = try await alice.send("twice?", to: "g")
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["once", "twice?"])
        let old = try #require(
            homes.proxy.delivered(to: "bob").first { if case .message = $0 { true } else { false } }
        )
        homes.proxy.setRule(nil)
        _ = try await alice.send("third", to: "g")
        try await bob.sync()
        try homes.proxy.inject(old, to: "bob")
        _ = try await bob.pump(timeout: .milliseconds(300))
        #expect(try await homes.texts(bob) == ["once", "twice?", "third"])
        await homes.stop([alice, bob])
    }

    /// Frames held back for a while arrive whole and in order.
    @Test func delayedFramesArriveWholeAndInOrder() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message = frame else { return .deliver([frame]) }
            return .delay(.milliseconds(200), [frame])
        }
        for text in ["a", "b", "c"] { _ = try await alice.send(text, to: "g") }
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["a", "b", "c"])
        await homes.stop([alice, bob])
    }

    /// Times at the extremes (0 and 2^64 - 1) neither trap nor stop the client.
    @Test func extremeTimesNeitherTrapNorStopTheClient() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        let seen = FrameCounter()
        homes.proxy.setRule { recipient, frame in
            guard recipient == "bob", case .message(var message) = frame else { return .deliver([frame]) }
            message.time = seen.next() % 2 == 0 ? 0 : .max
            return .deliver([.message(message)])
        }
        _ = try await alice.send("from the far future", to: "g")
        _ = try await alice.send("from 1970", to: "g")
        try await bob.sync()
        #expect(try await homes.texts(bob) == ["from the far future", "from 1970"])
        _ = try await bob.send("fine", to: "g")
        await homes.stop([alice, bob])
    }

    /// The proxy rewrites HTTP too: a KeyPackage answer replaced with junk makes the add fail
    /// with an error, and the next, untouched answer works.
    @Test func aRewrittenHTTPAnswerIsRefusedAndTheClientRecovers() async throws {
        let homes = try await HostileHomes()
        let (alice, bob) = try await homes.aliceAndBob()
        let carol = try await homes.registered("carol")
        homes.proxy.setHTTPRewrite { method, path, _, body in
            method == "POST" && path.hasSuffix("/keypackages/claim") ? Data("{\"junk\":1}".utf8) : body
        }
        await #expect(throws: (any Error).self) { try await alice.add(["carol"], to: "g") }
        homes.proxy.setHTTPRewrite(nil)
        try await alice.add(["carol"], to: "g")
        #expect(try await alice.members("g") == ["alice", "bob", "carol"])
        await homes.stop([alice, bob, carol])
    }
}
