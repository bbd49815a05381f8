import Foundation
import MLS
import ParleyProtocol
import Synchronization

@testable import ParleyClient

/// A scriptable in-memory server for the group engine's unit tests: no TLS, no sockets,
/// no server process. A test delivers whatever frames it likes (`deliver`), scripts how
/// the next `send`s are answered (`answers`), and reads what the client sent and acked.
///
/// Like the real server it numbers a group's log from 1 and, on a new connection, replays
/// what the device has not acknowledged; unlike today's server (and like the one the
/// "server" helper is building) it replays the sender's own accepted messages too, and
/// without their `id`, so reconciliation by message bytes is exercised.
final class FakeServer: ServerTransport {
    enum Answer: Sendable {
        /// Accepted: appended to the log and echoed, with the `send` id, to the sender.
        case accept
        /// Refused with `code`, after delivering `before` (e.g. the commit that won).
        case refuse(ErrorCode, before: [ServerFrame])
        /// Accepted and logged, but the connection drops before the echo goes out.
        case acceptThenDrop
        /// Accepted and logged, but the echo is held back (a slow server): the client times
        /// out; the copy reaches it in the next connection's replay.
        case acceptSilently
        /// Accepted into the server's log writer but not yet stored (``storeLate()`` stores
        /// it): a new connection's replay does not have it, and a resend of its id is refused
        /// as still in flight (`rateLimited`, like the real server's `resendInFlight`).
        case acceptLate
    }

    struct State {
        var reachable = true
        /// Whether the live echo of a send carries its `id` (today's server: yes).
        var echoesCarryID = true
        var answers: [Answer] = []
        /// Frames for the next connection's replay, before the log's unacknowledged tail.
        var pending: [ServerFrame] = []
        var connection: FakeConnection?
        var sends: [ClientFrame.Send] = []
        var acks: [String: UInt64] = [:]
        /// Messages accepted from this client, by group.
        var accepted: [String: [ServerFrame.Message]] = [:]
        var nextSeq: [String: UInt64] = [:]
        /// KeyPackages of the standard suite, in upload order; of the post-quantum suite apart.
        var uploaded: [Data] = []
        var uploadedPostQuantum: [Data] = []
        var connections = 0
        /// Stored messages by `send` id: a resend of a stored id is answered with the stored
        /// message's echo, never stored twice (as the real server does).
        var stored: [String: ServerFrame.Message] = [:]
        /// Sends accepted with ``Answer/acceptLate``, not yet stored.
        var late: [ClientFrame.Send] = []

        /// Appends a send to its group's log; returns the stored message.
        mutating func store(_ send: ClientFrame.Send, from user: String) -> ServerFrame.Message {
            let seq = nextSeq[send.group] ?? 1
            nextSeq[send.group] = seq + 1
            let message = ServerFrame.Message(
                group: send.group,
                seq: seq,
                time: UInt64(Date().timeIntervalSince1970 * 1000),
                sender: user,
                message: send.message
            )
            accepted[send.group, default: []].append(message)
            stored[send.id] = message
            return message
        }

        /// Keeps the next seq of a group past every frame handed out.
        mutating func numbered(_ frame: ServerFrame) {
            if case .message(let message) = frame {
                nextSeq[message.group] = max(nextSeq[message.group] ?? 1, message.seq &+ 1)
            }
            if case .welcome(let welcome) = frame {
                nextSeq[welcome.group] = max(nextSeq[welcome.group] ?? 1, welcome.seq &+ 1)
            }
        }
    }

    let user: String
    let state = Mutex(State())

    init(user: String) { self.user = user }

    // MARK: Scripting

    /// Delivers frames live if a connection is open, else in the next connection's replay.
    func deliver(_ frames: ServerFrame...) {
        state.withLock { state in
            for frame in frames {
                state.numbered(frame)
                if let connection = state.connection, !connection.isClosed {
                    connection.push(frame)
                } else {
                    state.pending.append(frame)
                }
            }
        }
    }

    /// Stores the sends accepted with ``Answer/acceptLate`` and echoes each (with its id)
    /// live on the open connection, as the real server's log writer does once it commits.
    func storeLate() {
        state.withLock { state in
            for send in state.late {
                var echo = state.store(send, from: user)
                echo.id = send.id
                if let connection = state.connection, !connection.isClosed { connection.push(.message(echo)) }
            }
            state.late = []
        }
    }

    func script(_ answers: Answer...) { state.withLock { $0.answers += answers } }
    func setReachable(_ reachable: Bool) { state.withLock { $0.reachable = reachable } }
    var sends: [ClientFrame.Send] { state.withLock { $0.sends } }
    var uploaded: [Data] { state.withLock { $0.uploaded } }
    var connections: Int { state.withLock { $0.connections } }

