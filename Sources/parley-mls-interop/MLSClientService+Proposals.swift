import Foundation
import GRPCCore
import MLS

/// Standalone Update, PSK and GroupContextExtensions proposals, and the harness's
/// descriptions of proposals a Commit carries by value.
extension MLSClientService {
    func updateProposal(
        request: MlsClient_UpdateProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc { try await propose(stateID: request.stateID) { try $0.proposeUpdate() } }
    }

    func externalPSKProposal(
        request: MlsClient_ExternalPSKProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            let id = PreSharedKeyID.fresh(.external(pskID: [UInt8](request.pskID)), suite: group.suite)
            return try await propose(.preSharedKey(id), stateID: request.stateID)
        }
    }

    func resumptionPSKProposal(
        request: MlsClient_ResumptionPSKProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            return try await propose(
                .preSharedKey(resumptionPSK(request.epochID, in: group.publicGroup)),
                stateID: request.stateID
            )
        }
    }

    func groupContextExtensionsProposal(
        request: MlsClient_GroupContextExtensionsProposalRequest,
        context: ServerContext
    ) async throws -> MlsClient_ProposalResponse {
        try await rpc {
            try await propose(.groupContextExtensions(try extensions(request.extensions)), stateID: request.stateID)
        }
    }

    /// A resumption PSK of this group's epoch `epoch`, for use inside the group (§8.6).
    func resumptionPSK(_ epoch: UInt64, in group: PublicGroup) -> PreSharedKeyID {
        PreSharedKeyID.fresh(.resumption(usage: .application, groupID: group.groupID, epoch: epoch), suite: group.suite)
    }

    func extensions(_ list: [MlsClient_Extension]) throws -> [Extension] {
        try list.map { item in
            guard let type = UInt16(exactly: item.extensionType) else {
                throw InteropError.invalidExtensionType(item.extensionType)
            }
            return Extension(extensionType: ExtensionType(rawValue: type), extensionData: [UInt8](item.extensionData))
        }
    }

    /// A proposal this member made or the harness describes, put into the Commit by value.
    func addByValue(_ proposal: Proposal, to options: inout CommitOptions) throws {
        switch proposal {
        case .add(let keyPackage): options.add.append(keyPackage)
        case .remove(let removed): options.remove.append(removed)
        case .groupContextExtensions(let extensions): options.groupContextExtensions = extensions
        case .preSharedKey(let id): options.preSharedKeys.append(id)
        default: throw InteropError.unsupported("committing this proposal type by value")
        }
    }

    func proposal(_ description: MlsClient_ProposalDescription, in group: PublicGroup) throws -> Proposal {
        switch String(decoding: description.proposalType, as: UTF8.self) {
        case "add": return .add(try keyPackage(description.keyPackage))
        case "remove": return .remove(removed: try leafIndex(of: [UInt8](description.removedID), in: group))
        case "externalPSK":
            return .preSharedKey(.fresh(.external(pskID: [UInt8](description.pskID)), suite: group.suite))
        case "resumptionPSK": return .preSharedKey(resumptionPSK(description.epochID, in: group))
        case "groupContextExtensions": return .groupContextExtensions(try extensions(description.extensions))
        case "reinit":
            return .reInit(try reInitParameters(description.groupID, description.cipherSuite, description.extensions))
        case let other: throw InteropError.unsupported("\(other) proposals by value")
        }
    }
}
