import Foundation
import MLS
import ParleyProtocol

/// The checks every target shares. A broken invariant traps, which libFuzzer
/// records as a crash with the input that caused it.
enum Invariant {
    /// `PARLEY_FUZZ_TRACE=1` prints every step's outcome, to see what an input reaches.
    static let trace = ProcessInfo.processInfo.environment["PARLEY_FUZZ_TRACE"] == "1"

    /// Unbuffered, so the trace survives the trap it leads up to.
    static func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Traps with `message` unless `condition` holds.
    static func require(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("invariant broken: \(message())") }
    }

    /// Bad input must fail with one of the MLS module's typed errors (or the
    /// policy's `ErrorBody`, which travels inside ``MLSError/rejectedByPolicy(_:)``),
    /// never with an error the caller cannot map to a sentence.
    static func requireTyped(_ error: any Error, _ context: String) {
        switch error {
        case is DecodingError, is EncodingError, is MLSError: return
        default: fatalError("invariant broken: \(context) threw an untyped error: \(type(of: error)) \(error)")
        }
    }

    /// Runs `body`; a typed error means the input was rejected (nil), any
    /// other error traps.
    static func attempt<T>(_ context: String, _ body: () throws -> T) -> T? {
        do {
            let value = try body()
            if trace { log("\(context): ok") }
            return value
        } catch {
            if trace { log("\(context): \(error)") }
            requireTyped(error, context)
            return nil
        }
    }

    /// Decodes `bytes` strictly as `T`; if that succeeds, the value must
    /// re-encode to exactly the same bytes (the decoders are strict, so there
    /// is one encoding per value) and decode again to an equal value.
    @discardableResult
    static func roundTrip<T: TLSCodable & Equatable>(_: T.Type, _ bytes: [UInt8]) -> T? {
        let name = String(describing: T.self)
        guard let value = attempt("decoding \(name)", { try T(tlsEncoded: bytes) }) else { return nil }
        let encoded: [UInt8]
        do {
            encoded = try value.tlsEncoded()
        } catch {
            fatalError("invariant broken: a decoded \(name) does not re-encode: \(error)")
        }
        require(
            encoded == bytes,
            "\(name) re-encodes to \(encoded.count) bytes that differ from the \(bytes.count) decoded"
        )
        do {
            let again = try T(tlsEncoded: encoded)
            require(again == value, "\(name) decoded from its own encoding differs")
        } catch {
            fatalError("invariant broken: \(name) does not decode from its own encoding: \(error)")
        }
        return value
    }
}
