import Foundation
import Synchronization

/// A child process started with posix_spawn and reaped with waitpid. Foundation's `Process`
/// misses some children's exits on Linux (a tmux client, a killed server), and the crash
/// benchmark and tests must know for certain that a process is gone before they go on.
/// Used by `parley-bench` and the test suites that run the built `parley`.
public final class ChildProcess: Sendable {
    /// Where the child's standard output (and, unless given apart, its standard error) goes.
    public enum Output: Sendable {
        case discard
        /// A file, created owner-only if missing; appended to, or truncated first.
        case file(String, append: Bool)
    }

    public struct SpawnFailure: Error, CustomStringConvertible {
        public let executable: String
        public let code: Int32
        public var description: String { "could not start \(executable) (posix_spawn error \(code))" }
    }

    public let pid: pid_t
    /// The wait status once reaped: after that the pid may belong to another process, so it
    /// is never signalled again.
    private let reaped = Mutex<Int32?>(nil)

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `executable` (a path; a bare name is looked up in PATH) with `arguments`, its
    /// standard input /dev/null. `environment` replaces nothing: its entries are added to this
    /// process's environment, overriding same-named ones.
    public static func spawn(
        _ executable: String,
        _ arguments: [String],
        output: Output,
        errors: Output? = nil,
        environment extra: [String: String] = [:]
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        open(output, as: 1, in: &actions)
        if let errors { open(errors, as: 2, in: &actions) } else { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        var argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(extra) { _, new in new }
        var envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let code =
            executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, nil, &argv, &envp)
            : posix_spawnp(&pid, executable, &actions, nil, &argv, &envp)
        guard code == 0 else { throw SpawnFailure(executable: executable, code: code) }
        return ChildProcess(pid: pid)
    }

    private static func open(_ output: Output, as descriptor: Int32, in actions: inout posix_spawn_file_actions_t) {
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
        case .file(let path, let append):
            let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
            posix_spawn_file_actions_addopen(&actions, descriptor, path, flags, 0o600)
        }
    }

    /// Runs `executable` to its end and returns what it wrote (output and errors together), for
    /// short commands in synchronous code; the calling thread blocks in waitpid meanwhile.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) throws -> String {
        let path = NSTemporaryDirectory() + "parley-child-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        let child = try spawn(executable, arguments, output: .file(path, append: false), environment: environment)
        child.waitBlocking()
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Sends `signal` (unless the process was reaped already) and waits until it has exited;
    /// returns its wait status.
    @discardableResult
    public func stop(with signal: Int32) async -> Int32 {
        if exited() == nil { kill(pid, signal) }
        return await wait()
    }

    /// Waits for the process to exit, polling so no thread of the pool blocks in waitpid.
    @discardableResult
    public func wait() async -> Int32 {
        while true {
            if let status = exited() { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits at most `limit` for the process to exit: its wait status, or nil if it still runs.
    public func wait(atMost limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let status = exited() { return status }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return exited()
    }

    /// Blocks the calling thread until the process exits; returns its wait status.
    @discardableResult
    public func waitBlocking() -> Int32 {
        // Without WNOHANG waitpid returns only once the child has exited (or is not ours).
        reap(options: 0) ?? 0
    }

    /// The wait status if the process has exited (reaping it), nil while it runs.
    public func exited() -> Int32? { reap(options: WNOHANG) }

    private func reap(options: Int32) -> Int32? {
        reaped.withLock { reaped in
            if let reaped { return reaped }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, options) } while result == -1 && errno == EINTR
            // -1 otherwise (ECHILD): not our child any more; treat it as gone.
            guard result == pid || result == -1 else { return nil }
            reaped = status
            return status
        }
    }
}
