import Foundation
import MLS
import ParleyProtocol

/// The JSON both sides parse from each other: WebSocket frames through
/// `WireJSON`, HTTP bodies through Foundation's `JSONDecoder` (Hummingbird's
/// default request decoder, and the client's response decoder).
enum JSONChecks {
    /// The server's decoding of a device's frame.
    static func clientFrame(_ bytes: [UInt8]) {
        agreesWithJSONDecoder(ClientFrame.self, Data(bytes))
        roundTripEquatable(ClientFrame.self, Data(bytes))
    }

    /// The client's decoding of the server's frame.
    static func serverFrame(_ bytes: [UInt8]) {
        agreesWithJSONDecoder(ServerFrame.self, Data(bytes))
        roundTripEquatable(ServerFrame.self, Data(bytes))
    }

    /// WireJSON reads `send` and `message` frames of its own exact form directly: whatever the
    /// bytes, it must decode the same value as JSONDecoder alone, or refuse them as it does.
    static func agreesWithJSONDecoder<T: Codable & Equatable>(_: T.Type, _ data: Data) {
        let direct = try? WireJSON.decode(T.self, from: data)
        let coder = try? JSONDecoder().decode(T.self, from: data)
        Invariant.require(direct == coder, "WireJSON and JSONDecoder read a \(T.self) differently")
    }

    /// First byte picks the body type; the rest is its JSON.
    static func httpBody(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Data(bytes.dropFirst())
        let decoders = httpBodyDecoders
        decoders[Int(selector) % decoders.count](body)
    }

    /// Request bodies the server decodes, then response bodies the client decodes,
    /// in the order of the selector byte the seeds use.
    static let httpBodyDecoders: [@Sendable (Data) -> Void] = [
        { roundTripStable(API.Register.self, $0) },
        { data in
            roundTripStable(API.Login.self, data)
            if let login = try? WireJSON.decode(API.Login.self, from: data) { verifyProof(login) }
        },
        { roundTripStable(API.UploadKeyPackages.self, $0) },
        { roundTripStable(API.CreateGroup.self, $0) },
        { roundTripStable(API.Session.self, $0) },
        { roundTripStable(API.KeyPackageStock.self, $0) },
        { roundTripStable(API.ClaimedKeyPackages.self, $0) },
        { roundTripStable(API.User.self, $0) },
        { roundTripStable(API.Group.self, $0) },
        { roundTripStable(API.Groups.self, $0) },
        { roundTripStable(API.RatchetTree.self, $0) },
        { roundTripStable(API.ErrorResponse.self, $0) },
        { roundTripStable(API.LoginChallengeRequest.self, $0) },
        { roundTripStable(API.LoginChallenge.self, $0) },
    ]

    /// The server's check of a login's proof of possession (AccountService):
    /// any key and signature bytes end in a typed answer, never a trap.
    static func verifyProof(_ login: API.Login) {
        let key = [UInt8](login.signatureKey)
        guard !key.isEmpty, key.count <= 256, login.signature.count <= 512 else { return }
        _ = Invariant.attempt("verifying a login proof") {
            let content = try API.Login.proofContent(
                username: login.username,
                challenge: [UInt8](login.challenge),
                signatureKey: key,
                serverCertificate: [0x30, 0x03, 0x02, 0x01, 0x01]
            )
            return try API.Login.suite.verifyWithLabel(
                SignaturePublicKey(key),
                label: API.Login.proofLabel,
                content: content,
                signature: [UInt8](login.signature)
            )
        }
    }

    /// A decoded value re-encodes and decodes to an equal value.
    static func roundTripEquatable<T: Codable & Equatable>(_: T.Type, _ data: Data) {
        guard let value = try? WireJSON.decode(T.self, from: data) else { return }
        let name = String(describing: T.self)
        do {
            let again = try WireJSON.decode(T.self, from: WireJSON.encode(value))
            Invariant.require(again == value, "\(name) decoded from its own JSON differs")
        } catch {
            fatalError("invariant broken: a decoded \(name) does not survive its own JSON: \(error)")
        }
    }

    /// For types without `Equatable`: the canonical (sorted-key) JSON of a
    /// decoded value decodes to a value with the same canonical JSON.
    static func roundTripStable<T: Codable>(_: T.Type, _ data: Data) {
        guard let value = try? WireJSON.decode(T.self, from: data) else { return }
        let name = String(describing: T.self)
        do {
            let first = try WireJSON.encode(value)
            let second = try WireJSON.encode(WireJSON.decode(T.self, from: first))
            Invariant.require(first == second, "\(name) changes when its own JSON is decoded again")
        } catch {
            fatalError("invariant broken: a decoded \(name) does not survive its own JSON: \(error)")
        }
    }
}
