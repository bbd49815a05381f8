import Foundation
import ParleyClient
import ProcessSupport

/// Runs `parley serve` as a child process on one data directory and one port, so it can be
/// killed with SIGKILL (no shutdown code runs, as in a power cut of the process) and
/// started again on the same state.
struct ServerSupervisor: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case notListening(seconds: Int, log: String)
        case exited(status: Int32, log: String)

        var description: String {
            switch self {
            case .notListening(let seconds, let log):
                "parley serve did not accept a TLS connection within \(seconds) s; its output is in \(log)"
            case .exited(let status, let log):
                "parley serve exited by itself (wait status \(status)); its output is in \(log)"
            }
        }
    }

    let parley: String
    let dataDirectory: String
    let configFile: String
    let port: Int
    let log: String

    var url: String { "https://127.0.0.1:\(port)" }

    func spawn() throws -> ChildProcess {
        try ChildProcess.spawn(
            parley,
            ["serve", "--config", configFile, "--data", dataDirectory, "--host", "127.0.0.1", "--port", "\(port)"],
            output: .file(log, append: true)
        )
    }

    /// Waits until the server completes a TLS handshake; fails if it exits first.
    func waitUntilListening(_ child: ChildProcess, seconds: Int = 60) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let status = child.exited() { throw Failure.exited(status: status, log: log) }
            if (try? await CertificatePin.presented(host: "127.0.0.1", port: port)) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure.notListening(seconds: seconds, log: log)
    }

    /// A free loopback port, chosen once so every restart listens where the clients connect.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
