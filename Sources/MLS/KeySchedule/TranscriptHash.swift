/// The transcript hashes of RFC 9420 §8.2, which chain every Commit into the
/// GroupContext of the epoch it creates.
public enum TranscriptHash {
    /// confirmed_transcript_hash_[n] = Hash(interim_[n-1] || ConfirmedTranscriptHashInput),
    /// where the input is the commit's wire format, FramedContent and signature.
    public static func confirmed(
        _ suite: CipherSuiteProvider,
        interimBefore: [UInt8],
        commit: AuthenticatedContent
    ) throws -> [UInt8] {
        guard commit.content.contentType == .commit else {
            throw DecodingError.invalidValue("only a Commit updates the transcript hash")
        }
        var input = TLSWriter()
        input.writeRaw(interimBefore)
        try input.write(commit.wireFormat)
        try input.write(commit.content)
        try input.writeOpaque(commit.auth.signature)
        return suite.hash(input.bytes)
    }

    /// interim_transcript_hash_[n] = Hash(confirmed_[n] || InterimTranscriptHashInput),
    /// the input being the confirmation tag as `opaque<V>`.
    public static func interim(
        _ suite: CipherSuiteProvider,
        confirmed: [UInt8],
        confirmationTag: [UInt8]
    ) throws -> [UInt8] {
        var input = TLSWriter()
        input.writeRaw(confirmed)
        try input.writeOpaque(confirmationTag)
        return suite.hash(input.bytes)
    }

    /// confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash) (RFC 9420 §6.1).
    public static func confirmationTag(
        _ suite: CipherSuiteProvider,
        confirmationKey: [UInt8],
        confirmed: [UInt8]
    ) -> [UInt8] {
        suite.mac(key: confirmationKey, data: confirmed)
    }

    /// Checks a received confirmation tag in constant time.
    public static func verifyConfirmationTag(
        _ suite: CipherSuiteProvider,
        _ tag: [UInt8],
        confirmationKey: [UInt8],
        confirmed: [UInt8]
    ) -> Bool {
        suite.verifyMAC(tag, key: confirmationKey, data: confirmed)
    }
}
