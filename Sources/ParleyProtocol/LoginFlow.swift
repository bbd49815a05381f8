import Foundation
import MLS

/// What carries the login flow's two requests: the client's pinned ``API`` connection, or a
/// test's HTTP client. The flow itself is ``API/openSession(via:username:password:keys:serverCertificate:)``.
public protocol LoginTransport: Sendable {
    /// POSTs a JSON `body` to `path` without a token; returns the answer's body, or throws
    /// the server's `ErrorBody` for an answer that is not 2xx.
    func postJSON(_ path: String, _ body: Data) async throws -> Data
}

extension API {
    /// The login flow (docs/PROTOCOL.md, sessions): a fresh challenge for `username`, signed
    /// with the device's signature keys and bound to the server certificate the client pinned
    /// (``Login``), exchanged for a session.
    public static func openSession(
        via transport: some LoginTransport,
        username: String,
        password: String,
        keys: SignatureKeyPair,
        serverCertificate: [UInt8]
    ) async throws -> Session {
        let asked = try WireJSON.encode(LoginChallengeRequest(username: username))
        let challenge = try WireJSON.decode(
            LoginChallenge.self,
            from: try await transport.postJSON("/v1/sessions/challenge", asked)
        )
        let login = try Login(
            username: username,
            password: password,
            challenge: challenge.challenge,
            signatureKeys: keys,
            serverCertificate: serverCertificate
        )
        return try WireJSON.decode(
            Session.self,
            from: try await transport.postJSON("/v1/sessions", WireJSON.encode(login))
        )
    }
}
