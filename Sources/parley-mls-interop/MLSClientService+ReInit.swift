import Foundation
import GRPCCore
import MLS

/// Reinitialisation (RFC 9420 §11.2): a ReInit proposal and its Commit close the
/// group; each member makes a KeyPackage of the new suite, one creates the
/// successor with the reinit PSK and the others join it by Welcome.
extension MLSClientService {
    func reInitProposal(
        request: MlsClient_ReInitProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let reInit = try reInitParameters(request.groupID, request.cipherSuite, request.extensions)
            return try await propose(.reInit(reInit), stateID: request.stateID)
        }
    }

    /// A ReInit from the harness's terms; the suite must fit in 16 bits.
    func reInitParameters(_ groupID: Data, _ suite: UInt32, _ extensions: [MlsClient_Extension]) throws -> ReInit {
        guard let raw = UInt16(exactly: suite) else { throw MLSError.unsupportedCipherSuite(.max) }
        return ReInit(
            groupID: [UInt8](groupID),
            cipherSuite: CipherSuite(rawValue: raw),
            extensions: try self.extensions(extensions)
        )
    }

    /// The Commit names the ReInit by reference, which ``commit(request:context:)`` handles.
    func reInitCommit(request: MlsClient_CommitRequest, context: ServerContext) async throws -> MlsClient_CommitResponse
    {
        try await commit(request: request, context: context)
    }

    func handlePendingReInitCommit(
        request: MlsClient_HandlePendingCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleReInitCommitResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            guard let commit = member.pendingCommit else { throw InteropError.noPendingCommit }
            _ = try member.group.process(commit)
            return try await closed(request.stateID, member.group)
        }
    }

    func handleReInitCommit(
        request: MlsClient_HandleCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleReInitCommitResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            for proposal in request.proposal where member.ownProposals[[UInt8](proposal)] == nil {
                _ = try member.group.process(message(proposal))
            }
            _ = try member.group.process(message(request.commit))
            return try await closed(request.stateID, member.group)
        }
    }

    /// A group the Commit closed: the member's KeyPackage for the successor, in the ReInit's suite.
    func closed(_ stateID: UInt32, _ group: Group) async throws -> MlsClient_HandleReInitCommitResponse {
        guard let reInit = group.reInit else { throw MLSError.notReinitialized }
        guard let credential = group.ownCredential else { throw MLSError.groupInactive }
        let suite = try reInit.cipherSuite.provider()
        let bundle = try KeyPackageBundle(
            suite,
            credential: credential,
            signatureKeys: suite.generateSignatureKeyPair(),
            lifetime: Lifetime(notBefore: 0, notAfter: .max)
        )
        var response = MlsClient_HandleReInitCommitResponse()
        response.reinitID = await state.reInit(stateID, InteropState.ReInitMember(old: group, bundle: bundle))
        response.keyPackage = Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded())
        response.epochAuthenticator = Data(group.epochAuthenticator)
        return response
    }

    func reInitWelcome(
        request: MlsClient_ReInitWelcomeRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateSubgroupResponse {
        try await rpc {
            let closed = try await state.reInitMember(request.reinitID)
            let suite = try closed.bundle.keyPackage.cipherSuite.provider()
            let successor = try closed.old.createSuccessor(
                signatureKeys: suite.generateSignatureKeyPair(),
                keyPackages: try request.keyPackage.map(keyPackage),
                forcePath: request.forcePath,
                ratchetTreeInWelcome: !request.externalTree
            )
            await state.finishReInit(request.reinitID)
            var response = MlsClient_CreateSubgroupResponse()
            response.stateID = await state.add(InteropState.Member(group: successor.group))
            if let welcome = successor.welcome { response.welcome = Data(try MLSMessage.welcome(welcome).tlsEncoded()) }
            if request.externalTree { response.ratchetTree = Data(try successor.group.tree.encoded()) }
            response.epochAuthenticator = Data(successor.group.epochAuthenticator)
            return response
        }
    }

    func handleReInitWelcome(
        request: MlsClient_HandleReInitWelcomeRequest,
        context: ServerContext
    ) async throws -> MlsClient_JoinGroupResponse {
        try await rpc {
            let closed = try await state.reInitMember(request.reinitID)
            guard case .welcome(let welcome) = try message(request.welcome) else { throw InteropError.notA("Welcome") }
            let suite = try closed.bundle.keyPackage.cipherSuite.provider()
            let tree =
                request.ratchetTree.isEmpty ? nil : try RatchetTree(suite, encoded: [UInt8](request.ratchetTree))
            let group = try closed.old.joinSuccessor(welcome: welcome, keyPackage: closed.bundle, ratchetTree: tree)
            await state.finishReInit(request.reinitID)
            var response = MlsClient_JoinGroupResponse()
            response.stateID = await state.add(InteropState.Member(group: group))
            response.epochAuthenticator = Data(group.epochAuthenticator)
            return response
        }
    }
}
