import Foundation
import Logging
import MLS
import NIOHTTP1
import ParleyProtocol
import Synchronization
import Testing

@testable import ParleyServer

/// Variants of issue 11's findings, tried as an attacker would against a live server on loopback.
@Suite(.serialized) struct AttackerReviewTests {
    /// Swift compares strings by canonical equivalence ("é" == "e\u{301}", "K" == KELVIN SIGN), SQLite
    /// by bytes: a name that differs only in normalization must not take over another group's name.
    @Test func aCanonicallyEquivalentGroupNameCannotHijackAGroup() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let mallory = try await TestUser.ready("mallory", on: server)
            await alice.connect()
            for (name, lookalike) in [("caf\u{E9}", "cafe\u{301}"), ("Kitchen", "\u{212A}itchen")] {
                try await alice.createGroup(name)
                #expect(try await alice.sendText("before", to: name).accepted != nil)
                await #expect(throws: ErrorBody.self) { try await mallory.createGroup(lookalike) }
                // The real group still answers to its name for its members.
                let after = try await alice.sendText("after", to: name)
                #expect(after.accepted != nil, "\(name): \(String(describing: after.error))")
                // Spelled decomposed by its member, the name still finds it (and only it).
                alice.groups[lookalike] = alice.groups[name]
                let spelled = try await alice.sendText("decomposed", to: lookalike)
                #expect(spelled.accepted.map { Array($0.group.utf8) } == Array(name.utf8))
                alice.groups[name] = alice.groups[lookalike]
                let ascii = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                let encoded = name.addingPercentEncoding(withAllowedCharacters: ascii)!
                let described = try await server.get("/v1/groups/\(encoded)", token: alice.token, as: API.Group.self)
                #expect(described.members == ["alice"])
            }
        }
    }

    /// Path parameters are percent-decoded: a group whose name needs encoding can be described,
    /// its tree fetched, and destroyed by its admin.
    @Test func aGroupWhoseNameNeedsPercentEncodingCanBeReachedAndDestroyed() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let name = "our team \u{E9}t\u{E9} 100%"
            try await alice.createGroup(name)
            let path =
                "/v1/groups/" + name.addingPercentEncoding(
                    withAllowedCharacters: .alphanumerics.subtracting(
                        CharacterSet(charactersIn: "\u{E9}")
                    )
                )!
            #expect(try await server.get(path, token: alice.token, as: API.Group.self).name == name)
            #expect(try await server.get(path + "/tree", token: alice.token, as: API.RatchetTree.self).epoch == 0)
            try await server.request(.DELETE, path, token: alice.token)
            await #expect(throws: ErrorBody.self) { try await server.request(.GET, path, token: alice.token) }
        }
    }

    /// A NUL (or another control character) after a real name in the path names nothing: it is
    /// refused before any storage, whose text comparison could stop at the NUL, sees it.
    @Test func aNameWithANULInThePathIsNotTakenForTheNameBeforeIt() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            try await alice.createGroup("g")
            #expect(try await server.get("/v1/groups/g", token: alice.token, as: API.Group.self).name == "g")
            func refusal(_ method: HTTPMethod, _ path: String) async -> ErrorCode? {
                do {
                    _ = try await server.request(method, path, token: alice.token)
                    return nil
                } catch {
                    return (error as? ErrorBody)?.code ?? .internalError
                }
            }
            for suffix in ["%00", "%00x", "%07"] {
                #expect(await refusal(.DELETE, "/v1/groups/g" + suffix) == .malformedRequest, "\(suffix)")
                #expect(await refusal(.GET, "/v1/users/alice" + suffix) == .malformedRequest, "\(suffix)")
            }
            #expect(try await server.get("/v1/groups/g", token: alice.token, as: API.Group.self).name == "g")
        }
    }

    /// Group names reach members' terminals and the operator's log: controls, line breaks,
    /// bidi overrides, invisible format characters and dot segments are refused at creation.
    @Test func groupNamesWithControlsBidiOrDotSegmentsAreRefused() async throws {
        try await TestServer.with { server in
            let mallory = try await TestUser.ready("mallory", on: server)
            let names = [
                "a\u{1B}]0;owned\u{7}", "line\n[00:00:00] [bob] hi", "\u{202E}txt.exe", "zero\u{200B}width",
                "c1\u{85}", ".", "..",
            ]
            for name in names {
                await #expect(throws: ErrorBody.self, "\(name.debugDescription)") {
                    try await mallory.createGroup(name)
                }
            }
            try await mallory.createGroup("Caf\u{E9} \u{1F600} ok")
        }
    }

    /// A frame or HTTP body nested a hundred thousand levels deep must get a clear error, not
    /// exhaust the stack of the decoder.
    @Test func deeplyNestedJSONIsRefusedAndTheServerLives() async throws {
        try await TestServer.with { server in
            let mallory = try await TestUser.ready("mallory", on: server)
            await mallory.connect()
            let depth = 100_000
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            mallory.socket!.sendRaw("{\"type\":\"ack\",\"group\":\"g\",\"seq\":1,\"x\":\(nested)}")
            let answer = await mallory.nextFrame()
            #expect(answer?.error?.code == .malformedRequest)
            let body = Data("{\"username\":\"alice\",\"x\":\(nested)}".utf8)
            await #expect(throws: ErrorBody.self) {
                try await server.request(.POST, "/v1/sessions/challenge", body: body)
            }
            // Still serving.
            let alice = try await TestUser.ready("alice", on: server)
            try await alice.createGroup("still-up")
        }
    }

    /// The operator's log is a terminal too: a login name full of escapes and line breaks, sent
    /// until it is rate-limited (the path that logs it), is refused before it is logged.
    @Test func aLoginNameCannotWriteEscapesOrLinesIntoTheServerLog() async throws {
        let log = CapturedLog()
        let server = try await TestServer.start(logger: Logger(label: "attack") { _ in log }) {
            $0.loginsPerMinutePerAddress = 1
        }
        let keys = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider().generateSignatureKeyPair()
        let name = "x\u{1B}]0;owned\u{7}\n2026-01-01T00:00:00+0000 critical parley: forged"
        for _ in 0..<3 {
            let login = API.Login(
                username: name,
                password: "whatever1",
                signatureKey: Data(keys.publicKey.bytes),
                challenge: Data(count: 32),
                signature: Data(count: 64)
            )
            await #expect(throws: ErrorBody.self) {
                try await server.request(.POST, "/v1/sessions", json: login, as: API.Session.self)
            }
        }
        try await server.stop()
        let written = log.lines.joined(separator: "\n")
        #expect(!written.contains("\u{1B}") && !written.contains("forged"))
    }
}

extension AttackerReviewTests {
    /// Login challenges are held in a bounded table. A flood from many addresses (an IPv6 /48
    /// is 65,536 rate-limit keys) must not fill it so that nobody else can get a challenge:
    /// the oldest is forgotten, the victim's fresh one works.
    @Test func aChallengeFloodCannotLockOthersOutOfLoggingIn() throws {
        let challenges = LoginChallenges(capacity: 4)
        for _ in 0..<10 { _ = try challenges.issue(for: "mallory") }
        let nonce = try challenges.issue(for: "alice")
        for _ in 0..<3 { _ = try challenges.issue(for: "mallory") }
        #expect(challenges.redeem(nonce, for: "alice"))
        #expect(!challenges.redeem(nonce, for: "alice"), "a challenge is single-use")
    }
}

/// Every log record, rendered as StreamLogHandler would (message and metadata values, raw).
final class CapturedLog: LogHandler, @unchecked Sendable {
    private let state = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    var lines: [String] { state.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let values = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        state.withLock { $0.append("\(event.level) \(event.message) \(values)") }
    }
}
