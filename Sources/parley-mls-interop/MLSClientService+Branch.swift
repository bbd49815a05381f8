import Foundation
import GRPCCore
import MLS

/// Branching (RFC 9420 §11.3): a new group of some of the members, started with
/// the old group's resumption PSK of usage branch, joined by Welcome.
extension MLSClientService {
    func createBranch(
        request: MlsClient_CreateBranchRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateSubgroupResponse {
        try await rpc {
            let old = try await state.member(request.stateID).group
            guard let credential = old.ownCredential else { throw MLSError.groupInactive }
            let branchPSK = old.resumptionPSK(usage: .branch)
            var policy = old.policy
            policy.otherGroupsResumptionPSKs[branchPSK.id.kind] = branchPSK.psk
            var group = try Group.create(
                old.suite,
                groupID: [UInt8](request.groupID),
                credential: credential,
                signatureKeys: old.suite.generateSignatureKeyPair(),
                extensions: try extensions(request.extensions),
                policy: policy
            )
            let output = try group.commit(
                CommitOptions(
                    add: try request.keyPackages.map(keyPackage),
                    forcePath: request.forcePath,
                    ratchetTreeInWelcome: !request.externalTree,
                    preSharedKeys: [branchPSK.id]
                )
            )
            _ = try group.process(output.message)
            var response = MlsClient_CreateSubgroupResponse()
            response.stateID = await state.add(InteropState.Member(group: group))
            if let welcome = output.welcome { response.welcome = Data(try welcome.tlsEncoded()) }
            if request.externalTree { response.ratchetTree = Data(try group.tree.encoded()) }
            response.epochAuthenticator = Data(group.epochAuthenticator)
            return response
        }
    }

    func handleBranch(
        request: MlsClient_HandleBranchRequest,
        context: ServerContext
    ) async throws -> MlsClient_HandleBranchResponse {
        try await rpc {
            let old = try await state.member(request.stateID).group
            let transaction = try await state.transaction(request.transactionID)
            guard case .welcome(let welcome) = try message(request.welcome) else { throw InteropError.notA("Welcome") }
            let suite = transaction.bundle.keyPackage.cipherSuite
            let tree =
                request.ratchetTree.isEmpty
                ? nil : try RatchetTree(suite.provider(), encoded: [UInt8](request.ratchetTree))
            var policy = old.policy
            let branchPSK = old.resumptionPSK(usage: .branch)
            policy.otherGroupsResumptionPSKs[branchPSK.id.kind] = branchPSK.psk
            let group = try Group.join(
                welcome: welcome,
                keyPackage: transaction.bundle,
                ratchetTree: tree,
                policy: policy
            )
            await state.finishTransaction(request.transactionID)
            var response = MlsClient_HandleBranchResponse()
            response.stateID = await state.add(InteropState.Member(group: group))
            response.epochAuthenticator = Data(group.epochAuthenticator)
            return response
        }
    }
}
