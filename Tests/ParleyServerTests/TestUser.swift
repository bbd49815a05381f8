import Foundation
import MLS
import ParleyProtocol

/// A user with one device: account, session, KeyPackages, WebSocket and MLS groups.
final class TestUser {
    let name: String
    let password: String
    let server: TestServer
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
    let signatureKeys: SignatureKeyPair
    var session: API.Session!
    var bundles: [[UInt8]: KeyPackageBundle] = [:]
    var groups: [String: Group] = [:]
    var socket: TestSocket?
    /// Frames that arrived while waiting for something else, in order.
    private var inbox: [ServerFrame] = []
    private var nextID = 0

    /// The next frame: from the inbox first, then the socket.
    func nextFrame(timeout: Duration = .seconds(10)) async -> ServerFrame? {
        if !inbox.isEmpty { return inbox.removeFirst() }
        return await socket?.next(timeout: timeout)
    }

    var token: String { session.token }
    var credential: Credential { .basic(identity: Array(name.utf8)) }
    var policy: GroupPolicy { ParleyGroupPolicy.groupPolicy() }

    init(_ name: String, password: String = "correct horse", server: TestServer) {
        self.name = name
        self.password = password
        self.server = server
        signatureKeys = suite.generateSignatureKeyPair()
    }

    /// Registers, logs in, uploads KeyPackages and a last-resort one.
    static func ready(_ name: String, on server: TestServer, keyPackages: Int = 3) async throws -> TestUser {
        let user = TestUser(name, server: server)
        try await server.request(
            .POST,
            "/v1/accounts",
            body: WireJSON.encode(API.Register(username: name, password: user.password))
        )
        try await user.login()
        _ = try await user.upload(count: keyPackages)
        return user
    }

    /// Logs in with proof of possession: asks for a challenge, signs it with this device's key.
    func login() async throws {
        session = try await server.login(name, password: password, keys: signatureKeys)
    }

    func makeBundle(lastResort: Bool = false) throws -> KeyPackageBundle {
        let bundle = try KeyPackageBundle(
            suite,
            credential: credential,
            signatureKeys: signatureKeys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max),
            lastResort: lastResort
        )
        bundles[try bundle.keyPackage.reference(suite)] = bundle
        return bundle
    }

    func upload(count: Int) async throws -> API.KeyPackageStock {
        let packages = try (0..<count).map { _ in Data(try MLSMessage.keyPackage(makeBundle().keyPackage).tlsEncoded())
        }
        let lastResort = Data(try MLSMessage.keyPackage(makeBundle(lastResort: true).keyPackage).tlsEncoded())
        return try await server.request(
            .POST,
            "/v1/keypackages",
            token: token,
            json: API.UploadKeyPackages(keyPackages: packages, lastResort: lastResort),
            as: API.KeyPackageStock.self
        )
    }

    @discardableResult
    func connect() async -> [ServerFrame] {
        socket?.close()
        inbox.removeAll()
        socket = TestSocket(server: server, token: token)
        return await socket!.replay()
    }

    /// Creates an MLS group with this user as admin and registers it with the server.
    func createGroup(_ groupName: String) async throws {
        let group = try Group.create(
            suite,
            groupID: Array(UUID().uuidString.utf8),
            credential: credential,
            signatureKeys: signatureKeys,
            extensions: [try ParleyGroupPolicy.adminsExtension([name])],
            policy: policy
        )
        _ = try await server.request(
            .POST,
            "/v1/groups",
            token: token,
            json: API.CreateGroup(
                name: groupName,
                groupInfo: Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())
            ),
            as: API.Group.self
        )
        groups[groupName] = group
    }

    func claim(_ username: String) async throws -> [KeyPackage] {
        let claimed = try await server.request(
            .POST,
            "/v1/users/\(username)/keypackages/claim",
            token: token,
            body: nil
        )
        return try WireJSON.decode(API.ClaimedKeyPackages.self, from: claimed).keyPackages.map { entry in
            guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: [UInt8](entry.keyPackage)) else {
                throw ErrorBody(.invalidKeyPackage)
            }
            return keyPackage
        }
    }

    /// Sends a frame and returns the server's answer to it: the echoed message or an error.
    func submit(_ message: MLSMessage, welcome: MLSMessage? = nil, to groupName: String) async throws -> ServerFrame {
        nextID += 1
        // Unique across TestUsers standing for the same device (after a restart): the server
        // answers a reused id with the message first stored under it.
        let id = "\(name)-\(nextID)-\(UUID().uuidString.prefix(8))"
        try socket!.send(
            .send(
                .init(
                    id: id,
                    group: groupName,
                    message: Data(try message.tlsEncoded()),
                    welcome: try welcome.map { Data(try $0.tlsEncoded()) }
                )
            )
        )
        var skipped: [ServerFrame] = []
        defer { inbox += skipped }
        while let frame = await socket!.next() {
            switch frame {
            case .message(let echo) where echo.id == id: return frame
            case .error(let error) where error.id == id: return frame
            default: skipped.append(frame)
            }
        }
        throw ErrorBody(.internalError, "no answer to \(id)")
    }

    /// A commit adding `usernames`, accepted by the server and applied locally.
    func add(_ usernames: [String], to groupName: String) async throws -> ServerFrame {
        var keyPackages: [KeyPackage] = []
        for username in usernames { keyPackages += try await claim(username) }
        let output = try groups[groupName]!.addMembers(keyPackages)
        let answer = try await submit(output.message, welcome: output.welcome, to: groupName)
        if case .message(let echo) = answer { try apply(echo) }
        return answer
    }

    /// Processes a delivered handshake or application message; returns decrypted text if any.
    @discardableResult
    func apply(_ frame: ServerFrame.Message) throws -> String? {
        let processed = try groups[frame.group]!.process(MLSMessage(tlsEncoded: [UInt8](frame.message)))
        if case .application(let message) = processed { return String(decoding: message.data, as: UTF8.self) }
        return nil
    }

    func join(_ frame: ServerFrame.WelcomeFrame) throws {
        guard case .welcome(let welcome) = try MLSMessage(tlsEncoded: [UInt8](frame.welcome)) else {
            throw ErrorBody(.invalidMessage)
        }
        let reference = welcome.secrets.compactMap { entry in bundles[entry.newMember] }.first
        guard let bundle = reference else { throw ErrorBody(.invalidMessage, "no bundle for this Welcome") }
        groups[frame.group] = try Group.join(welcome: welcome, keyPackage: bundle, policy: policy)
    }

    func sendText(_ text: String, to groupName: String) async throws -> ServerFrame {
        try await submit(try groups[groupName]!.encrypt(Array(text.utf8)), to: groupName)
    }

    /// Waits for the next message frame in `group`, skipping others.
    func nextMessage(in groupName: String, timeout: Duration = .seconds(10)) async -> ServerFrame.Message? {
        while let frame = await nextFrame(timeout: timeout) {
            if case .message(let message) = frame, message.group == groupName { return message }
        }
        return nil
    }

    func nextWelcome() async -> ServerFrame.WelcomeFrame? {
        while let frame = await nextFrame() {
            if case .welcome(let welcome) = frame { return welcome }
        }
        return nil
    }
}

extension ServerFrame {
    var error: ErrorBody? {
        if case .error(let frame) = self { return frame.error }
        return nil
    }

    var accepted: Message? {
        if case .message(let message) = self { return message }
        return nil
    }
}
