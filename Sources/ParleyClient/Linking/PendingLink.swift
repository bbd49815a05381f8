import MLS
import ParleyProtocol

/// A link in progress on the new device: the request it posted and the HPKE key pair its history
/// bundle will be sealed to, and the code with its secret (never sent to the server). Kept sealed in
/// the home (setting `link`) until the bundle arrives.
struct PendingLink: Sendable {
    var request: LinkRequest
    var hpkeKeys: HPKEKeyPair
    var code: LinkCode

    /// `struct { opaque hpke_private<V>; opaque lookup_id<V>; opaque device_name<V>; opaque nonce<V>;
    /// opaque username<V>; opaque secret<V>; }`: the keys are derived again from the home when it is
    /// read back.
    func encoded() throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(hpkeKeys.privateKey.bytes)
        try writer.writeOpaque(Array(code.lookupID.utf8))
        try writer.writeOpaque(Array(request.deviceName.utf8))
        try writer.writeOpaque(request.nonce)
        try writer.writeOpaque(Array(request.username.utf8))
        try writer.writeOpaque(Array(code.secret.utf8))
        return writer.bytes
    }

    init(request: LinkRequest, hpkeKeys: HPKEKeyPair, code: LinkCode) {
        self.request = request
        self.hpkeKeys = hpkeKeys
        self.code = code
    }

    init(encoded bytes: [UInt8], signatureKey: SignaturePublicKey, suite: CipherSuiteProvider) throws {
        var reader = TLSReader(bytes)
        let privateKey = HPKEPrivateKey(try reader.readOpaque())
        let lookupID = String(decoding: try reader.readOpaque(), as: UTF8.self)
        let deviceName = String(decoding: try reader.readOpaque(), as: UTF8.self)
        let nonce = try reader.readOpaque()
        let username = String(decoding: try reader.readOpaque(), as: UTF8.self)
        let secret = String(decoding: try reader.readOpaque(), as: UTF8.self)
        try reader.finish()
        hpkeKeys = HPKEKeyPair(privateKey: privateKey, publicKey: try suite.hpkePublicKey(for: privateKey))
        request = LinkRequest(
            username: username,
            deviceName: deviceName,
            signatureKey: .init(signatureKey.bytes),
            hpkePublicKey: .init(hpkeKeys.publicKey.bytes),
            nonce: .init(nonce)
        )
        code = try LinkCode(lookupID: lookupID, request: request, secret: secret)
    }
}
