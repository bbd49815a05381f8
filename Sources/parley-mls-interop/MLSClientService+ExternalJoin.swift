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
            var psks: [[UInt8]: [UInt8]] = [:]
            for psk in request.psks { psks[[UInt8](psk.pskID)] = [UInt8](psk.pskSecret) }
            let joined = try Group.joinExternally(
                groupInfo: info,
                ratchetTree: tree,
                credential: .basic(identity: identity),
                signatureKeys: suite.generateSignatureKeyPair(),
                removing: prior,
                preSharedKeys: request.psks.map { .fresh(.external(pskID: [UInt8]($0.pskID)), suite: suite) },
                policy: policy(encryptHandshake: request.encryptHandshake, externalPSKs: psks)
            )
            var response = MlsClient_ExternalJoinResponse()
            response.stateID = await state.add(InteropState.Member(group: joined.group))
            response.commit = Data(try joined.commit.tlsEncoded())
            response.epochAuthenticator = Data(joined.group.epochAuthenticator)
            return response
        }
    }
}
