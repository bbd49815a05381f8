import ArgumentParser
import Foundation
import Histogram
import MLS
import NIOSSL
import ParleyClient
import ParleyProtocol
import ParleyServer
import Synchronization

/// `parley-bench large-group`: one group of `--members` member devices through the real server
/// (issue 15): how long a message takes to reach every one of them, and a commit adding `--add`
/// more, with their Welcomes, measured end to end.
struct LargeGroupBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "large-group",
        abstract: "One large group through the real server: fan-out latency, and adding many members in one commit."
    )

    @Option(help: "Member devices in the group, the admin's included.") var members = 1000
    @Option(help: "Devices then added in one commit.") var add = 100
    @Option(help: "Messages the admin sends to the whole group.") var messages = 50
    @Option(help: "Milliseconds between those messages.") var interval = 100
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        guard members >= 2, add >= 1, messages >= 1 else {
            throw ValidationError("need 2+ members, 1+ added, 1+ message")
        }
        let fileLimit = ProcessResources.raiseOpenFileLimit()
        guard 2 * (members + add) + 200 <= fileLimit else {
            throw ValidationError("\(members + add) connections need more than \(fileLimit) file descriptors")
        }
        let target = try await LoadTarget.start(server: nil, rate: 1000, status: { status($0) })
        do {
            try await measure(target)
        } catch {
            await target.stop()
            throw error
        }
        await target.stop()
    }

    func measure(_ target: LoadTarget) async throws {
        let suite = try CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()
        let devices = try await LargeGroupDevices.make(
            count: members - 1 + add,
            target: target,
            suite: suite,
            status: status
        )
        var admin = try await LargeGroupAdmin.start(target: target, suite: suite)
        let arrivals = Arrivals()
        status("building the group: \(members) members, in commits of 100")
        let existing = Array(devices.prefix(members - 1))
        let build = try await timed {
            for start in stride(from: 0, to: existing.count, by: 100) {
                // The tree is left out of these Welcomes: the devices never join, they only receive.
                _ = try await admin.add(Array(existing[start..<min(start + 100, existing.count)]), treeInWelcome: false)
            }
        }
        report(["op": "large_group_build", "members": members, "ms": build])
        status("connecting \(existing.count) member devices")
        let sockets = existing.map {
            BenchSocket.member(url: target.webSocketURL, token: $0.token, tls: target.tls, arrivals: arrivals)
        }
        try await arrivals.waitUntil(ready: sockets.count)
        try await measureFanOut(admin: &admin, arrivals: arrivals, recipients: sockets.count)
        try await measureAdd(admin: &admin, devices: Array(devices.suffix(add)), arrivals: arrivals, target: target)
        for socket in sockets { socket.close() }
        admin.close()
    }

    /// The admin sends `messages` messages; each member connection times each copy it receives.
    func measureFanOut(admin: inout LargeGroupAdmin, arrivals: Arrivals, recipients: Int) async throws {
        status("sending \(messages) messages to \(recipients) members, one every \(interval) ms")
        var seqs: [UInt64] = []
        for _ in 0..<messages {
            let started = ContinuousClock.now
            seqs.append(try await admin.sendTimedMessage())
            try await Task.sleep(until: started + .milliseconds(interval))
        }
        try await arrivals.waitUntil(each: seqs, reaches: recipients, timeout: .seconds(30))
        let result = arrivals.fanOut(seqs: seqs)
        report([
            "op": "large_group_message", "members": recipients + 1, "messages": messages, "interval_ms": interval,
            "deliveries": result.deliveries, "expected": messages * recipients,
            "delivery_p50_ms": result.p50, "delivery_p99_ms": result.p99, "delivery_max_ms": result.max,
            "all_reached_p50_ms": result.allReachedP50, "all_reached_p99_ms": result.allReachedP99,
        ])
    }

    /// One commit adding `devices`: its creation, the server's answer, the commit reaching every
    /// member, and the Welcome reaching every new device; then one of them joins from it.
    func measureAdd(
        admin: inout LargeGroupAdmin,
        devices: [LargeGroupDevices.Device],
        arrivals: Arrivals,
        target: LoadTarget
    ) async throws {
        status("adding \(devices.count) devices in one commit")
        let newcomers = Arrivals()
        let sockets = devices.map {
            BenchSocket.member(url: target.webSocketURL, token: $0.token, tls: target.tls, arrivals: newcomers)
        }
        try await newcomers.waitUntil(ready: sockets.count)
        let outcome = try await admin.add(devices, treeInWelcome: true)
        try await arrivals.waitUntil(each: [outcome.seq], reaches: members - 1, timeout: .seconds(60))
        try await newcomers.waitUntilWelcomes(devices.count, timeout: .seconds(60))
        let commitReached = arrivals.reached(seq: outcome.seq, since: outcome.sent)
        let welcomes = newcomers.welcomes(since: outcome.sent)
        // One new device joins from the Welcome it received (the tree inline): the MLS work each does.
        var joinMilliseconds = 0.0
        if let welcome = newcomers.firstWelcome, case .welcome(let message) = try MLSMessage(tlsEncoded: welcome) {
            let suite = admin.suite
            let joiner = devices.first { device in
                message.secrets.contains { (try? device.bundle.keyPackage.reference(suite)) == $0.newMember }
            }
            if let joiner {
                joinMilliseconds = try milliseconds {
                    _ = try Group.join(
                        welcome: message,
                        keyPackage: joiner.bundle,
                        policy: ParleyGroupPolicy.groupPolicy()
                    )
                }
            }
        }
        report([
            "op": "large_group_add", "members": members, "added": devices.count,
            "commit_ms": outcome.commitMilliseconds, "commit_bytes": outcome.commitBytes,
            "welcome_bytes": outcome.welcomeBytes, "accepted_ms": outcome.acceptedMilliseconds,
            "commit_reached_all_ms": commitReached.max, "commit_reached_p50_ms": commitReached.p50,
            "welcomes": welcomes.count, "welcome_reached_all_ms": welcomes.max, "welcome_p50_ms": welcomes.p50,
            "join_from_welcome_ms": joinMilliseconds,
        ])
        for socket in sockets { socket.close() }
    }

    func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        return (ContinuousClock.now - start) / .milliseconds(1)
    }

    func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        return (ContinuousClock.now - start) / .milliseconds(1)
    }

    func status(_ text: String) {
        if !json { print("· \(text)") }
        fflush(nil)
    }

    func report(_ values: [String: Any]) {
        if json {
            let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])) ?? Data()
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "  "))
        }
        fflush(nil)
    }
}

