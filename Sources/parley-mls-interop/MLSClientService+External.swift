import Foundation
import GRPCCore
import MLS

/// Proposals from outside the group (RFC 9420 §12.1.8): external senders named
/// in the `external_senders` extension (§12.1.8.1), and a new member's own Add.
extension MLSClientService {
    func newMemberAddProposal(
        request: MlsClient_NewMemberAddProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_NewMemberAddProposalResponse {
        try await rpc {
            guard case .groupInfo(let info) = try message(request.groupInfo) else {
                throw InteropError.notA("GroupInfo")
            }
            let group = try PublicGroup(groupInfo: info)
            let bundle = try KeyPackageBundle(
                group.suite,
                credential: .basic(identity: [UInt8](request.identity)),
                signatureKeys: group.suite.generateSignatureKeyPair(),
                lifetime: Lifetime(notBefore: 0, notAfter: .max)
            )
            var response = MlsClient_NewMemberAddProposalResponse()
            response.proposal = Data(try bundle.newMemberAddProposal(for: group).tlsEncoded())
            response.transactionID = await state.add(InteropState.Transaction(bundle: bundle))
            response.initPriv = Data(bundle.initPrivateKey.bytes)
            response.encryptionPriv = Data(bundle.encryptionPrivateKey.bytes)
            response.signaturePriv = Data(bundle.signaturePrivateKey.bytes)
            return response
        }
    }

    func createExternalSigner(
        request: MlsClient_CreateExternalSignerRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateExternalSignerResponse {
        try await rpc {
            let suite = try cipherSuite(request.cipherSuite)
            let keys = suite.generateSignatureKeyPair()
            let sender = ExternalSender(
                signatureKey: keys.publicKey,
                credential: .basic(identity: [UInt8](request.identity))
            )
            var response = MlsClient_CreateExternalSignerResponse()
            response.signerID = await state.add(signer: keys)
            response.externalSender = Data(try sender.tlsEncoded())
            return response
        }
    }

    /// A GroupContextExtensions proposal: the current extensions with the
    /// sender appended to `external_senders` (created when absent).
    func addExternalSigner(
        request: MlsClient_AddExternalSignerRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            let sender = try ExternalSender(tlsEncoded: [UInt8](request.externalSender))
            var writer = TLSWriter()
            try writer.writeVector(try group.publicGroup.externalSenders() + [sender])
            var extensions = group.context.extensions.filter { $0.extensionType != .externalSenders }
            extensions.append(Extension(extensionType: .externalSenders, extensionData: writer.bytes))
            return try await propose(.groupContextExtensions(extensions), stateID: request.stateID)
        }
    }

    /// The signer finds its own index in the group's `external_senders` by its key.
    func externalSignerProposal(
        request: MlsClient_ExternalSignerProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let signer = try await state.signer(request.signerID)
            guard case .groupInfo(let info) = try message(request.groupInfo) else {
                throw InteropError.notA("GroupInfo")
            }
            let suite = try info.groupContext.cipherSuite.provider()
            let tree = request.ratchetTree.isEmpty ? nil : try RatchetTree(suite, encoded: [UInt8](request.ratchetTree))
            let group = try PublicGroup(groupInfo: info, tree: tree)
            let proposal = try proposal(request.description_p, in: group)
            var response = MlsClient_ProposalResponse()
            response.proposal = Data(try group.externalProposal(proposal, signer: signer).tlsEncoded())
            return response
        }
    }
}
