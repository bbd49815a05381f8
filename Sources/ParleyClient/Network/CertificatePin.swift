import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import ParleyProtocol

/// Trust on first use, like ssh's `accept-new`: the first connection records
/// the server's certificate; later connections trust exactly that certificate,
/// and a different one is a hard error.
package enum CertificatePin {
    /// SHA-256 over the DER certificate, as colon-separated hex (as `parley serve` prints it).
    package static func fingerprint(_ der: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: der), uppercase: true, separator: ":")
    }

    /// A client TLS configuration that trusts only `der` (TLS 1.3).
    package static func pinned(_ der: [UInt8]) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try NIOSSLCertificate(bytes: der, format: .der)])
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    /// The certificate the server presents, fetched without trusting it.
    package static func presented(host: String, port: Int) async throws -> [UInt8] {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.minimumTLSVersion = .tlsv13
        let context = try NIOSSLContext(configuration: configuration)
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: [UInt8].self)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: nil)
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(tls: tls, promise: promise))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw ClientError.unreachable("\(error)")
        }
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    private final class HandshakeWatcher: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let tls: NIOSSLClientHandler
        let promise: EventLoopPromise<[UInt8]>
        /// The promise is completed once; later events are ignored.
        private var completed = false

        init(tls: NIOSSLClientHandler, promise: EventLoopPromise<[UInt8]>) {
            self.tls = tls
            self.promise = promise
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted = event {
                if let certificate = tls.peerCertificate, let der = try? certificate.toDERBytes() {
                    complete(.success(der))
                } else {
                    complete(.failure(ClientError.noServerCertificate))
                }
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            complete(.failure(error))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            complete(.failure(ClientError.unreachable("the connection closed during the TLS handshake")))
        }

        private func complete(_ result: Result<[UInt8], Error>) {
            guard !completed else { return }
            completed = true
            promise.completeWith(result)
        }
    }
}
