import Foundation
import MLS

/// The history an approving device hands a newly linked one: the last messages of each of the
/// account's groups, signed by the approving device and sealed to the new device's HPKE key
/// (RFC 9180 base mode), carrying the secret of the code the user typed. The server stores the
/// sealed bytes for the new device only; it can neither read them nor forge them (it knows the new
/// device's HPKE key, so it can seal, but not the code's secret) (docs/PROTOCOL.md).
public struct HistoryBundle: Sendable, Hashable {
    /// One line of a group's history as the approving device shows it.
    public struct Line: Sendable, Hashable {
        public var seq: UInt64
        public var time: UInt64
        public var sender: String
        public var text: String
        public init(seq: UInt64, time: UInt64, sender: String, text: String) {
            self.seq = seq
            self.time = time
            self.sender = sender
            self.text = text
        }
    }

    public struct GroupHistory: Sendable, Hashable {
        public var group: String
        /// Oldest first.
        public var lines: [Line]
        public init(group: String, lines: [Line]) {
            self.group = group
            self.lines = lines
        }
    }

    /// The approving device's MLS signature key; the bundle is signed with it.
    public var senderSignatureKey: [UInt8]
    public var senderDeviceName: String
    public var recipientSignatureKey: [UInt8]
    public var recipientHPKEKey: [UInt8]
    /// The nonce of the link request this bundle answers: an old bundle replayed later is refused.
    public var linkNonce: [UInt8]
    /// The secret characters of the code the user typed on the approving device (``LinkCode/secret``,
    /// ASCII): the server never sees them, so a bundle that carries them was made where the user
    /// typed the code.
    public var linkSecret: [UInt8]
    /// Milliseconds since the Unix epoch, by the sender's clock.
    public var createdAt: UInt64
    /// The account identity key's 32-byte seed (``AccountIdentity``), so the new device can sign
    /// the account's device list too, and knows which list is its account's. Travels only sealed.
    public var accountIdentitySeed: [UInt8]
    /// The approving device's contact pins: the last signed list it accepted of each contact, under
    /// the identity key it pinned (the list carries it). The new device starts from these instead
    /// of trusting the server on first contact.
    public var contacts: [SignedDeviceList]
    public var groups: [GroupHistory]

    public init(
        sender: SignaturePublicKey,
        senderDeviceName: String,
        request: LinkRequest,
        code: LinkCode,
        createdAt: UInt64,
        accountIdentitySeed: [UInt8],
        contacts: [SignedDeviceList] = [],
        groups: [GroupHistory]
    ) {
        senderSignatureKey = sender.bytes
        self.senderDeviceName = senderDeviceName
        recipientSignatureKey = [UInt8](request.signatureKey)
        recipientHPKEKey = [UInt8](request.hpkePublicKey)
        linkNonce = [UInt8](request.nonce)
        linkSecret = Array(code.secret.utf8)
        self.createdAt = createdAt
        self.accountIdentitySeed = accountIdentitySeed
        self.contacts = contacts
        self.groups = groups
    }

    // MARK: Bounds

    /// At most this many lines per group (the sender's setting is capped here).
    public static let maxLinesPerGroup = 10_000
    public static let maxGroups = 1_000
    public static let maxContacts = 10_000
    public static let maxTextBytes = 64 << 10
    /// The sealed bundle's size bound, enforced by the server and by both devices.
    public static let maxSealedBytes = 8 << 20

    static let signatureLabel = "Parley history bundle"
    static let sealLabel = "Parley history bundle v1"
    static let suite = API.Login.suite
}

// MARK: Sealing

