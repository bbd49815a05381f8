import Foundation
import Testing

@testable import MLS

/// messages.json: every structure decodes and re-encodes to the same bytes.
/// An entry passes when all seventeen of its structures round-trip.
@Suite struct MessagesVectorTests {
    struct Entry: Decodable {
        let mlsWelcome: Hex, mlsGroupInfo: Hex, mlsKeyPackage: Hex, ratchetTree: Hex, groupSecrets: Hex
        let addProposal: Hex, updateProposal: Hex, removeProposal: Hex, preSharedKeyProposal: Hex, reInitProposal: Hex
        let externalInitProposal: Hex, groupContextExtensionsProposal: Hex, commit: Hex
        let publicMessageApplication: Hex, publicMessageProposal: Hex, publicMessageCommit: Hex, privateMessage: Hex
    }

    /// Decodes `bytes` with `decode`, re-encodes with `encode` and compares.
    static func roundTrip<T>(
        _ name: String,
        _ bytes: Hex,
        decode: (inout TLSReader) throws -> T,
        encode: (T, inout TLSWriter) throws -> Void
    ) throws {
        var reader = TLSReader(bytes.bytes)
        let value = try decode(&reader)
        try reader.finish()
        var writer = TLSWriter()
        try encode(value, &writer)
        try check(writer.bytes, bytes.bytes, "\(name) re-encodes")
    }

    static func roundTrip<T: TLSCodable>(_ name: String, _ bytes: Hex, as _: T.Type) throws {
        try roundTrip(name, bytes, decode: { try T(from: &$0) }, encode: { try $0.encode(to: &$1) })
    }

    static func checks(_ e: Entry) -> [(String, () throws -> Void)] {
        func proposalBody(_ name: String, _ bytes: Hex, _ type: ProposalType) -> (String, () throws -> Void) {
            // The proposal fields hold the bare body (Add, Update, ...), so prefix the type to reuse Proposal's codec.
            (
                name,
                {
                    var prefixed = TLSWriter()
                    try prefixed.write(type)
                    prefixed.writeRaw(bytes.bytes)
                    let proposal = try Proposal(tlsEncoded: prefixed.bytes)
                    try check(try proposal.tlsEncoded(), prefixed.bytes, "\(name) re-encodes")
                }
            )
        }
        func message(_ name: String, _ bytes: Hex, _ wireFormat: WireFormat) -> (String, () throws -> Void) {
            (
                name,
                {
                    let decoded = try MLSMessage(tlsEncoded: bytes.bytes)
                    try check(decoded.wireFormat, wireFormat, "\(name) wire format")
                    try check(try decoded.tlsEncoded(), bytes.bytes, "\(name) re-encodes")
                }
            )
        }
        return [
            message("mls_welcome", e.mlsWelcome, .welcome),
            message("mls_group_info", e.mlsGroupInfo, .groupInfo),
            message("mls_key_package", e.mlsKeyPackage, .keyPackage),
            (
                "ratchet_tree",
                {
                    try roundTrip(
                        "ratchet_tree",
                        e.ratchetTree,
                        decode: { try $0.readVector(of: { try $0.readOptional(Node.self) }) },
                        encode: { nodes, writer in
                            try writer.writeVector { inner in for node in nodes { try inner.writeOptional(node) } }
                        }
                    )
                }
            ),
            ("group_secrets", { try roundTrip("group_secrets", e.groupSecrets, as: GroupSecrets.self) }),
            proposalBody("add_proposal", e.addProposal, .add),
            proposalBody("update_proposal", e.updateProposal, .update),
            proposalBody("remove_proposal", e.removeProposal, .remove),
            proposalBody("pre_shared_key_proposal", e.preSharedKeyProposal, .psk),
            proposalBody("re_init_proposal", e.reInitProposal, .reinit),
            proposalBody("external_init_proposal", e.externalInitProposal, .externalInit),
            proposalBody(
                "group_context_extensions_proposal",
                e.groupContextExtensionsProposal,
                .groupContextExtensions
            ),
            ("commit", { try roundTrip("commit", e.commit, as: Commit.self) }),
            message("public_message_application", e.publicMessageApplication, .publicMessage),
            message("public_message_proposal", e.publicMessageProposal, .publicMessage),
            message("public_message_commit", e.publicMessageCommit, .publicMessage),
            message("private_message", e.privateMessage, .privateMessage),
        ]
    }

    static let messages = VectorFile<Entry>(name: "messages.json") { entry in
        let failures = checks(entry).compactMap { name, run -> String? in
            do {
                try run()
                return nil
            } catch { return "\(name): \(error)" }
        }
        guard failures.isEmpty else { throw VectorError.failed(failures.joined(separator: "; ")) }
    }

    @Test func messagesVectors() throws {
        let report = try Self.messages.runAndReport()
        #expect(report.failed == 0 && report.passed == 300)
    }
}
