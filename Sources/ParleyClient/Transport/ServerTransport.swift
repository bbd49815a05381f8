import Foundation
import MLS
import ParleyProtocol

/// What the group engine asks of the server: a few HTTP calls and the device's WebSocket.
/// ``LiveServerTransport`` is the real one (``ServerAPI`` over pinned TLS, ``ServerSocket``);
/// the engine's unit tests use a scriptable in-memory server that delivers whatever frames
/// a test chooses. Accounts and sessions (register, login) are not here: they come before a
/// home has an identity and stay with ``ParleyClient``.
protocol ServerTransport: Sendable {
    /// The group's current ratchet tree (for a Welcome that leaves it out, RFC 9420 §12.4.3.1).
    func ratchetTree(of group: String) async throws -> [UInt8]
    /// One KeyPackage (an `MLSMessage`) of `suite` for each of `user`'s devices, except those whose
    /// signature key is in `skipping` (already in the group: their one-time packages are kept).
    func claimKeyPackages(of user: String, skipping: [[UInt8]], suite: CipherSuite) async throws -> [Data]
    /// This device's unclaimed KeyPackages of `suite` on the server.
    func keyPackageStock(suite: CipherSuite) async throws -> API.KeyPackageStock
    func uploadKeyPackages(_ upload: API.UploadKeyPackages) async throws
    func createGroup(_ request: API.CreateGroup) async throws
    /// Registers the successor of `group`, which this device's ReInit closed; returns the seq
    /// of its Welcome in the group's log (`parley upgrade`).
    func registerSuccessor(of group: String, _ successor: API.Successor) async throws -> UInt64
    /// Destroys the group on the server; `notice` is the seq of this admin's signed destroy
    /// message, which the server keeps for members who are offline.
    func destroyGroup(_ name: String, notice: UInt64?) async throws
    /// The signature keys of `user`'s devices, as the directory lists them.
    func signatureKeys(of user: String) async throws -> [[UInt8]]
    /// `user`'s signed device list as the server serves it (unverified); nil when the server
    /// has none for the account (an account created before the directory).
    func deviceList(of user: String) async throws -> [UInt8]?
    /// Opens the WebSocket: a replay of what this device has not acknowledged, then
    /// `replayFinished`, then live frames.
    func openConnection() async throws -> any ServerConnection
}

/// One open WebSocket: ``ServerFrame``s in, in server order, ``ClientFrame``s out.
///
/// Frames are pulled with a timeout rather than iterated as an `AsyncSequence`: the engine
/// interleaves waiting for an answer with the user's commands and must stop waiting on
/// its own schedule without cancelling the connection.
protocol ServerConnection: AnyObject, Sendable {
    /// The next frame; nil when none arrives within `timeout`. Throws once the connection
    /// is closed and every frame has been read.
    func next(timeout: Duration) async throws -> ServerFrame?
    func send(_ frame: ClientFrame) throws
    /// The connection ended: a new one is needed (it replays from the acknowledged cursors).
    var isClosed: Bool { get }
    func close()
}

extension ServerSocket: ServerConnection {}

/// The real transport: the pinned ``ServerAPI`` and a ``ServerSocket`` per connection.
/// `session` yields the API and the session token when asked, so connecting (and pinning
/// the certificate) happens only when the engine first talks to the server.
struct LiveServerTransport: ServerTransport {
    let session: @Sendable () async throws -> (ServerAPI, String)

    /// A group or user name as one URL path segment, whatever it contains.
    static func pathComponent(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? ""
    }

    func ratchetTree(of group: String) async throws -> [UInt8] {
        let (api, token) = try await session()
        let path = "/v1/groups/\(Self.pathComponent(group))/tree"
        return [UInt8](try await api.call(.GET, path, token: token, as: API.RatchetTree.self).tree)
    }

    func claimKeyPackages(of user: String, skipping: [[UInt8]], suite: CipherSuite) async throws -> [Data] {
        let (api, token) = try await session()
        let path = "/v1/users/\(Self.pathComponent(user))/keypackages/claim"
        let body = API.ClaimKeyPackages(skip: skipping.map { Data($0) }, suite: suite.rawValue)
        return try await api.call(.POST, path, token: token, json: body, as: API.ClaimedKeyPackages.self).keyPackages
            .map(\.keyPackage)
    }

    func keyPackageStock(suite: CipherSuite) async throws -> API.KeyPackageStock {
        let (api, token) = try await session()
        let path = "/v1/keypackages?suite=\(suite.rawValue)"
        return try await api.call(.GET, path, token: token, as: API.KeyPackageStock.self)
    }

    func uploadKeyPackages(_ upload: API.UploadKeyPackages) async throws {
        let (api, token) = try await session()
        _ = try await api.call(.POST, "/v1/keypackages", token: token, json: upload, as: API.KeyPackageStock.self)
    }

    func createGroup(_ request: API.CreateGroup) async throws {
        let (api, token) = try await session()
        _ = try await api.call(.POST, "/v1/groups", token: token, json: request, as: API.Group.self)
    }

    func registerSuccessor(of group: String, _ successor: API.Successor) async throws -> UInt64 {
        let (api, token) = try await session()
        let path = "/v1/groups/\(Self.pathComponent(group))/successor"
        return try await api.call(.POST, path, token: token, json: successor, as: API.SuccessorAccepted.self).seq
    }

    func destroyGroup(_ name: String, notice: UInt64?) async throws {
        let (api, token) = try await session()
        let query = notice.map { "?notice=\($0)" } ?? ""
        try await api.request(.DELETE, "/v1/groups/\(Self.pathComponent(name))\(query)", token: token)
    }

    func signatureKeys(of user: String) async throws -> [[UInt8]] {
        let (api, token) = try await session()
        let path = "/v1/users/\(Self.pathComponent(user))"
        return try await api.call(.GET, path, token: token, as: API.User.self).signatureKeys.map { [UInt8]($0) }
    }

    func deviceList(of user: String) async throws -> [UInt8]? {
        let (api, token) = try await session()
        let path = "/v1/users/\(Self.pathComponent(user))/devices"
        do {
            return [UInt8](try await api.call(.GET, path, token: token, as: API.DeviceListBody.self).deviceList)
        } catch ClientError.server(let error) where error.code == .notFound {
            return nil
        }
    }

    func openConnection() async throws -> any ServerConnection {
        let (api, token) = try await session()
        return try ServerSocket(api: api, token: token)
    }
}
