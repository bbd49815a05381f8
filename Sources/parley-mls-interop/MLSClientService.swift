import Foundation
import GRPCCore
import MLS

/// The harness's MLSClient service on Parley's MLS library: groups, KeyPackages,
/// proposals and commits in the scripted scenarios' terms.
struct MLSClientService: MlsClient_MLSClient.SimpleServiceProtocol {
    let state = InteropState()

    /// Runs one RPC's body; library and harness errors become gRPC statuses here.
    func rpc<Response>(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as InteropError {
            throw error.rpcError
        } catch let error as MLSError {
            throw RPCError(code: .aborted, message: "MLS: \(error)")
        } catch let error as MLS.DecodingError {
            throw RPCError(code: .invalidArgument, message: "malformed input: \(error)")
        }
    }

    func policy(encryptHandshake: Bool, externalPSKs: [[UInt8]: [UInt8]] = [:]) -> GroupPolicy {
        GroupPolicy(handshakeAsPublicMessage: !encryptHandshake, externalPSKs: externalPSKs)
    }

    func message(_ data: Data) throws -> MLSMessage { try MLSMessage(tlsEncoded: [UInt8](data)) }

    func keyPackage(_ data: Data) throws -> KeyPackage {
        guard case .keyPackage(let keyPackage) = try message(data) else { throw InteropError.notA("KeyPackage") }
        return keyPackage
    }

    func name(request: MlsClient_NameRequest, context: ServerContext) async throws -> MlsClient_NameResponse {
        var response = MlsClient_NameResponse()
        response.name = "Parley MLS (Swift, swift-crypto)"
        return response
    }

    func supportedCiphersuites(
        request: MlsClient_SupportedCiphersuitesRequest,
        context: ServerContext
    ) async throws -> MlsClient_SupportedCiphersuitesResponse {
        var response = MlsClient_SupportedCiphersuitesResponse()
        response.ciphersuites = CipherSuite.supported.map { UInt32($0.rawValue) }
        return response
    }

    func createGroup(
        request: MlsClient_CreateGroupRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateGroupResponse {
        try await rpc {
            let suite = try cipherSuite(request.cipherSuite)
            let group = try Group.create(
                suite,
                groupID: [UInt8](request.groupID),
                credential: .basic(identity: [UInt8](request.identity)),
                signatureKeys: suite.generateSignatureKeyPair(),
                policy: policy(encryptHandshake: request.encryptHandshake)
            )
            var response = MlsClient_CreateGroupResponse()
            response.stateID = await state.add(InteropState.Member(group: group))
            return response
        }
    }

    func cipherSuite(_ raw: UInt32) throws -> CipherSuiteProvider {
        guard let value = UInt16(exactly: raw) else { throw MLSError.unsupportedCipherSuite(.max) }
        return try CipherSuite(rawValue: value).provider()
    }

    func createKeyPackage(
        request: MlsClient_CreateKeyPackageRequest,
        context: ServerContext
    ) async throws -> MlsClient_CreateKeyPackageResponse {
        try await rpc {
            let suite = try cipherSuite(request.cipherSuite)
            let bundle = try KeyPackageBundle(
                suite,
                credential: .basic(identity: [UInt8](request.identity)),
                signatureKeys: suite.generateSignatureKeyPair(),
                lifetime: Lifetime(notBefore: 0, notAfter: .max)
            )
            var response = MlsClient_CreateKeyPackageResponse()
            response.transactionID = await state.add(InteropState.Transaction(bundle: bundle))
            response.keyPackage = Data(try MLSMessage.keyPackage(bundle.keyPackage).tlsEncoded())
            response.initPriv = Data(bundle.initPrivateKey.bytes)
            response.encryptionPriv = Data(bundle.encryptionPrivateKey.bytes)
            response.signaturePriv = Data(bundle.signaturePrivateKey.bytes)
            return response
        }
    }

    func joinGroup(
        request: MlsClient_JoinGroupRequest,
        context: ServerContext
    ) async throws -> MlsClient_JoinGroupResponse {
        try await rpc {
            let transaction = try await state.transaction(request.transactionID)
            guard case .welcome(let welcome) = try message(request.welcome) else { throw InteropError.notA("Welcome") }
            let suite = try transaction.bundle.keyPackage.cipherSuite.provider()
            let tree = request.ratchetTree.isEmpty ? nil : try RatchetTree(suite, encoded: [UInt8](request.ratchetTree))
            let group = try Group.join(
                welcome: welcome,
                keyPackage: transaction.bundle,
                ratchetTree: tree,
                policy: policy(encryptHandshake: request.encryptHandshake, externalPSKs: transaction.externalPSKs)
            )
            await state.finishTransaction(request.transactionID)
            var response = MlsClient_JoinGroupResponse()
            response.stateID = await state.add(InteropState.Member(group: group))
            response.epochAuthenticator = Data(group.epochAuthenticator)
            return response
        }
    }

    func groupInfo(
        request: MlsClient_GroupInfoRequest,
        context: ServerContext
    ) async throws -> MlsClient_GroupInfoResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            let info = try group.groupInfo(includeRatchetTree: !request.externalTree, includeExternalPub: true)
            var response = MlsClient_GroupInfoResponse()
            response.groupInfo = Data(try MLSMessage.groupInfo(info).tlsEncoded())
            if request.externalTree { response.ratchetTree = Data(try group.tree.encoded()) }
            return response
        }
    }

    func stateAuth(
        request: MlsClient_StateAuthRequest,
        context: ServerContext
    ) async throws -> MlsClient_StateAuthResponse {
        try await rpc {
            var response = MlsClient_StateAuthResponse()
            response.stateAuthSecret = Data(try await state.member(request.stateID).group.epochAuthenticator)
            return response
        }
    }

    func export(request: MlsClient_ExportRequest, context: ServerContext) async throws -> MlsClient_ExportResponse {
        try await rpc {
            let group = try await state.member(request.stateID).group
            guard let length = Int(exactly: request.keyLength) else { throw MLSError.invalidLength(.max) }
            var response = MlsClient_ExportResponse()
            response.exportedSecret = Data(
                try group.export(label: request.label, context: [UInt8](request.context), length: length)
            )
            return response
        }
    }

    func storePSK(request: MlsClient_StorePSKRequest, context: ServerContext) async throws -> MlsClient_StorePSKResponse
    {
        try await rpc {
            try await state.storePSK(
                request.stateOrTransactionID,
                pskID: [UInt8](request.pskID),
                secret: [UInt8](request.pskSecret)
            )
            return MlsClient_StorePSKResponse()
        }
    }

    func free(request: MlsClient_FreeRequest, context: ServerContext) async throws -> MlsClient_FreeResponse {
        await state.free(request.stateID)
        return MlsClient_FreeResponse()
    }
}
