import Foundation
import ParleyClient

/// The full-screen chat: one loop that owns the screen and reacts to events —
/// input bytes from a reader thread, reports from the network worker — and
/// never awaits the network itself, so typing never freezes.
public enum ChatApp {
    enum Event: Sendable {
        case input(Terminal.Input)
        case worker(WorkerEvent)
    }

    /// Runs the chat for an unlocked client until the user quits.
    public static func run(client: ParleyClient, username: String, group: String?) async {
        let terminal = Terminal()
        terminal.enter()
        defer { terminal.leave() }
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let reader = InputReader()
        reader.start { sink.yield(.input($0)) }
        let requests = RequestQueue()
        let worker = ChatWorker(client: client, requests: requests) { sink.yield(.worker($0)) }
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await worker.run(viewing: group) }
            var loop = Loop(terminal: terminal, state: ChatState(username: username, group: group))
            loop.draw()
            for await event in events {
                requests.push(loop.handle(event))
                guard loop.state.running else { break }
                loop.draw()
            }
            reader.stop()
            // The terminal is given back at once; a command still running may take a while.
            terminal.leave()
            if !loop.state.screen.working.isEmpty {
                print("Waiting for " + loop.state.screen.working.joined(separator: ", ") + " to finish…")
            }
            tasks.cancelAll()
        }
        sink.finish()
        await client.close()
    }

    /// The screen's side: state, key decoder, and the last frame drawn.
    struct Loop {
        let terminal: Terminal
        var state: ChatState
        var decoder = KeyDecoder()
        var drawn: (frame: ScreenLayout, rows: Int, columns: Int)?
        /// Whether anything happened since the last draw.
        var dirty = true

        mutating func handle(_ event: Event) -> [WorkerRequest] {
            let size = terminal.size
            var keys: [KeyEvent] = []
            switch event {
            case .input(.bytes(let bytes)): keys = decoder.feed(bytes)
            case .input(.quiet): keys = decoder.flush()
            case .input(.closed): return state.handle(.control("c"), rows: size.rows, columns: size.columns)
            case .worker(let report):
                dirty = true
                return state.apply(report, columns: size.columns)
            }
            var requests: [WorkerRequest] = []
            for key in keys where state.running {
                dirty = true
                requests += state.handle(key, rows: size.rows, columns: size.columns)
            }
            return requests
        }

        /// Draws the rows that changed since the last frame (all after a resize or Ctrl+L).
        mutating func draw() {
            let size = terminal.size
            let resized = drawn.map { $0.rows != size.rows || $0.columns != size.columns } ?? true
            guard dirty || resized || state.needsRepaint else { return }
            dirty = false
            var previous = drawn?.frame
            if resized || state.needsRepaint {
                previous = nil
                state.needsRepaint = false
                terminal.write("\u{1B}[2J")
            }
            let frame = state.screen.layout(rows: size.rows, columns: size.columns)
            if frame != previous { terminal.write(frame.ansi(changedFrom: previous)) }
            drawn = (frame, size.rows, size.columns)
        }
    }
}

/// Reads the terminal on a thread of its own, so a blocking read never holds
/// one of the few threads Swift's tasks share. It sleeps in `poll` until a key
/// arrives, the window is resized (SIGWINCH) or `stop` is called (issue 15: no
/// polling while idle); 50 ms after the last bytes it reports one quiet moment,
/// which resolves a lone ESC.
final class InputReader: @unchecked Sendable {
    /// How long after the last bytes the quiet moment comes.
    static let quietAfter: Int32 = 50
    private let input: Int32
    /// Written to wake the thread: by `stop`, and on a resize.
    private let wake: (read: Int32, write: Int32)
    private let lock = NSLock()
    private var stopped = false
    private var started = false
    private var resize: (any DispatchSourceSignal)?
    private let done = DispatchSemaphore(value: 0)

    /// Reads `input` (standard input by default; a pipe in tests).
    init(input: Int32 = STDIN_FILENO) {
        self.input = input
        var descriptors: [Int32] = [-1, -1]
        if pipe(&descriptors) != 0 { descriptors = [-1, -1] }
        wake = (descriptors[0], descriptors[1])
    }

    deinit {
        for descriptor in [wake.read, wake.write] where descriptor >= 0 { close(descriptor) }
    }

    func start(_ report: @escaping @Sendable (Terminal.Input) -> Void) {
        signal(SIGWINCH, SIG_IGN)
        let resize = DispatchSource.makeSignalSource(signal: SIGWINCH)
        resize.setEventHandler { report(.quiet) }
        resize.resume()
        lock.withLock {
            self.resize = resize
            started = true
        }
        let thread = Thread { [self] in
            defer { done.signal() }
            var pending = false
            while !lock.withLock({ stopped }) {
                let input = waitForInput(timeout: pending ? Self.quietAfter : -1)
                guard let input else { continue }
                if case .bytes = input { pending = true } else { pending = false }
                report(input)
                if case .closed = input { return }
            }
        }
        thread.start()
    }

    /// Stops the thread (it wakes at once) and waits until it has.
    func stop() {
        let (source, running) = lock.withLock {
            defer { (stopped, resize) = (true, nil) }
            return (resize, started && !stopped)
        }
        source?.cancel()
        var byte: UInt8 = 1
        if running, wake.write >= 0, write(wake.write, &byte, 1) == 1 { done.wait() }
    }

    /// Bytes, a quiet moment after `timeout` ms (-1: none), the input closed, or nil when
    /// woken by `stop`.
    private func waitForInput(timeout: Int32) -> Terminal.Input? {
        var descriptors = [
            pollfd(fd: input, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, wake.read >= 0 ? 2 : 1, timeout)
        if ready < 0 { return errno == EINTR ? nil : .closed }
        guard ready > 0 else { return .quiet }
        if descriptors[1].revents != 0 { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(input, &buffer, buffer.count)
        if count < 0, errno == EINTR || errno == EAGAIN { return nil }
        return count > 0 ? .bytes(Array(buffer[0..<count])) : .closed
    }
}
