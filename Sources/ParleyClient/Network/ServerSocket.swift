import Foundation
import HummingbirdWSClient
import Logging
import NIOSSL
import ParleyProtocol
import Synchronization

/// The device's WebSocket: incoming frames queue up in a bounded ``FrameInbox`` for
/// ``next(timeout:)``.
final class ServerSocket: Sendable {
    private let inbox = FrameInbox()
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<Void, Never>

    init(api: ServerAPI, token: String) throws {
        let (stream, outgoing) = AsyncStream<String>.makeStream()
        self.outgoing = outgoing
        let inbox = self.inbox
        let tls = try CertificatePin.pinned(api.certificate)
        let url = "wss://\(api.host):\(api.port)/v1/ws"
        // NIOSSL refuses IP addresses as SNI; the server does not need SNI.
        let sni = api.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? "localhost" : api.host
        var logger = Logger(label: "parley-client-ws")
        logger.logLevel = .critical
        // One frame is at most `maxFrameBytes` (the WebSocket layer refuses a longer one and closes).
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: FrameInbox.maxFrameBytes,
            additionalHeaders: [.authorization: "Bearer \(token)"],
            autoPing: .enabled(timePeriod: .seconds(30)),
            sniHostname: sni
        )
        task = Task {
            do {
                let closing = try await WebSocketClient.connect(
                    url: url,
                    configuration: configuration,
                    tlsConfiguration: tls,
                    logger: logger
                ) { inbound, outbound, _ in
                    let writer = Task {
                        for await text in stream { try await outbound.write(.text(text)) }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    defer { writer.cancel() }
                    for try await message in inbound.messages(maxSize: FrameInbox.maxFrameBytes) {
                        guard case .text(let text) = message,
                            let frame = try? WireJSON.decode(ServerFrame.self, from: Data(text.utf8))
                        else { continue }
                        // Waits while the inbox is full: the socket is not read meanwhile, so
                        // TCP flow control holds a flooding server back, not client memory.
                        try await inbox.put(frame, size: text.utf8.count)
                    }
                }
                // The server's close reason says why (session ended, replaced, shutting down).
                inbox.close(
                    error: closing.map {
                        let reason = TerminalText.line($0.reason ?? "\($0.closeCode)")
                        return .unreachable("the server closed the connection: \(reason)")
                    }
                )
            } catch let error as WebSocketClientError where error == .serverSentMessageTooLarge {
                inbox.close(error: .frameTooLarge(limit: FrameInbox.maxFrameBytes))
            } catch {
                inbox.close(error: .unreachable("\(error)"))
            }
        }
    }

    func send(_ frame: ClientFrame) throws {
        outgoing.yield(String(decoding: try WireJSON.encode(frame), as: UTF8.self))
    }

    /// The next frame; nil when none arrives within `timeout`. Waits on the inbox (no polling):
    /// it returns as soon as a frame arrives or the connection closes.
    /// Throws once the connection is closed and every frame has been read.
    func next(timeout: Duration) async throws -> ServerFrame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frame = try inbox.take() { return frame }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return nil }
            await inbox.wait(for: .frame, until: deadline)
        }
    }

    /// How many frames arrived on this connection so far.
    var arrivals: UInt64 { inbox.arrivals }

    /// Returns once a frame beyond the first `seen` arrived, the connection closed, `timeout`
    /// passed or the task is cancelled. Only waits: it takes no frame, so cancelling it is safe.
    func waitForArrival(after seen: UInt64, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while inbox.arrivals <= seen, !inbox.isClosed, ContinuousClock.now < deadline, !Task.isCancelled {
            await inbox.wait(for: .arrival(after: seen), until: deadline)
        }
    }

    /// The connection ended: a new one is needed. Frames still waiting here are dropped with
    /// it; the new connection replays everything after the acknowledged cursors.
    var isClosed: Bool { inbox.isClosed }

    /// The most frames that ever waited in this socket's inbox at once.
    var peakQueuedFrames: Int { inbox.peakCount }

    /// Ends the connection from this side at once, whatever the server does: the reading task
    /// is cancelled (which closes the socket's input, so the WebSocket layer ends the
    /// connection) and the inbox closes, dropping what it held. Only finishing the outgoing
    /// stream would leave both to a server that never completes the close, each timeout
    /// keeping another socket and its inbox alive.
    func close() {
        outgoing.finish()
        task.cancel()
        inbox.close(error: .unreachable("the connection was closed"), dropping: true)
    }
}

/// Frames received and not yet processed, bounded by count and by bytes: a hostile server
/// that sends faster than the client processes cannot grow client memory. A full inbox makes
/// the reader wait instead of dropping or disconnecting, so an honest but long replay
/// (thousands of messages after a month offline) still arrives whole, just paced by the client.
///
/// Both sides wait on continuations, not sleeps (issue 15): an idle client uses no CPU, and a
/// frame is handed over as soon as it arrives.
final class FrameInbox: Sendable {
    /// Largest single frame accepted: well above the server's largest (1 MiB message, base64).
    static let maxFrameBytes = 16 << 20
    /// The bounds a new inbox gets; tests lower them to watch a flood paced through a small one.
    static let defaultBounds = Mutex<(frames: Int, bytes: Int)>((1024, 32 << 20))

    /// What a waiter waits for: a frame to take, or room to put one of `size` bytes.
    enum Wait: Sendable {
        case frame
        case room(size: Int)
        /// More than this many frames arrived in all (taken or not).
        case arrival(after: UInt64)