/// The member devices: one account's devices, each logged in with its own key and holding one
/// uploaded KeyPackage (the server checks each Add's KeyPackage was uploaded by its device).
struct LargeGroupDevices {
    struct Device: Sendable {
        let token: String
        let bundle: KeyPackageBundle
    }

    static let password = "large group bench"

    static func make(
        count: Int,
        target: LoadTarget,
        suite: CipherSuiteProvider,
        status: (String) -> Void
    ) async throws -> [Device] {
        status("logging in \(count) devices (the server's password hashing is most of this)")
        // Accounts of at most 1,000 devices each (the server's bound).
        let accounts = (count + LoadTarget.devicesPerAccount - 1) / LoadTarget.devicesPerAccount
        let users = (0..<accounts).map { target.name("m\($0)") }
        for user in users { try await target.createUser(user, password: password) }
        return try await withThrowingTaskGroup(of: Device.self) { group in
            var (next, devices) = (0, [Device]())
            func start() {
                let user = users[next / LoadTarget.devicesPerAccount]
                group.addTask { try await device(user: user, target: target, suite: suite) }
                next += 1
            }
            while next < min(count, 4) { start() }
            for try await device in group {
                devices.append(device)
                if next < count { start() }
            }
            return devices
        }
    }

    static func device(user: String, target: LoadTarget, suite: CipherSuiteProvider) async throws -> Device {
        let keys = suite.generateSignatureKeyPair()
        let session = try await ParleyClient.openSession(
            api: target.api,
            username: user,
            password: password,
            keys: keys
        )
        let bundle = try KeyPackageBundle(
            suite,
            credential: .basic(identity: Array(user.utf8)),
            signatureKeys: keys,
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        let upload = API.UploadKeyPackages(keyPackages: [
            Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded())
        ])
        try await target.api.request(.POST, "/v1/keypackages", token: session.token, body: WireJSON.encode(upload))
        return Device(token: session.token, bundle: bundle)
    }
}

/// The group's admin: its MLS group, and a connection whose answers it awaits.
struct LargeGroupAdmin {
    let suite: CipherSuiteProvider
    let name: String
    var group: Group
    let socket: BenchSocket
    let answers: Answers
    var nextID = 0

