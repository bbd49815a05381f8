import ArgumentParser
import GRPCCore
import GRPCNIOTransportHTTP2

/// `parley-mls-interop --port N`: Parley's MLS library behind the MLS working
/// group's interop service (mls-implementations interop/proto/mls_client.proto),
/// for the official test-runner to drive.
@main
struct InteropServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-mls-interop",
        abstract: "Serve the MLS interop harness's MLSClient gRPC service on loopback."
    )

    @Option(help: "TCP port on 127.0.0.1.") var port = 50051
    @Option(help: "Address to listen on.") var host = "127.0.0.1"

    func run() async throws {
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext),
            services: [MLSClientService()]
        )
        try await server.serve()
    }
}
