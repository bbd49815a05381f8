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
/// one of the few threads Swift's tasks share. Reports a quiet moment every
/// 50 ms, which resolves a lone ESC and notices a resize.
final class InputReader: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    func start(_ report: @escaping @Sendable (Terminal.Input) -> Void) {
        let thread = Thread { [self] in
            while !lock.withLock({ stopped }) {
                let input = Terminal.read(milliseconds: 50)
                report(input)
                if case .closed = input { return }
            }
        }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
    }
}