    // MARK: What the client sends

    func received(_ frame: ClientFrame, on connection: FakeConnection) {
        state.withLock { state in
            switch frame {
            case .ack(let ack):
                state.acks[ack.group] = max(state.acks[ack.group] ?? 0, ack.seq)
            case .send(let send):
                state.sends.append(send)
                if var earlier = state.stored[send.id] {
                    earlier.id = send.id
                    return connection.push(.message(earlier))
                }
                if state.late.contains(where: { $0.id == send.id }) {
                    let body = ErrorBody(.rateLimited, "still being stored")
                    return connection.push(.error(.init(id: send.id, group: send.group, error: body)))
                }
                let answer = state.answers.isEmpty ? .accept : state.answers.removeFirst()
                switch answer {
                case .refuse(let code, let before):
                    for frame in before {
                        state.numbered(frame)
                        connection.push(frame)
                    }
                    connection.push(.error(.init(id: send.id, group: send.group, error: ErrorBody(code, "refused"))))
                case .acceptLate:
                    state.late.append(send)
                case .accept, .acceptThenDrop, .acceptSilently:
                    var echo = state.store(send, from: user)
                    echo.id = state.echoesCarryID ? send.id : nil
                    switch answer {
                    case .accept: connection.push(.message(echo))
                    case .acceptThenDrop: connection.close()
                    default: break
                    }
                }
            }
        }
    }

    // MARK: ServerTransport

    func openConnection() async throws -> any ServerConnection {
        try state.withLock { state in
            guard state.reachable else { throw ClientError.unreachable("the fake server is down") }
            let connection = FakeConnection(server: self)
            state.connections += 1
            for frame in state.pending { connection.push(frame) }
            state.pending = []
            for (group, messages) in state.accepted {
                for message in messages where message.seq > state.acks[group] ?? 0 {
                    connection.push(.message(message))
                }
            }
            connection.push(.replayFinished)
            state.connection = connection
            return connection
        }
    }

    func ratchetTree(of group: String) async throws -> [UInt8] {
        throw ClientError.server(ErrorBody(.notFound, "no tree"))
    }

    func claimKeyPackages(of user: String, skipping: [[UInt8]], suite: CipherSuite) async throws -> [Data] { [] }

    func keyPackageStock(suite: CipherSuite) async throws -> API.KeyPackageStock {
        let count = state.withLock {
            suite == ParleySuites.postQuantum ? $0.uploadedPostQuantum.count : $0.uploaded.count
        }
        return API.KeyPackageStock(available: count, lowWatermark: 1)
    }

    func uploadKeyPackages(_ upload: API.UploadKeyPackages) async throws {
        let packages = upload.keyPackages + (upload.lastResort.map { [$0] } ?? [])
        let postQuantum = packages.contains { data in
            guard case .keyPackage(let package)? = try? MLSMessage(tlsEncoded: [UInt8](data)) else { return false }
            return package.cipherSuite == ParleySuites.postQuantum
        }
        state.withLock {
            if postQuantum { $0.uploadedPostQuantum += packages } else { $0.uploaded += packages }
        }
    }

    func createGroup(_ request: API.CreateGroup) async throws {}
    func registerSuccessor(of group: String, _ successor: API.Successor) async throws -> UInt64 {
        throw ClientError.server(ErrorBody(.notPermitted))
    }
    func destroyGroup(_ name: String, notice: UInt64?) async throws {}
    func signatureKeys(of user: String) async throws -> [[UInt8]] { [] }
    func deviceList(of user: String) async throws -> [UInt8]? { nil }
}

/// One connection to the ``FakeServer``: frames queue up until the engine takes them.
final class FakeConnection: ServerConnection {
    private let frames = Mutex<(queue: [ServerFrame], closed: Bool)>(([], false))
    let server: FakeServer

    init(server: FakeServer) { self.server = server }

    func push(_ frame: ServerFrame) { frames.withLock { $0.queue.append(frame) } }

    func next(timeout: Duration) async throws -> ServerFrame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (frame, closed) = frames.withLock { state -> (ServerFrame?, Bool) in
                state.queue.isEmpty ? (nil, state.closed) : (state.queue.removeFirst(), false)
            }
            if let frame { return frame }
            if closed { throw ClientError.unreachable("the fake connection closed") }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func send(_ frame: ClientFrame) throws {
        guard !isClosed else { throw ClientError.unreachable("the fake connection closed") }
        server.received(frame, on: self)
    }

    var isClosed: Bool { frames.withLock { $0.closed } }

    func close() { frames.withLock { $0.closed = true } }
}
