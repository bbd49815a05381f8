import Foundation
import Synchronization

/// A child process started with posix_spawn and reaped with waitpid: Foundation's `Process`
/// misses some children's exits on Linux (see ChatTerminalTests), and a crash test must
/// know for certain that the old server is gone before it starts the next one.
final class ChildProcess: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case spawn(path: String, code: Int32)

        var description: String {
            switch self {
            case .spawn(let path, let code): "could not start \(path) (posix_spawn error \(code))"
            }
        }
    }

    let pid: pid_t
    /// The wait status once reaped: after that the pid may belong to another process, so it
    /// is never signalled again.
    private let reaped = Mutex<Int32?>(nil)

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `path` with `arguments`; its standard output and error are appended to `log`.
    static func spawn(_ path: String, _ arguments: [String], log: String) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = [path] + arguments
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, nil, &cArguments, environ)
        guard code == 0 else { throw Failure.spawn(path: path, code: code) }
        return ChildProcess(pid: pid)
    }

    /// Sends `signal` (unless the process was reaped already) and waits until it has exited;
    /// returns its wait status.
    @discardableResult
    func stop(with signal: Int32) async -> Int32 {
        if exited() == nil { kill(pid, signal) }
        return await wait()
    }

    /// Waits for the process to exit, polling so no thread of the pool blocks in waitpid.
    func wait() async -> Int32 {
        while true {
            if let status = exited() { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The wait status if the process has exited (reaping it), nil while it runs.
    func exited() -> Int32? {
        reaped.withLock { reaped in
            if let reaped { return reaped }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, WNOHANG) } while result == -1 && errno == EINTR
            // -1 otherwise (ECHILD): not our child any more; treat it as gone.
            guard result == pid || result == -1 else { return nil }
            reaped = status
            return status
        }
    }
}