    static func start(target: LoadTarget, suite: CipherSuiteProvider) async throws -> LargeGroupAdmin {
        let user = target.name("admin")
        try await target.createUser(user, password: LargeGroupDevices.password)
        let keys = suite.generateSignatureKeyPair()
        let session = try await ParleyClient.openSession(
            api: target.api,
            username: user,
            password: LargeGroupDevices.password,
            keys: keys
        )
        let name = target.name("large")
        let group = try Group.create(
            suite,
            groupID: Array(UUID().uuidString.utf8),
            credential: .basic(identity: Array(user.utf8)),
            signatureKeys: keys,
            extensions: [try ParleyGroupPolicy.adminsExtension([user])],
            policy: ParleyGroupPolicy.groupPolicy()
        )
        let creation = API.CreateGroup(
            name: name,
            groupInfo: Data(try MLSMessage.groupInfo(group.groupInfo()).tlsEncoded())
        )
        try await target.api.request(.POST, "/v1/groups", token: session.token, body: WireJSON.encode(creation))
        let answers = Answers()
        let socket = BenchSocket.admin(
            url: target.webSocketURL,
            token: session.token,
            tls: target.tls,
            answers: answers
        )
        try await answers.waitUntilReady()
        return LargeGroupAdmin(suite: suite, name: name, group: group, socket: socket, answers: answers)
    }

    struct Added {
        var seq: UInt64
        var sent: ContinuousClock.Instant
        var commitMilliseconds: Double
        var acceptedMilliseconds: Double
        var commitBytes: Int
        var welcomeBytes: Int
    }

    /// One commit adding `devices`, sent with its Welcome; applied once accepted.
    mutating func add(_ devices: [LargeGroupDevices.Device], treeInWelcome: Bool) async throws -> Added {
        let started = ContinuousClock.now
        let output = try group.commit(
            CommitOptions(add: devices.map(\.bundle.keyPackage), ratchetTreeInWelcome: treeInWelcome)
        )
        let commitMilliseconds = (ContinuousClock.now - started) / .milliseconds(1)
        let (message, welcome) = (try output.message.tlsEncoded(), try output.welcome?.tlsEncoded() ?? [])
        let sent = ContinuousClock.now
        let seq = try await submit(message, welcome: welcome)
        let accepted = (ContinuousClock.now - sent) / .milliseconds(1)
        _ = try group.process(output.message)
        return Added(
            seq: seq,
            sent: sent,
            commitMilliseconds: commitMilliseconds,
            acceptedMilliseconds: accepted,
            commitBytes: message.count,
            welcomeBytes: welcome.count
        )
    }

    /// A real application message whose authenticated data is its send time.
    mutating func sendTimedMessage() async throws -> UInt64 {
        let now = DispatchTime.now().uptimeNanoseconds
        let message = try group.encrypt(
            [UInt8](repeating: 0x61, count: 256),
            authenticatedData: withUnsafeBytes(of: now.bigEndian, Array.init)
        )
        return try await submit(try message.tlsEncoded(), welcome: nil)
    }

    mutating func submit(_ message: [UInt8], welcome: [UInt8]?) async throws -> UInt64 {
        nextID += 1
        let id = "admin-\(nextID)"
        let send = ClientFrame.Send(id: id, group: name, message: Data(message), welcome: welcome.map { Data($0) })
        socket.send(.send(send))
        return try await answers.answer(to: id)
    }

    func close() { socket.close() }
}

/// The admin's answers by send id.
final class Answers: Sendable {
    private let state = Mutex<(ready: Bool, answers: [String: Result<UInt64, ErrorBody>])>((false, [:]))

    func ready() { state.withLock { $0.ready = true } }
    func record(_ id: String, _ result: Result<UInt64, ErrorBody>) { state.withLock { $0.answers[id] = result } }

