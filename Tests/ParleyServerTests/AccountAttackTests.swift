import AsyncHTTPClient
import Foundation
import MLS
import NIOCore
import NIOHTTP1
import ParleyProtocol
import Testing

@testable import ParleyServer

/// Attacks on accounts, sessions and the KeyPackage directory, performed through the real
/// server over loopback TLS (issue 11, findings 11, 14, 15, 16, 18, 19). Clients at distinct
/// addresses bind to distinct loopback addresses (on Linux all of 127.0.0.0/8 is this machine).
@Suite struct AccountAttackTests {
    // MARK: Finding 16: login proves possession; removed names and keys are tombstoned

    @Test func aRemovedUsersNameAndKeysCannotBeTakenOver() async throws {
        try await TestServer.with { server in
            let oscar = try await TestUser.ready("oscar", on: server)
            let alice = try await TestUser.ready("alice", on: server)
            await oscar.connect()
            #expect(try server.server.removeUser(name: "oscar"))

            // Oscar's open socket is closed and his session is gone.
            #expect(await framesUntilClosed(oscar.socket!).contains { $0.error?.code == .unauthorized })
            await #expect(throws: ErrorBody(.unauthorized)) {
                try await server.request(.GET, "/v1/keypackages", token: oscar.token)
            }

            // Nobody can register the name again, not even the operator.
            await #expect(throws: ErrorBody(.usernameRetired)) {
                try await server.register("oscar", password: "another one")
            }
            #expect(throws: ErrorBody(.usernameRetired)) {
                try server.server.addUser(name: "oscar", password: "another one")
            }
            await #expect(throws: ErrorBody(.userNotFound)) { try await alice.claim("oscar") }

            // Mallory presents oscar's public key with her own signature: no proof, no device.
            let mallory = try await TestUser.ready("mallory", on: server)
            let oscarsKey = SignatureKeyPair(
                privateKey: mallory.signatureKeys.privateKey,
                publicKey: oscar.signatureKeys.publicKey
            )
            let forged = try await server.attemptLogin("mallory", password: mallory.password, keys: oscarsKey)
            #expect(forged == .invalidLoginProof)
            // Even holding oscar's old private key (a stolen old device), the key stays retired.
            let stolen = try await server.attemptLogin("mallory", password: mallory.password, keys: oscar.signatureKeys)
            #expect(stolen == .signatureKeyInUse)
            let user = try await server.get("/v1/users/mallory", token: alice.token, as: API.User.self)
            #expect(user.signatureKeys == [Data(mallory.signatureKeys.publicKey.bytes)])
        }
    }

    @Test func loginWithAKeyTheClientDoesNotHoldOrAStaleChallengeFails() async throws {
        try await TestServer.with { server in
            let bob = try await TestUser.ready("bob", on: server)
            let alice = try await TestUser.ready("alice", on: server)
            let suite = API.Login.suite
            let attacker = suite.generateSignatureKeyPair()

            // Bob's password is known, but the login claims alice's device key: refused.
            let claimed = SignatureKeyPair(privateKey: attacker.privateKey, publicKey: alice.signatureKeys.publicKey)
            #expect(try await server.attemptLogin("bob", password: bob.password, keys: claimed) == .invalidLoginProof)
            // A new key bob's client does not hold (signature by another key): refused.
            let unheld = SignatureKeyPair(
                privateKey: attacker.privateKey,
                publicKey: suite.generateSignatureKeyPair().publicKey
            )
            #expect(try await server.attemptLogin("bob", password: bob.password, keys: unheld) == .invalidLoginProof)

            // A challenge is single use, bound to its username and to this server's certificate.
            let certificate = server.server.certificateDER
            func bobsLogin(_ challenge: Data, certificate: [UInt8] = certificate) throws -> API.Login {
                try API.Login(
                    username: "bob",
                    password: bob.password,
                    challenge: challenge,
                    signatureKeys: bob.signatureKeys,
                    serverCertificate: certificate
                )
            }
            let login = try bobsLogin(try await server.challenge("bob"))
            #expect(try await server.post(login) == nil)
            #expect(try await server.post(login) == .invalidLoginProof, "replayed")
            #expect(
                try await server.post(try bobsLogin(try await server.challenge("alice"))) == .invalidLoginProof,
                "another user's challenge"
            )
            let relayed = try bobsLogin(try await server.challenge("bob"), certificate: Array("another server".utf8))
            #expect(try await server.post(relayed) == .invalidLoginProof, "signed for another server")
            let invented = try bobsLogin(Data(repeating: 7, count: 32))
            #expect(try await server.post(invented) == .invalidLoginProof, "a challenge the server never issued")
            // A login in the old shape (no proof) is not understood.
            let old = #"{"username":"bob","password":"correct horse","signatureKey":"AAAA"}"#
            await #expect(throws: ErrorBody(.malformedRequest)) {
                try await server.request(.POST, "/v1/sessions", body: Data(old.utf8))
            }
            // The key already registered as bob's device cannot be claimed by another account.
            let carol = try await TestUser.ready("carol", on: server)
            #expect(
                try await server.attemptLogin("carol", password: carol.password, keys: bob.signatureKeys)
                    == .signatureKeyInUse
            )
        }
    }

    // MARK: Finding 11: registration and login limits, bounded password hashing

    @Test func aRegistrationFloodIsRefusedQuicklyAndHealthStaysUp() async throws {
        try await TestServer.with { server in
            // 40 connections at once (the default client holds 8 per host).
            let pool = HTTPClient.Configuration.ConnectionPool(
                idleTimeout: .seconds(30),
                concurrentHTTP1ConnectionsPerHostSoftLimit: 64
            )
            let flood = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(tlsConfiguration: server.tls, connectionPool: pool)
            )
            let outcomes = await withTaskGroup(of: ErrorCode?.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        do {
                            try await server.register(
                                "flood\(index)",
                                password: "flood password",
                                from: "127.0.0.5",
                                client: flood
                            )
                            return nil
                        } catch let error as ErrorBody {
                            return error.code
                        } catch {
                            return .internalError
                        }
                    }
                }
                // While the flood is in flight the server still answers health checks.
                let start = ContinuousClock.now
                let health = try? await server.request(.GET, "/healthz", from: "127.0.0.6")
                #expect(health == Data("ok\n".utf8))
                #expect(ContinuousClock.now - start < .seconds(10), "sanity bound only")
                var outcomes: [ErrorCode?] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            try await flood.shutdown()
            let created = outcomes.filter { $0 == nil }.count
            #expect(created == server.server.configuration.registrationsPerHourPerAddress, "\(outcomes)")
            #expect(outcomes.filter { $0 == .rateLimited }.count == 40 - created)
            // Another address still registers.
            try await server.register("latecomer", password: "late password", from: "127.0.0.7")
        }
    }

    @Test func loginsPerAddressAreLimitedEvenWhenTheyWouldSucceed() async throws {
        // One a minute, so no token comes back between two attempts however slow the machine.
        try await TestServer.with(configure: { $0.loginsPerMinutePerAddress = 1 }) { server in
            let dora = try await TestUser.ready("dora", on: server)
            // From one address the first login succeeds, the next is refused; another address is unaffected.
            #expect(try await dora.attemptLogin(from: "127.0.0.8") == nil)
            #expect(try await dora.attemptLogin(from: "127.0.0.8") == .rateLimited)
            #expect(try await dora.attemptLogin(from: "127.0.0.9") == nil)
        }
    }

    /// Password hashing runs on its own threads, at most two at once, at most eight waiting;
    /// the rest are refused at once.
    @Test func passwordWorkIsBoundedAndOffTheCooperativePool() async throws {
        let work = PasswordWork(threads: 2, waiting: 8)
        let gate = Gate()
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do {
                        _ = try await work.run { gate.enter() }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            // The ten admitted wait for the gate; the other ten are refused without waiting.
            var outcomes: [Bool] = []
            for _ in 0..<10 { outcomes.append(await group.next()!) }
            // Both threads hold a job before the gate opens: on a loaded machine the second
            // thread can start after the refusals are in, which read as one thread (a CI flake).
            // Were there one thread only, this waits out its deadline and the check below fails.
            let deadline = ContinuousClock.now + .seconds(30)
            while gate.insideNow < 2, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
            gate.open()
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        #expect(outcomes.prefix(10).allSatisfy { !$0 })
        #expect(outcomes.filter { $0 }.count == 10)
        #expect(gate.maxConcurrent == 2)
        // NIOThreadPool names its threads "TP-#n"; Swift's cooperative pool and event loops use other names.
        #expect(gate.threadNames.count == 10)
        #expect(gate.threadNames.allSatisfy { $0.hasPrefix("TP-#") }, "\(gate.threadNames)")
    }

    // MARK: Finding 14: failed logins cannot lock the owner out

    @Test func wrongPasswordsFromOneAddressDoNotLockTheOwnerOut() async throws {
        try await TestServer.with { server in
            let victim = try await TestUser.ready("victim", on: server)
            let attacker = API.Login.suite.generateSignatureKeyPair()
            var outcomes: [ErrorCode?] = []
            for _ in 0..<10 {
                outcomes.append(
                    try await server.attemptLogin("victim", password: "wrong guess", keys: attacker, from: "127.0.0.2")
                )
            }
            #expect(outcomes == Array(repeating: .invalidPassword, count: 5) + Array(repeating: .rateLimited, count: 5))
            // The attacker's address is stopped even with the right password…
            let rightPassword = try await server.attemptLogin(
                "victim",
                password: victim.password,
                keys: attacker,
                from: "127.0.0.2"
            )
            #expect(rightPassword == .rateLimited)
            // …while the owner logs in from elsewhere.
            #expect(try await victim.attemptLogin(from: "127.0.0.3") == nil)
            #expect(try await victim.attemptLogin() == nil)
        }
    }

    @Test func aGuesserSpreadOverManyAddressesDoesNotLockTheOwnerOut() async throws {
        try await TestServer.with { server in
            let victim = try await TestUser.ready("victim", on: server)
            let attacker = API.Login.suite.generateSignatureKeyPair()
            // 21 addresses × 5 wrong passwords exceed the account-wide bound of 100 failures.
            for host in 10..<31 {
                for _ in 0..<5 {
                    let outcome = try await server.attemptLogin(
                        "victim",
                        password: "wrong guess",
                        keys: attacker,
                        from: "127.0.1.\(host)"
                    )
                    #expect(outcome == .invalidPassword || outcome == .rateLimited)
                }
            }
            // The owner, from an address with no failures, gets in.
            #expect(try await victim.attemptLogin(from: "127.0.2.1") == nil)
        }
    }

    /// The account-wide bound, at one instant (no refill): once exhausted it stops addresses that
    /// already failed on the account, and never one that has not.
    /// (Both storages: PostgresRateLimitTests.)
    @Test func theAccountWideFailureBoundOnlyStopsAddressesThatFailed() throws {
        let storage = try StorageKind.sqlite.make()
        defer { storage.closeForTest() }
        let limits = AccountLimits(ServerConfiguration(), storage: storage)
        let now: UInt64 = 1_000_000
        for host in 0..<20 {
            for _ in 0..<5 {
                let keys = FailureKeys(address: "10.0.0.\(host)", account: "victim")
                #expect(try !limits.failuresBlock(keys, now: now))
                try limits.recordFailure(keys, now: now)
            }
            #expect(try limits.failuresBlock(FailureKeys(address: "10.0.0.\(host)", account: "victim"), now: now))
        }
        let late = FailureKeys(address: "10.0.1.1", account: "victim")
        #expect(try !limits.failuresBlock(late, now: now))
        try limits.recordFailure(late, now: now)
        #expect(try limits.failuresBlock(late, now: now), "the account bound is spent and this address has failed")
        let owner = FailureKeys(address: "10.0.2.1", account: "victim")
        #expect(try !limits.failuresBlock(owner, now: now), "the owner elsewhere")
        #expect(
            try !limits.failuresBlock(FailureKeys(address: "10.0.1.1", account: "someone"), now: now),
            "other accounts"
        )
    }

    // MARK: Finding 15: KeyPackage claims per target

    @Test func aStrangerWithManyDevicesCannotDrainOneTimeKeyPackages() async throws {
        try await TestServer.with { server in
            let bob = try await TestUser.ready("bob", on: server, keyPackages: 30)
            let lastResort = try #require(
                bob.bundles.first { entry in
                    entry.value.keyPackage.extensions.contains { $0.extensionType == .lastResort }
                }?.key
            )
            var claimers = [try await TestUser.ready("mallory", on: server, keyPackages: 0)]
            for _ in 0..<4 {
                let device = TestUser("mallory", server: server)
                try await device.login()
                claimers.append(device)
            }
            var handedOut: [[UInt8]] = []
            for claimer in claimers {
                for _ in 0..<6 {
                    for keyPackage in try await claimer.claim("bob") {
                        handedOut.append(try keyPackage.reference(bob.suite))
                    }
                }
            }
            let budget = server.server.configuration.keyPackageClaimsPerHourPerTarget
            #expect(handedOut.count == 30)
            let oneTime = handedOut.filter { $0 != lastResort }
            #expect(oneTime.count == budget)
            #expect(Set(oneTime).count == budget)
            #expect(handedOut.suffix(30 - budget).allSatisfy { $0 == lastResort })
            let stock = try await server.get("/v1/keypackages", token: bob.token, as: API.KeyPackageStock.self)
            #expect(stock.available == 30 - budget)
            // Another stranger account finds the same: the budget is per target, across claimers.
            let eve = try await TestUser.ready("eve", on: server, keyPackages: 0)
            #expect(try await eve.claim("bob").map { try $0.reference(bob.suite) } == [lastResort])
        }
    }

    // MARK: Finding 18: devices per account, /metrics

    @Test func devicesPerAccountAreBounded() async throws {
        try await TestServer.with { server in
            let frank = try await TestUser.ready("frank", on: server)
            let limit = server.server.configuration.maxDevicesPerAccount
            #expect(limit == 10)
            for _ in 1..<limit {
                try await TestUser("frank", server: server).login()
            }
            let eleventh = TestUser("frank", server: server)
            await #expect(throws: ErrorBody(.tooManyDevices)) { try await eleventh.login() }
            // A device already registered still logs in.
            try await frank.login()
            let user = try await server.get("/v1/users/frank", token: frank.token, as: API.User.self)
            #expect(user.signatureKeys.count == limit)
        }
    }

    @Test func metricsAreServedToLoopbackOrWithTheToken() async throws {
        // The server listens on this machine's first non-loopback IPv4 address, so the test
        // client connects from an address that is not loopback.
        let address = try #require(
            try System.enumerateDevices().compactMap { device -> String? in
                guard case .v4 = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") else {
                    return nil
                }
                return ip
            }.first,
            "this machine needs a non-loopback IPv4 address"
        )
        try await TestServer.with(configure: {
            $0.host = address
            $0.metricsToken = "scrape secret"
        }) { server in
            #expect(try await server.request(.GET, "/healthz", from: address, host: address) == Data("ok\n".utf8))
            await #expect(throws: ErrorBody(.notFound)) {
                try await server.request(.GET, "/metrics", from: address, host: address)
            }
            await #expect(throws: ErrorBody(.notFound)) {
                try await server.request(.GET, "/metrics", from: address, host: address, token: "scrape secreT")
            }
            let metrics = try await server.request(
                .GET,
                "/metrics",
                from: address,
                host: address,
                token: "scrape secret"
            )
            #expect(String(decoding: metrics, as: UTF8.self).contains("parley_"))
        }
        try await TestServer.with { server in
            // Loopback peers need no token.
            let metrics = try await server.request(.GET, "/metrics", from: "127.0.0.4")
            #expect(!metrics.isEmpty)
        }
    }

    @Test func rateLimitAddressesGroupIPv6By64AndSeeMappedIPv4AsIPv4() throws {
        func key(_ ip: String) throws -> String { ClientAddress.key(try SocketAddress(ipAddress: ip, port: 1)) }
        func loopback(_ ip: String) throws -> Bool {
            ClientAddress.isLoopback(try SocketAddress(ipAddress: ip, port: 1))
        }
        #expect(try key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(try key("2001:db8:1:2:ffff::1") == key("2001:db8:1:2::9"))
        #expect(try key("::ffff:10.1.2.3") == "10.1.2.3")
        #expect(try key("10.1.2.3") == "10.1.2.3")
        #expect(try loopback("127.9.9.9") && loopback("::1") && loopback("::ffff:127.0.0.1"))
        #expect(try !loopback("10.0.0.1") && !loopback("::2") && !loopback("192.0.2.2") && !loopback("::ffff:10.0.0.1"))
    }

    // MARK: Finding 19: logout ends the WebSocket too

    @Test func logoutClosesTheOpenSocketAndItsTokenIsDead() async throws {
        try await TestServer.with { server in
            let alice = try await TestUser.ready("alice", on: server)
            let bob = try await TestUser.ready("bob", on: server)
            await alice.connect()
            await bob.connect()
            try await alice.createGroup("g")
            #expect(try await alice.add(["bob"], to: "g").accepted != nil)
            try bob.join(try #require(await bob.nextWelcome()))

            let oldSocket = try #require(alice.socket)
            try await server.request(.DELETE, "/v1/sessions", token: alice.token)
            #expect(await framesUntilClosed(oldSocket).contains { $0.error?.code == .unauthorized })

            // The socket is gone; a message sent on it reaches nobody, and the token opens no new one.
            let late = try alice.groups["g"]!.encrypt(Array("hi".utf8))
            try? oldSocket.send(.send(.init(id: "late", group: "g", message: Data(try late.tlsEncoded()))))
            let retry = TestSocket(server: server, token: alice.token)
            #expect(await framesUntilClosed(retry).isEmpty)
            #expect(await bob.nextMessage(in: "g", timeout: .seconds(2)) == nil)
            await #expect(throws: ErrorBody(.unauthorized)) {
                try await server.request(.GET, "/v1/groups", token: alice.token)
            }
            // Logging in again works and the device carries on.
            try await alice.login()
            await alice.connect()
            #expect(try await alice.sendText("back", to: "g").accepted != nil)
            #expect(try bob.apply(try #require(await bob.nextMessage(in: "g"))) == "back")
        }
    }
}