        /// Whether an arriving frame wakes this waiter (a taken one wakes the others).
        var isFrame: Bool {
            switch self {
            case .frame, .arrival: true
            case .room: false
            }
        }
    }

    private struct State {
        var frames: [(ServerFrame, Int)] = []
        var bytes = 0
        var peak = 0
        /// Frames ever added.
        var arrivals: UInt64 = 0
        var closed = false
        /// Closed from this side: frames are no longer kept.
        var dropping = false
        var error: ClientError?
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: (wait: Wait, continuation: CheckedContinuation<Void, Never>)] = [:]

        /// Whether a frame of `size` bytes fits now.
        func fits(_ size: Int, maxFrames: Int, maxBytes: Int) -> Bool {
            let (total, overflow) = bytes.addingReportingOverflow(max(0, size))
            return frames.isEmpty || (!overflow && total <= maxBytes && frames.count < maxFrames)
        }

        /// Removes and returns the frame waiters (`frames`), the room waiters, or all (nil).
        mutating func release(frames: Bool?) -> [CheckedContinuation<Void, Never>] {
            let woken = waiters.filter { frames == nil || $0.value.wait.isFrame == frames }
            for id in woken.keys { waiters.removeValue(forKey: id) }
            return woken.values.map(\.continuation)
        }
    }

    let maxFrames: Int
    let maxBytes: Int
    private let state = Mutex(State())

    init(maxFrames: Int? = nil, maxBytes: Int? = nil) {
        let defaults = Self.defaultBounds.withLock { $0 }
        self.maxFrames = maxFrames ?? defaults.frames
        self.maxBytes = maxBytes ?? defaults.bytes
    }

    /// Adds a frame if it fits; an empty inbox takes any one frame, so a frame as large as
    /// the whole byte bound cannot wedge it.
    func offer(_ frame: ServerFrame, size: Int) -> Bool {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            // Closed from this side: whatever the reader still hands over is dropped.
            if state.dropping { return [] }
            guard state.fits(size, maxFrames: maxFrames, maxBytes: maxBytes) else { return nil }
            let (total, overflow) = state.bytes.addingReportingOverflow(max(0, size))
            state.frames.append((frame, size))
            state.bytes = overflow ? .max : total
            state.peak = max(state.peak, state.frames.count)
            state.arrivals += 1
            return state.release(frames: true)
        }
        for waiter in woken ?? [] { waiter.resume() }
        return woken != nil
    }

    /// Adds a frame, waiting while the inbox is full; throws when the reading task is cancelled.
    func put(_ frame: ServerFrame, size: Int) async throws {
        while !offer(frame, size: size) {
            try Task.checkCancellation()
            await wait(for: .room(size: size), until: nil)
        }
    }

    /// The oldest frame; nil when none is waiting. Throws once closed and empty.
    func take() throws -> ServerFrame? {
        let (frame, error, woken) = state.withLock {
            state -> (ServerFrame?, ClientError?, [CheckedContinuation<Void, Never>]) in
            guard state.frames.isEmpty else {
                let (frame, size) = state.frames.removeFirst()
                state.bytes = max(0, state.bytes - size)
                return (frame, nil, state.release(frames: false))
            }
            guard state.closed else { return (nil, nil, []) }
            return (nil, state.error ?? .unreachable("the connection closed"), [])
        }
        for waiter in woken { waiter.resume() }
        if let error { throw error }
        return frame
    }

    /// Returns once there may be what `wait` asks for (a frame, or room), the inbox closed, the
    /// task is cancelled, or `deadline` passed. The caller checks again: a wake-up is a hint.
    func wait(for wait: Wait, until deadline: ContinuousClock.Instant?) async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let timer = deadline.map { deadline in
            Task { [self] in
                try? await Task.sleep(until: deadline)
                wake(id)
            }
        }
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Checked under the lock that `wake` takes: a timer or cancellation that came
                // first is seen here, so no waiter is left behind.
                let ready = state.withLock { state in
                    let wanted =
                        switch wait {
                        case .frame: !state.frames.isEmpty
                        case .room(let size): state.fits(size, maxFrames: maxFrames, maxBytes: maxBytes)
                        case .arrival(let seen): state.arrivals > seen
                        }
                    let ready = wanted || state.closed || Task.isCancelled || deadline.map { .now >= $0 } == true
                    if !ready { state.waiters[id] = (wait, continuation) }
                    return ready
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            wake(id)
        }
    }

    private func wake(_ id: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
    }

    /// Closes the inbox; `dropping` also frees the frames it held (the connection was closed
    /// from this side and will not be read again). The first close's error is the one kept.
    func close(error: ClientError?, dropping: Bool = false) {
        let woken = state.withLock { state in
            if !state.closed { state.error = error }
            state.closed = true
            if dropping {
                state.dropping = true
                state.frames = []
                state.bytes = 0
            }
            return state.release(frames: nil)
        }
        for waiter in woken { waiter.resume() }
    }

    var isFinished: Bool { state.withLock { $0.closed && $0.frames.isEmpty } }
    var isClosed: Bool { state.withLock { $0.closed } }
    var count: Int { state.withLock { $0.frames.count } }
    var arrivals: UInt64 { state.withLock { $0.arrivals } }
    var bytes: Int { state.withLock { $0.bytes } }
    /// The most frames it ever held at once.
    var peakCount: Int { state.withLock { $0.peak } }
}