    func waitUntilReady() async throws {
        for _ in 0..<6000 {
            if state.withLock({ $0.ready }) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("the admin's connection did not open")
    }

    /// The seq the send was stored under, or its refusal. The bench's own driver, not the
    /// client library: a short sleep between looks costs nothing that is measured.
    func answer(to id: String) async throws -> UInt64 {
        for _ in 0..<60_000 {
            if let result = state.withLock({ $0.answers.removeValue(forKey: id) }) {
                switch result {
                case .success(let seq): return seq
                case .failure(let error): throw ValidationError("the server refused \(id): \(error)")
                }
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        throw ValidationError("no answer to \(id)")
    }
}

/// What the member connections received: when each seq reached each of them, the latency of
/// each timed message copy, and the Welcomes.
final class Arrivals: Sendable {
    private struct State {
        var ready = 0
        var bySeq: [UInt64: [ContinuousClock.Instant]] = [:]
        var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var welcomes: [(ContinuousClock.Instant, [UInt8])] = []
    }

    private let state = Mutex(State())

    var firstWelcome: [UInt8]? { state.withLock { $0.welcomes.first?.1 } }

    func ready() { state.withLock { $0.ready += 1 } }

    func received(_ frame: ServerFrame.Message, at now: ContinuousClock.Instant, nanoseconds: UInt64) {
        let sentAt = BenchSocket.sentAt(frame)
        state.withLock { state in
            state.bySeq[frame.seq, default: []].append(now)
            if let sentAt, nanoseconds > sentAt { _ = state.latencies.record((nanoseconds - sentAt) / 1000) }
        }
    }

    func welcome(_ frame: ServerFrame.WelcomeFrame, at now: ContinuousClock.Instant) {
        state.withLock { $0.welcomes.append((now, [UInt8](frame.welcome))) }
    }

    func waitUntil(ready count: Int) async throws {
        var (last, stalled) = (-1, 0)
        while true {
            let now = state.withLock { $0.ready }
            if now >= count { return }
            stalled = now == last ? stalled + 1 : 0
            guard stalled < 300 else { throw ValidationError("only \(now) of \(count) connections opened") }
            last = now
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func waitUntil(each seqs: [UInt64], reaches count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ state in seqs.allSatisfy { state.bySeq[$0]?.count ?? 0 >= count } }) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func waitUntilWelcomes(_ count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLock({ $0.welcomes.count }) < count {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    struct FanOut {
        var deliveries = 0
        var p50 = 0.0, p99 = 0.0, max = 0.0, allReachedP50 = 0.0, allReachedP99 = 0.0
    }

    /// Per-copy latency, and per message the time its last copy arrived (after its first).
    func fanOut(seqs: [UInt64]) -> FanOut {
        state.withLock { state in
            var result = FanOut()
            result.deliveries = seqs.reduce(0) { $0 + (state.bySeq[$1]?.count ?? 0) }
            result.p50 = Double(state.latencies.valueAtPercentile(50)) / 1000
            result.p99 = Double(state.latencies.valueAtPercentile(99)) / 1000
            result.max = Double(state.latencies.max) / 1000
            let spreads = seqs.compactMap { seq -> Double? in
                guard let times = state.bySeq[seq], let first = times.min(), let last = times.max() else { return nil }
                return (last - first) / .milliseconds(1)
            }.sorted()
            if !spreads.isEmpty {
                result.allReachedP50 = spreads[spreads.count / 2]
                result.allReachedP99 = spreads[min(spreads.count - 1, Int(Double(spreads.count) * 0.99))]
            }
            return result
        }
    }

    /// When `seq` reached members, in milliseconds since `since`: the median and the last.
    func reached(seq: UInt64, since: ContinuousClock.Instant) -> (p50: Double, max: Double) {
        state.withLock { state in
            let times = (state.bySeq[seq] ?? []).map { ($0 - since) / .milliseconds(1) }.sorted()
            return times.isEmpty ? (0, 0) : (times[times.count / 2], times[times.count - 1])
        }
    }

    func welcomes(since: ContinuousClock.Instant) -> (count: Int, p50: Double, max: Double) {
        state.withLock { state in
            let times = state.welcomes.map { ($0.0 - since) / .milliseconds(1) }.sorted()
            return times.isEmpty ? (0, 0, 0) : (times.count, times[times.count / 2], times[times.count - 1])
        }
    }
}

extension BenchSocket {
    /// A member device's connection: once its replay has finished, the messages and Welcomes it
    /// receives go to `arrivals`, timed.
    static func member(url: String, token: String, tls: TLSConfiguration, arrivals: Arrivals) -> BenchSocket {
        BenchSocket(url: url, token: token, tls: tls, maxFrameSize: 1 << 24) { frame, arrival in
            switch frame {
            case .replayFinished: arrivals.ready()
            case .message(let delivered) where arrival.live:
                arrivals.received(delivered, at: arrival.instant, nanoseconds: arrival.uptimeNanoseconds)
            case .welcome(let welcome) where arrival.live: arrivals.welcome(welcome, at: arrival.instant)
            default: break
            }
        }
    }

    /// The admin's connection: the server's answer to each of its sends goes to `answers`.
    static func admin(url: String, token: String, tls: TLSConfiguration, answers: Answers) -> BenchSocket {
        BenchSocket(url: url, token: token, tls: tls, maxFrameSize: 1 << 24) { frame, _ in
            switch frame {
            case .replayFinished: answers.ready()
            case .message(let delivered): if let id = delivered.id { answers.record(id, .success(delivered.seq)) }
            case .error(let error): if let id = error.id { answers.record(id, .failure(error.error)) }
            default: break
            }
        }
    }
}