/// Blocks callers until opened, and records how many were inside at once and on which threads.
private final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    private var inside = 0
    private(set) var maxConcurrent = 0
    private(set) var threadNames: [String] = []

    /// How many callers wait at the gate now.
    var insideNow: Int {
        condition.lock()
        defer { condition.unlock() }
        return inside
    }

    func enter() {
        condition.lock()
        inside += 1
        maxConcurrent = max(maxConcurrent, inside)
        threadNames.append(Self.currentThreadName())
        while !isOpen { condition.wait() }
        inside -= 1
        condition.unlock()
    }

    /// The OS-level thread name (NIO names its threads there, not in Foundation's `Thread`).
    static func currentThreadName() -> String {
        #if os(Linux)
        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        return name.trimmingCharacters(in: .whitespacesAndNewlines)
        #else
        var name = [CChar](repeating: 0, count: 64)
        pthread_getname_np(pthread_self(), &name, name.count)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #endif
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
}

extension TestServer {
    /// One HTTP request from the local address `address` to `host`; a non-2xx answer is thrown as its `ErrorBody`.
    @discardableResult
    func request(
        _ method: HTTPMethod,
        _ path: String,
        from address: String,
        host: String = "127.0.0.1",
        token: String? = nil,
        body: Data? = nil,
        client: HTTPClient? = nil
    ) async throws -> Data {
        var request = HTTPClientRequest(url: "https://\(host):\(port)\(path)")
        request.method = method
        request.localAddress = address
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await (client ?? self.client).execute(request, timeout: .seconds(60))
        let data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw (try? WireJSON.decode(API.ErrorResponse.self, from: data).error)
                ?? ErrorBody(.internalError, "HTTP \(response.status.code)")
        }
        return data
    }

    func challenge(_ username: String) async throws -> Data {
        try await request(
            .POST,
            "/v1/sessions/challenge",
            json: API.LoginChallengeRequest(username: username),
            as: API.LoginChallenge.self
        ).challenge
    }

    /// A whole login from `address`: nil when it succeeds, else the error code.
    func attemptLogin(
        _ username: String,
        password: String,
        keys: SignatureKeyPair,
        from address: String = "127.0.0.1"
    ) async throws -> ErrorCode? {
        do {
            let asked = try WireJSON.encode(API.LoginChallengeRequest(username: username))
            let answer = try await request(.POST, "/v1/sessions/challenge", from: address, body: asked)
            let challenge = try WireJSON.decode(API.LoginChallenge.self, from: answer)
            let login = try API.Login(
                username: username,
                password: password,
                challenge: challenge.challenge,
                signatureKeys: keys,
                serverCertificate: server.certificateDER
            )
            return try await post(login, from: address)
        } catch let error as ErrorBody {
            return error.code
        }
    }

    /// Sends a built login: nil when it succeeds, else the error code.
    func post(_ login: API.Login, from address: String = "127.0.0.1") async throws -> ErrorCode? {
        do {
            _ = try await request(.POST, "/v1/sessions", from: address, body: WireJSON.encode(login))
            return nil
        } catch let error as ErrorBody {
            return error.code
        }
    }

    func register(
        _ username: String,
        password: String,
        from address: String = "127.0.0.1",
        client: HTTPClient? = nil
    ) async throws {
        let body = try WireJSON.encode(API.Register(username: username, password: password))
        try await request(.POST, "/v1/accounts", from: address, body: body, client: client)
    }
}

extension TestUser {
    /// This device logging in again from `address`: nil when it succeeds, else the error code.
    func attemptLogin(from address: String = "127.0.0.1") async throws -> ErrorCode? {
        try await server.attemptLogin(name, password: password, keys: signatureKeys, from: address)
    }
}
