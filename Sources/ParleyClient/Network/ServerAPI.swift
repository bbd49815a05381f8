import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import ParleyProtocol

/// The HTTP half of the protocol (docs/PROTOCOL.md), over a pinned TLS connection.
package final class ServerAPI: LoginTransport {
    let baseURL: String
    let host: String
    let port: Int
    let certificate: [UInt8]
    private let client: HTTPClient

    package init(url: String, certificate: [UInt8]) throws {
        guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host
        else {
            throw ClientError.badServerURL
        }
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.host = host
        port = components.port ?? 443
        self.certificate = certificate
        var configuration = HTTPClient.Configuration(tlsConfiguration: try CertificatePin.pinned(certificate))
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    package func shutdown() async { try? await client.shutdown() }

    /// A client dropped without `close()` (e.g. after a failed login) still
    /// releases its connections instead of tripping AsyncHTTPClient's check.
    deinit {
        client.shutdown(queue: .global()) { _ in }
    }

    package static func hostAndPort(_ url: String) throws -> (String, Int) {
        guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host
        else {
            throw ClientError.badServerURL
        }
        return (host, components.port ?? 443)
    }

    @discardableResult
    package func request(
        _ method: HTTPMethod,
        _ path: String,
        token: String? = nil,
        body: Data? = nil
    ) async throws -> Data {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
        } catch let error as NIOSSLError {
            throw ClientError.unreachable("TLS failed: \(error)")
        } catch {
            throw ClientError.unreachable("\(error)")
        }
        let data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw ClientError.server(
                (try? WireJSON.decode(API.ErrorResponse.self, from: data).error)
                    ?? ErrorBody(.internalError, "HTTP \(response.status.code)")
            )
        }
        return data
    }

    package func postJSON(_ path: String, _ body: Data) async throws -> Data {
        try await request(.POST, path, body: body)
    }

    package func call<T: Decodable>(
        _ method: HTTPMethod,
        _ path: String,
        token: String? = nil,
        json: (some Encodable)? = Optional<Data>.none,
        as _: T.Type
    ) async throws -> T {
        try WireJSON.decode(
            T.self,
            from: try await request(method, path, token: token, body: json.map { try WireJSON.encode($0) })
        )
    }
}
