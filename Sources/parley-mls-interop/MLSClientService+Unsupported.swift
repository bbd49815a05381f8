import GRPCCore

/// The RPCs of scenarios Parley's interop client does not run yet (ReInit,
/// external senders, new-member proposals): each answers
/// UNIMPLEMENTED, so the runner reports those scripts as failed.
extension MLSClientService {
    func reInitProposal(
        request: MlsClient_ReInitProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        throw InteropError.unsupported("reInitProposal").rpcError
    }

    func reInitCommit(request: MlsClient_CommitRequest, context: ServerContext) async throws -> MlsClient_CommitResponse
    {
        throw InteropError.unsupported("reInitCommit").rpcError
    }

    func handlePendingReInitCommit(
        request: MlsClient_HandlePendingCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleReInitCommitResponse {
        throw InteropError.unsupported("handlePendingReInitCommit").rpcError
    }

    func handleReInitCommit(
        request: MlsClient_HandleCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleReInitCommitResponse {
        throw InteropError.unsupported("handleReInitCommit").rpcError
    }

    func reInitWelcome(
        request: MlsClient_ReInitWelcomeRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateSubgroupResponse {
        throw InteropError.unsupported("reInitWelcome").rpcError
    }

    func handleReInitWelcome(
        request: MlsClient_HandleReInitWelcomeRequest,
        context: ServerContext
    ) async throws -> MlsClient_JoinGroupResponse {
        throw InteropError.unsupported("handleReInitWelcome").rpcError
    }

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