extension HistoryBundle {
    /// Signs the bundle with the approving device's key and seals it to the new device's HPKE key.
    /// The HPKE info names Parley and both devices, so a bundle sealed for one pair of devices
    /// never opens as another's: `struct { opaque label<V>; opaque sender_signature_key<V>;
    /// opaque recipient_signature_key<V>; }`.
    public func sealed(signingWith key: SignaturePrivateKey) throws -> [UInt8] {
        let content = try encoded()
        let signature = try Self.suite.signWithLabel(key, label: Self.signatureLabel, content: content)
        var signed = TLSWriter(reservingCapacity: content.count + 80)
        signed.writeRaw(content)
        try signed.writeOpaque(signature)
        let ciphertext = try Self.suite.hpkeSeal(
            publicKey: HPKEPublicKey(recipientHPKEKey),
            info: try Self.info(sender: senderSignatureKey, recipient: recipientSignatureKey),
            aad: [],
            plaintext: signed.bytes
        )
        var envelope = TLSWriter()
        try envelope.writeOpaque(senderSignatureKey)
        try envelope.write(ciphertext)
        guard envelope.bytes.count <= Self.maxSealedBytes else { throw LinkError.bundleTooLarge }
        return envelope.bytes
    }

    /// Opens a sealed bundle with this device's keys and its own link request's nonce and code.
    /// Checks, in order: size, envelope, HPKE open under info naming the claimed sender and this
    /// device, the code's secret (constant time; ``LinkError/linkSecretMismatch``: the caller ends
    /// the link), the signature by the claimed sender, the recipient keys and nonce. The caller must
    /// still check the identity and that the sender is one of the account's own devices.
    public static func open(
        _ sealed: [UInt8],
        recipient: SignaturePublicKey,
        hpkeKey: HPKEKeyPair,
        linkNonce: [UInt8],
        code: LinkCode
    ) throws(LinkError) -> HistoryBundle {
        guard sealed.count <= maxSealedBytes else { throw .bundleTooLarge }
        let (sender, ciphertext) = try envelope(sealed)
        let plaintext: [UInt8]
        do {
            plaintext = try suite.hpkeOpen(
                privateKey: hpkeKey.privateKey,
                info: try info(sender: sender, recipient: recipient.bytes),
                aad: [],
                ciphertext: ciphertext
            )
        } catch {
            throw .bundleNotForThisDevice
        }
        let (bundle, content, signature) = try decodeSigned(plaintext)
        guard code.secretMatches(bundle.linkSecret) else { throw .linkSecretMismatch }
        guard bundle.senderSignatureKey == sender,
            (try? suite.verifyWithLabel(
                SignaturePublicKey(sender),
                label: signatureLabel,
                content: content,
                signature: signature
            )) == true
        else { throw .bundleSignatureInvalid }
        guard bundle.recipientSignatureKey == recipient.bytes, bundle.recipientHPKEKey == hpkeKey.publicKey.bytes,
            bundle.linkNonce == linkNonce
        else { throw .bundleForAnotherRequest }
        return bundle
    }

    private static func envelope(_ sealed: [UInt8]) throws(LinkError) -> ([UInt8], HPKECiphertext) {
        do {
            var reader = TLSReader(sealed)
            let sender = try reader.readOpaque()
            let ciphertext = try reader.read(HPKECiphertext.self)
            try reader.finish()
            return (sender, ciphertext)
        } catch {
            throw .malformedBundle
        }
    }

    private static func decodeSigned(
        _ plaintext: [UInt8]
    ) throws(LinkError) -> (HistoryBundle, content: [UInt8], signature: [UInt8]) {
        do {
            var reader = TLSReader(plaintext)
            let bundle = try HistoryBundle(from: &reader)
            let contentLength = plaintext.count - reader.remaining
            let signature = try reader.readOpaque()
            try reader.finish()
            return (bundle, Array(plaintext[..<contentLength]), signature)
        } catch let error as LinkError {
            throw error
        } catch {
            throw .malformedBundle
        }
    }

    static func info(sender: [UInt8], recipient: [UInt8]) throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.writeOpaque(Array(sealLabel.utf8))
        try writer.writeOpaque(sender)
        try writer.writeOpaque(recipient)
        return writer.bytes
    }
}

// MARK: Codec

