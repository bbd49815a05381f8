import Foundation
import ParleyProtocol

/// Hand-made frames and bodies, valid ones and the edge values of issue 11
/// (a `seq` of 2^64 - 1, empty and oversized fields), as the fuzzer's start.
enum JSONSeeds {
    static var clientFrames: [[UInt8]] {
        let frames: [ClientFrame] = [
            .send(.init(id: "1", group: "team", message: Data([0, 1, 0, 1, 0, 0]))),
            .send(
                .init(id: "c-42", group: "team", message: Data(repeating: 7, count: 64), welcome: Data([0, 1, 0, 3]))
            ),
            .ack(.init(group: "team", seq: 1)),
            .ack(.init(group: "team", seq: .max)),
            .ack(.init(group: "", seq: 0)),
        ]
        let raw = [
            #"{"type":"ack","group":"G","seq":18446744073709551615}"#,
            #"{"type":"ack","group":"G","seq":18446744073709551616}"#,
            #"{"type":"ack","group":"G","seq":-1}"#,
            #"{"type":"send","id":"x","group":"G","message":"AAEAAQ==","welcome":null}"#,
            #"{"type":"unknown"}"#,
        ]
        return frames.compactMap { try? Array(WireJSON.encode($0)) } + raw.map { Array($0.utf8) }
    }

    static var serverFrames: [[UInt8]] {
        let frames: [ServerFrame] = [
            .message(
                .init(group: "team", seq: 1, time: 1_700_000_000_000, sender: "alice", message: Data([0, 1, 0, 2]))
            ),
            .message(.init(group: "team", seq: .max, time: .max, sender: "bob", message: Data(), id: "c-1")),
            .welcome(.init(group: "team", seq: 3, time: 0, welcome: Data([0, 1, 0, 3]))),
            .replayFinished,
            .error(.init(id: "c-2", group: "team", error: ErrorBody(.wrongEpoch, epoch: 9))),
            .error(.init(error: ErrorBody(.internalError))),
            .groupDestroyed(.init(group: "team")),
        ]
        let raw = [
            #"{"type":"message","group":"G","seq":1,"time":1,"sender":"\u001b]0;x\u0007","message":""}"#,
            #"{"type":"error","error":{"code":"nope","message":"m"}}"#,
        ]
        return frames.compactMap { try? Array(WireJSON.encode($0)) } + raw.map { Array($0.utf8) }
    }

    /// Each seed starts with the selector byte of ``JSONChecks/httpBodyDecoders``.
    static var httpBodies: [[UInt8]] {
        let key = Data(repeating: 9, count: 32)
        let bodies: [(UInt8, any Encodable)] = [
            (0, API.Register(username: "alice", password: "correct horse", invite: "inv")),
            (
                1,
                API.Login(
                    username: "alice",
                    password: "correct horse",
                    signatureKey: key,
                    challenge: key,
                    signature: Data(repeating: 1, count: 64)
                )
            ),
            (2, API.UploadKeyPackages(keyPackages: [Data([0, 1, 0, 5])], lastResort: Data([0, 1]))),
            (3, API.CreateGroup(name: "team", groupInfo: Data([0, 1, 0, 4]))),
            (4, API.Session(token: "t", deviceID: 1, expiresAt: .max)),
            (5, API.KeyPackageStock(available: 3, lowWatermark: 10)),
            (6, API.ClaimedKeyPackages(username: "bob", keyPackages: [.init(deviceID: 2, keyPackage: key)])),
            (7, API.User(username: "bob", signatureKeys: [key])),
            (8, API.Group(name: "team", epoch: 2, members: ["alice", "bob"], admins: ["alice"], lastSeq: 5)),
            (9, API.Groups(groups: [API.Group(name: "g", epoch: 0, members: [], admins: [], lastSeq: 0)])),
            (10, API.RatchetTree(epoch: 1, tree: key)),
            (11, API.ErrorResponse(error: ErrorBody(.rateLimited))),
            (12, API.LoginChallengeRequest(username: "alice")),
            (13, API.LoginChallenge(challenge: key, expiresAt: .max)),
        ]
        let raw: [(UInt8, String)] = [
            (4, #"{"token":"t","deviceID":-9223372036854775808,"expiresAt":18446744073709551615}"#),
            (5, #"{"available":9223372036854775807,"lowWatermark":-1}"#),
        ]
        return bodies.compactMap { selector, body in (try? WireJSON.encode(body)).map { [selector] + Array($0) } }
            + raw.map { [$0.0] + Array($0.1.utf8) }
    }
}
