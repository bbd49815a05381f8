import Foundation
import GRPCCore
import MLS

/// Joining by an external Commit (RFC 9420 §12.4.3.2) from a GroupInfo with `external_pub`.
extension MLSClientService {
    func externalJoin(
        request: MlsClient_ExternalJoinRequest,
        context: ServerContext
    ) async throws -> MlsClient_ExternalJoinResponse {
        try await rpc {
            guard request.psks.isEmpty else { throw InteropError.unsupported("PSKs in an external commit") }
            guard case .groupInfo(let info) = try message(request.groupInfo) else {
                throw InteropError.notA("GroupInfo")
            }
            let suite = try info.groupContext.cipherSuite.provider()
            let tree = request.ratchetTree.isEmpty ? nil : try RatchetTree(suite, encoded: [UInt8](request.ratchetTree))
            let identity = [UInt8](request.identity)
            var prior: LeafIndex?
            if request.removePrior {
                let view = try PublicGroup(groupInfo: info, tree: tree)
                prior = view.members.first { $0.credential == .basic(identity: identity) }?.index
                guard prior != nil else { throw InteropError.unknownMember(identity: identity) }
            }
            let joined = try Group.joinExternally(
                groupInfo: info,
                ratchetTree: tree,
                credential: .basic(identity: identity),
                signatureKeys: suite.generateSignatureKeyPair(),
                removing: prior,
                policy: policy(encryptHandshake: request.encryptHandshake)
            )
            var response = MlsClient_ExternalJoinResponse()
            response.stateID = await state.add(InteropState.Member(group: joined.group))
            response.commit = Data(try joined.commit.tlsEncoded())
            response.epochAuthenticator = Data(joined.group.epochAuthenticator)
            return response
        }
    }
}
