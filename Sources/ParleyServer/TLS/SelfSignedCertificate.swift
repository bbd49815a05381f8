import Crypto
import Foundation
import NIOSSL
import ParleyProtocol
import SwiftASN1
import X509

/// The server's TLS identity: configured PEM files, or a self-signed
/// certificate created in the data directory on first run. Clients pin its
/// SHA-256 fingerprint on first use.
struct ServerIdentity: Sendable {
    let certificateDER: [UInt8]
    let privateKeyPEM: String

    /// SHA-256 of the DER certificate, as colon-separated hex.
    var fingerprint: String { Self.fingerprint(of: certificateDER) }

    static func fingerprint(of der: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: der), uppercase: true, separator: ":")
    }

    /// TLS 1.3 only.
    func tlsConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificateDER, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv13
        return configuration
    }

    /// Loads the configured files, or the generated pair in `directory`, creating it if absent.
    static func load(configuration: ServerConfiguration) throws -> (identity: ServerIdentity, created: Bool) {
        if let certificatePath = configuration.tlsCertificate, let keyPath = configuration.tlsPrivateKey {
            let certificate = try NIOSSLCertificate.fromPEMFile(certificatePath)
            guard let first = certificate.first else {
                throw ServerError.configuration("no certificate in \(certificatePath)")
            }
            return (
                ServerIdentity(
                    certificateDER: try first.toDERBytes(),
                    privateKeyPEM: try String(contentsOfFile: keyPath, encoding: .utf8)
                ), false
            )
        }
        let directory = configuration.dataDirectory
        let certificatePath = (directory as NSString).appendingPathComponent("tls-certificate.pem")
        let keyPath = (directory as NSString).appendingPathComponent("tls-private-key.pem")
        if FileManager.default.fileExists(atPath: certificatePath), FileManager.default.fileExists(atPath: keyPath) {
            let certificate = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return (
                ServerIdentity(
                    certificateDER: serializer.serializedBytes,
                    privateKeyPEM: try String(contentsOfFile: keyPath, encoding: .utf8)
                ), false
            )
        }
        let (identity, certificatePEM) = try generate(host: configuration.host)
        try certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        // The key is written owner-only from the start, never chmod-ed after the fact.
        let written = FileManager.default.createFile(
            atPath: keyPath,
            contents: Data(identity.privateKeyPEM.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        guard written else { throw ServerError.configuration("cannot write the TLS key to \(keyPath)") }
        return (identity, true)
    }

    /// A P-256 self-signed certificate for `localhost`, `127.0.0.1` and the configured host.
    static func generate(host: String) throws -> (ServerIdentity, pem: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("Parley server") }
        let now = Date()
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        if host != "localhost", host != "127.0.0.1" {
            let octets = host.split(separator: ".").compactMap { UInt8($0) }
            names.append(
                octets.count == 4 ? .ipAddress(ASN1OctetString(contentBytes: ArraySlice(octets))) : .dnsName(host)
            )
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(key)
        )
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (
            ServerIdentity(certificateDER: serializer.serializedBytes, privateKeyPEM: key.pemRepresentation),
            try certificate.serializeAsPEM().pemString
        )
    }
}

public enum ServerError: Error, CustomStringConvertible {
    case configuration(String)
    public var description: String {
        switch self {
        case .configuration(let message): "configuration error: \(message)"
        }
    }
}
