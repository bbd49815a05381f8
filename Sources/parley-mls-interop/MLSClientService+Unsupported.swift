import GRPCCore

/// The RPCs of scenarios Parley's interop client does not run yet (external
/// senders, new-member proposals): each answers
/// UNIMPLEMENTED, so the runner reports those scripts as failed.
extension MLSClientService {
    func newMemberAddProposal(
        request: MlsClient_NewMemberAddProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_NewMemberAddProposalResponse {
        throw InteropError.unsupported("newMemberAddProposal").rpcError
    }

    func createExternalSigner(
        request: MlsClient_CreateExternalSignerRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateExternalSignerResponse {
        throw InteropError.unsupported("createExternalSigner").rpcError
    }

    func addExternalSigner(
        request: MlsClient_AddExternalSignerRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        throw InteropError.unsupported("addExternalSigner").rpcError
    }

    func externalSignerProposal(
        request: MlsClient_ExternalSignerProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        throw InteropError.unsupported("externalSignerProposal").rpcError
    }
}
