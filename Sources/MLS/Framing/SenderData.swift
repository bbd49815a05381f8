/// The key and nonce that protect a PrivateMessage's `SenderData`
/// (RFC 9420 §6.3.2): derived from `sender_data_secret` and the first Nh
/// bytes of the content ciphertext, so each message gets its own.
public struct SenderDataKey: Hashable, Sendable, CustomStringConvertible {
    public var key: [UInt8]
    public var nonce: [UInt8]

    public init(_ suite: CipherSuiteProvider, senderDataSecret: [UInt8], ciphertext: [UInt8]) throws {
        let sample = Array(ciphertext.prefix(suite.hashLength))
        key = try suite.expandWithLabel(senderDataSecret, label: "key", context: sample, length: suite.aeadKeyLength)
        nonce = try suite.expandWithLabel(
            senderDataSecret,
            label: "nonce",
            context: sample,
            length: suite.aeadNonceLength
        )
    }

    public var description: String { "SenderDataKey(redacted)" }
}
