import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyServer

/// Behind a TCP load balancer a login's two requests may reach different nodes: the challenge
/// one node issued is answered at another, once.
@Suite(.serialized, .storageThreads) struct MultiNodeLoginTests {
    /// Sends the challenge request to one node and the login to another.
    struct Split: LoginTransport {
        let challenge: TestServer
        let login: TestServer

        func postJSON(_ path: String, _ body: Data) async throws -> Data {
            try await (path == "/v1/sessions/challenge" ? challenge : login).postJSON(path, body)
        }
    }

    @Test func aChallengeIssuedByOneNodeIsAnsweredAtAnotherOnce() async throws {
        try await TestServer.withNodes(2) { nodes, _ in
            try await loginAcross(nodes)
        }
    }

    private func loginAcross(_ nodes: [TestServer]) async throws {
        let alice = try await TestUser.ready("alice", on: nodes[0])
        let session = try await API.openSession(
            via: Split(challenge: nodes[0], login: nodes[1]),
            username: "alice",
            password: alice.password,
            keys: alice.signatureKeys,
            serverCertificate: nodes[1].server.certificateDER
        )
        #expect(!session.token.isEmpty, "node 2 accepts the answer to node 1's challenge")

        // The same answer again, at node 2 and at node 1: the challenge was used up everywhere
        // (node 1 would refuse it for its certificate too; node 2's refusal is the single use).
        let asked = try WireJSON.encode(API.LoginChallengeRequest(username: "alice"))
        let challenge = try WireJSON.decode(
            API.LoginChallenge.self,
            from: try await nodes[0].postJSON("/v1/sessions/challenge", asked)
        )
        let login = try API.Login(
            username: "alice",
            password: alice.password,
            challenge: challenge.challenge,
            signatureKeys: alice.signatureKeys,
            serverCertificate: nodes[1].server.certificateDER
        )
        _ = try await nodes[1].postJSON("/v1/sessions", WireJSON.encode(login))
        for node in [nodes[1], nodes[0]] {
            #expect(await refusal(node, login) == .invalidLoginProof)
        }

        // A challenge for another user does not log alice in, on any node.
        let bobs = try WireJSON.decode(
            API.LoginChallenge.self,
            from: try await nodes[0].postJSON(
                "/v1/sessions/challenge",
                WireJSON.encode(API.LoginChallengeRequest(username: "bob"))
            )
        )
        let misused = try API.Login(
            username: "alice",
            password: alice.password,
            challenge: bobs.challenge,
            signatureKeys: alice.signatureKeys,
            serverCertificate: nodes[1].server.certificateDER
        )
        #expect(await refusal(nodes[1], misused) == .invalidLoginProof)
    }

    /// The error code a login is refused with; nil when it is accepted.
    private func refusal(_ node: TestServer, _ login: API.Login) async -> ErrorCode? {
        do {
            _ = try await node.postJSON("/v1/sessions", WireJSON.encode(login))
            return nil
        } catch {
            return (error as? ErrorBody)?.code
        }
    }
}
