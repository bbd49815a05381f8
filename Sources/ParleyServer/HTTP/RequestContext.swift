import Hummingbird
import NIOCore

/// Per-request context: the peer address (for rate limits) and the body limit.
struct ParleyRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    let maxBody: Int

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        maxBody = 1 << 20
    }

    var maxUploadSize: Int { maxBody }

    var address: String { remoteAddress?.ipAddress ?? "unknown" }
}
