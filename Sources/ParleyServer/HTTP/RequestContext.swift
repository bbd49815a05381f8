import Hummingbird
import NIOCore

/// Per-request context: the peer address (for rate limits), the body limit, and the device
/// once ``DeviceAuthenticator`` found it (routes that need it take an ``AuthenticatedContext``).
struct ParleyRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    let maxBody: Int
    var device: DeviceRecord?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        maxBody = 1 << 20
    }

    var maxUploadSize: Int { maxBody }

    /// The key rate limits count a client under: its IPv4 address, or the /64 of its IPv6
    /// address (one subscriber typically holds a whole /64, so counting single IPv6
    /// addresses would hand each attacker 2^64 fresh budgets). IPv4-mapped IPv6 is IPv4.
    var address: String { remoteAddress.map(ClientAddress.key) ?? "unknown" }

    /// Whether the peer is this machine (127.0.0.0/8 or ::1).
    var isLoopback: Bool { remoteAddress.map(ClientAddress.isLoopback) ?? false }
}

enum ClientAddress {
    static func key(_ address: SocketAddress) -> String {
        switch address {
        case .v4: return address.ipAddress ?? "unknown"
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                return bytes[12...].map(String.init).joined(separator: ".")
            }
            let groups = stride(from: 0, to: 8, by: 2).map { index in
                String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16)
            }
            return groups.joined(separator: ":") + "::/64"
        case .unixDomainSocket: return "local"
        }
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4: return address.ipAddress?.hasPrefix("127.") ?? false
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff { return bytes[12] == 127 }
            return bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
        case .unixDomainSocket: return true
        }
    }
}
