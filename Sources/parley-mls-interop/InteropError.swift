import GRPCCore

/// What the harness asked for that this client cannot do, as a type; turned
/// into a gRPC status with a sentence only at the service's edge.
enum InteropError: Error, Equatable {
    case unknownState(UInt32)
    case unknownTransaction(UInt32)
    case unknownReInit(UInt32)
    case unknownSigner(UInt32)
    case notA(String)
    case unknownMember(identity: [UInt8])
    case notApplication
    case noPendingCommit
    case unsupported(String)
    case invalidExtensionType(UInt32)

    var rpcError: RPCError {
        switch self {
        case .unknownState(let id): RPCError(code: .notFound, message: "no group state \(id)")
        case .unknownTransaction(let id): RPCError(code: .notFound, message: "no KeyPackage transaction \(id)")
        case .unknownReInit(let id): RPCError(code: .notFound, message: "no reinitialised group \(id)")
        case .unknownSigner(let id): RPCError(code: .notFound, message: "no external signer \(id)")
        case .notA(let kind):
            RPCError(code: .invalidArgument, message: "the bytes are not an MLSMessage holding a \(kind)")
        case .unknownMember(let identity):
            RPCError(
                code: .invalidArgument,
                message: "no member has identity \(String(decoding: identity, as: UTF8.self))"
            )
        case .notApplication: RPCError(code: .invalidArgument, message: "the message is not an application message")
        case .noPendingCommit: RPCError(code: .failedPrecondition, message: "this state has no pending Commit")
        case .unsupported(let what):
            RPCError(code: .unimplemented, message: "Parley's interop client does not do \(what) yet")
        case .invalidExtensionType(let type):
            RPCError(code: .invalidArgument, message: "extension type \(type) does not fit in 16 bits")
        }
    }
}
