import Foundation
import GRPCCore
import MLS

/// Application messages, proposals and commits.
extension MLSClientService {
    func protect(request: MlsClient_ProtectRequest, context: ServerContext) async throws -> MlsClient_ProtectResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            let message = try member.group.encrypt(
                [UInt8](request.plaintext),
                authenticatedData: [UInt8](request.authenticatedData)
            )
            await state.replace(request.stateID, with: member)
            var response = MlsClient_ProtectResponse()
            response.ciphertext = Data(try message.tlsEncoded())
            return response
        }
    }

    func unprotect(
        request: MlsClient_UnprotectRequest,
        context: ServerContext
    ) async throws -> MlsClient_UnprotectResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            guard case .application(let application) = try member.group.process(message(request.ciphertext)) else {
                throw InteropError.notApplication
            }
            await state.replace(request.stateID, with: member)
            var response = MlsClient_UnprotectResponse()
            response.authenticatedData = Data(application.authenticatedData)
            response.plaintext = Data(application.data)
            return response
        }
    }

    func addProposal(
        request: MlsClient_AddProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc { try await propose(.add(try keyPackage(request.keyPackage)), stateID: request.stateID) }
    }

    func removeProposal(
        request: MlsClient_RemoveProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            let leaf = try leafIndex(of: [UInt8](request.removedID), in: group.publicGroup)
            return try await propose(.remove(removed: leaf), stateID: request.stateID)
        }
    }

    /// A standalone proposal, its reference remembered by its encoding for
    /// when the harness names it in a Commit.
    func propose(_ proposal: Proposal, stateID: UInt32) async throws -> MlsClient_ProposalResponse {
        try await propose(stateID: stateID) { try $0.propose(proposal) }
    }

    func propose(
        stateID: UInt32,
        _ make: (inout Group) throws -> MLSMessage
    ) async throws -> MlsClient_ProposalResponse {
        var member = try await state.member(stateID)
        let before = Set(member.group.pendingProposals.compactMap(\.reference))
        let encoded = try make(&member.group).tlsEncoded()
        if let reference = member.group.pendingProposals.compactMap(\.reference).first(where: { !before.contains($0) })
        {
            member.ownProposals[encoded] = reference
        }
        await state.replace(stateID, with: member)
        var response = MlsClient_ProposalResponse()
        response.proposal = Data(encoded)
        return response
    }

    /// The harness names members by their basic credential's identity.
    func leafIndex(of identity: [UInt8], in group: PublicGroup) throws -> LeafIndex {
        guard let member = group.members.first(where: { $0.credential == .basic(identity: identity) }) else {
            throw InteropError.unknownMember(identity: identity)
        }
        return member.index
    }

    func commit(request: MlsClient_CommitRequest, context: ServerContext) async throws -> MlsClient_CommitResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            var options = CommitOptions(forcePath: request.forcePath, ratchetTreeInWelcome: !request.externalTree)
            var references = Set<[UInt8]>()
            for proposal in request.byReference {
                if let own = member.ownProposals[[UInt8](proposal)] {
                    references.insert(own)
                } else if case .proposal(let reference, _) = try member.group.process(message(proposal)) {
                    references.insert(reference)
                } else {
                    throw InteropError.notA("proposal")
                }
            }
            options.onlyPendingReferences = references
            for description in request.byValue {
                try addByValue(try proposal(description, in: member.group.publicGroup), to: &options)
            }
            let output = try member.group.commit(options)
            member.pendingCommit = output.message
            await state.replace(request.stateID, with: member)
            var response = MlsClient_CommitResponse()
            response.commit = Data(try output.message.tlsEncoded())
            if let welcome = output.welcome { response.welcome = Data(try welcome.tlsEncoded()) }
            if request.externalTree {
                var next = member.group
                _ = try next.process(output.message)
                response.ratchetTree = Data(try next.tree.encoded())
            }
            return response
        }
    }

    func handleCommit(
        request: MlsClient_HandleCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleCommitResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            for proposal in request.proposal where member.ownProposals[[UInt8](proposal)] == nil {
                _ = try member.group.process(message(proposal))
            }
            _ = try member.group.process(message(request.commit))
            return try await advance(request.stateID, member)
        }
    }

    func handlePendingCommit(
        request: MlsClient_HandlePendingCommitRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleCommitResponse {
        try await rpc {
            var member = try await state.member(request.stateID)
            guard let commit = member.pendingCommit else { throw InteropError.noPendingCommit }
            _ = try member.group.process(commit)
            return try await advance(request.stateID, member)
        }
    }

    /// A new epoch: the proposals of the last one are gone.
    func advance(_ stateID: UInt32, _ member: InteropState.Member) async throws -> MlsClient_HandleCommitResponse {
        var member = member
        member.pendingCommit = nil
        member.ownProposals = [:]
        await state.replace(stateID, with: member)
        var response = MlsClient_HandleCommitResponse()
        response.stateID = stateID
        response.epochAuthenticator = Data(member.group.epochAuthenticator)
        return response
    }
}
