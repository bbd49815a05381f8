import Foundation
import ProcessSupport
import Synchronization

/// A TCP load balancer in front of the server nodes, as an operator runs one (HAProxy, a cloud
/// TCP balancer): it passes bytes through without looking at them (TLS ends at the node), and
/// connects each new connection to the first of its backends that accepts one. So when a node
/// dies, its clients' next connections land on another node, which must present the same
/// certificate for the clients' pins to hold.
final class TCPBalancer: Sendable {
    let port: Int
    private let listener: Int32
    private let backends: [Int]
    /// Connections made to each backend port.
    private let connections = Mutex<[Int: Int]>([:])

    init(backends: [Int]) throws {
        self.backends = backends
        (listener, port) = try Self.listen()
        let listener = listener
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client >= 0 {
                    Thread.detachNewThread { self.serve(client) }
                } else if errno != EINTR {
                    return
                }
            }
        }
    }

    func connections(to backend: Int) -> Int { connections.withLock { $0[backend] ?? 0 } }

    /// Stops accepting; connections in flight end when their peers close them.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve(_ client: Int32) {
        for backend in backends {
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard server >= 0 else { break }
            var address = Self.loopback(port: backend)
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                close(server)
                continue
            }
            connections.withLock { $0[backend, default: 0] += 1 }
            Self.splice(client, server)
            return
        }
        close(client)
    }

    /// Copies bytes both ways until either side ends, then closes both (the last copier closes).
    private static func splice(_ one: Int32, _ other: Int32) {
        let finished = Mutex(0)
        let copy = { @Sendable (from: Int32, to: Int32) in
            var buffer = [UInt8](repeating: 0, count: 16 << 10)
            copying: while true {
                let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                var sent = 0
                while sent < count {
                    let written = buffer.withUnsafeBytes {
                        send(to, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL))
                    }
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { break copying }
                    sent += written
                }
            }
            shutdown(one, Int32(SHUT_RDWR))
            shutdown(other, Int32(SHUT_RDWR))
            let last = finished.withLock { count in
                count += 1
                return count == 2
            }
            if last {
                close(one)
                close(other)
            }
        }
        Thread.detachNewThread { copy(one, other) }
        copy(other, one)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }

    private static func listen() throws -> (Int32, Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && Glibc.listen(descriptor, 64) == 0
                    && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// One `parley serve` child process and the port it listens on.
struct NodeProcess: Sendable {
    let process: ChildProcess
    let port: Int

    static let executable = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/parley").path

    /// Starts `parley serve` with `config` on `port`, its output appended to `log`.
    static func spawn(config: String, data: String, port: Int, log: String) throws -> NodeProcess {
        let arguments = ["serve", "--config", config, "--data", data, "--host", "127.0.0.1", "--port", "\(port)"]
        let process = try ChildProcess.spawn(executable, arguments, output: .file(log, append: true))
        return NodeProcess(process: process, port: port)
    }

    @discardableResult
    func stop(with signal: Int32) async -> Int32 { await process.stop(with: signal) }

    func exited() -> Int32? { process.exited() }
}

/// A free loopback port for a node (bound, read and released; the node binds it next).
func freeLoopbackPort() throws -> Int {
    let balancer = try TCPBalancer(backends: [])
    defer { balancer.stop() }
    return balancer.port
}