extension HistoryBundle {
    /// TLS presentation language, version 3:
    /// ```
    /// struct { uint64 seq; uint64 time; opaque sender<V>; opaque text<V>; } HistoryLine;
    /// struct { opaque group<V>; HistoryLine lines<V>; } GroupHistory;
    /// struct {
    ///     uint16 version = 3;
    ///     opaque sender_signature_key<V>; opaque sender_device_name<V>;
    ///     opaque recipient_signature_key<V>; opaque recipient_hpke_key<V>;
    ///     opaque link_nonce<V>; opaque link_secret<V>; uint64 created_at;
    ///     opaque account_identity_seed<V>;   // 32 bytes
    ///     opaque contact_lists<V><V>;        // ParleySignedDeviceList each, one per contact
    ///     GroupHistory groups<V>;
    /// } HistoryBundle;
    /// ```
    func encoded() throws -> [UInt8] {
        var writer = TLSWriter()
        writer.write(Self.version)
        try writer.writeOpaque(senderSignatureKey)
        try writer.writeOpaque(Array(senderDeviceName.utf8))
        try writer.writeOpaque(recipientSignatureKey)
        try writer.writeOpaque(recipientHPKEKey)
        try writer.writeOpaque(linkNonce)
        try writer.writeOpaque(linkSecret)
        writer.write(createdAt)
        try writer.writeOpaque(accountIdentitySeed)
        try writer.writeVector { lists in
            for contact in contacts { try lists.writeOpaque(try contact.encoded()) }
        }
        try writer.writeVector { groups in
            for group in self.groups {
                try groups.writeOpaque(Array(group.group.utf8))
                try groups.writeVector { lines in
                    for line in group.lines {
                        lines.write(line.seq)
                        lines.write(line.time)
                        try lines.writeOpaque(Array(line.sender.utf8))
                        try lines.writeOpaque(Array(line.text.utf8))
                    }
                }
            }
        }
        return writer.bytes
    }

    /// 2: the link secret, and the identity seed no longer optional (a bundle without one is refused);
    /// 3: the contact pins.
    static let version: UInt16 = 3

    /// Strict: the version must be 3, strings valid UTF-8, and every bound holds; the element
    /// counts are never read from the input, so nothing is allocated from an untrusted number.
    init(from reader: inout TLSReader) throws {
        guard try reader.read(UInt16.self) == Self.version else { throw LinkError.malformedBundle }
        senderSignatureKey = try reader.readOpaque()
        senderDeviceName = try Self.string(reader.readOpaque())
        guard LinkRequest.isValidDeviceName(senderDeviceName) else { throw LinkError.malformedBundle }
        recipientSignatureKey = try reader.readOpaque()
        recipientHPKEKey = try reader.readOpaque()
        linkNonce = try reader.readOpaque()
        linkSecret = try reader.readOpaque()
        createdAt = try reader.read(UInt64.self)
        accountIdentitySeed = try reader.readOpaque()
        guard accountIdentitySeed.count == AccountIdentity.seedBytes else { throw LinkError.malformedBundle }
        contacts = try reader.readVector { try SignedDeviceList(encoded: try $0.readOpaque()) }
        guard contacts.count <= Self.maxContacts else { throw LinkError.bundleTooLarge }
        guard Set(contacts.map(\.list.user)).count == contacts.count else { throw LinkError.malformedBundle }
        groups = try reader.readVector { reader in
            let group = try Self.string(reader.readOpaque())
            let lines = try reader.readVector(of: Self.line)
            guard lines.count <= Self.maxLinesPerGroup else { throw LinkError.bundleTooLarge }
            return GroupHistory(group: group, lines: lines)
        }
        guard groups.count <= Self.maxGroups else { throw LinkError.bundleTooLarge }
        guard Set(groups.map(\.group)).count == groups.count else { throw LinkError.malformedBundle }
    }

    private static func line(_ reader: inout TLSReader) throws -> Line {
        let seq = try reader.read(UInt64.self)
        let time = try reader.read(UInt64.self)
        let sender = try string(reader.readOpaque())
        let text = try reader.readOpaque()
        guard text.count <= maxTextBytes else { throw LinkError.bundleTooLarge }
        return Line(seq: seq, time: time, sender: sender, text: try string(text))
    }

    private static func string(_ bytes: [UInt8]) throws -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else { throw LinkError.malformedBundle }
        return string
    }
}
