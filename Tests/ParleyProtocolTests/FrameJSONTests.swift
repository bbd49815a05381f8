import Foundation
import Testing

@testable import ParleyProtocol

/// The direct writer of `message` and `send` frames must write exactly what JSONEncoder (sorted
/// keys, base64 data) writes, for every string a member or the server can put in them and every
/// payload length, so no client can tell which one the server used.
@Suite struct FrameJSONTests {
    /// What WireJSON wrote before the direct writer: Foundation's coder.
    private func foundation<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }

    /// Every ASCII byte (controls, quote, backslash, slash, DEL), and non-ASCII text.
    private static let strings: [String] = [
        "",
        "alice",
        String(decoding: (1..<0x80).map { UInt8($0) }, as: UTF8.self),
        "\u{0}x",
        "é\u{2028}\u{2029}\u{FEFF}😀 \"quoted\" \\ / //",
        "grp-€-\u{1F}\u{7F}",
    ]

    /// Lengths on either side of each base64 padding case, and bytes whose sextets are `+` and `/`.
    private static let payloads: [Data] = [
        Data(), Data([0xFF]), Data([0xFF, 0xFE]), Data([0xFF, 0xFE, 0xFD]), Data([0xFB, 0xFF, 0xBF, 0x3E]),
        Data((0..<256).map { UInt8($0) }), Data(repeating: 0x3F, count: 1025),
    ]

    @Test func messageFramesAreByteForByteFoundations() throws {
        for text in Self.strings {
            for payload in Self.payloads {
                for id in [nil, text, "1-2"] {
                    let frame = ServerFrame.message(
                        .init(
                            group: text,
                            seq: UInt64.max,
                            time: 1_700_000_000_000,
                            sender: text,
                            message: payload,
                            id: id
                        )
                    )
                    let direct = try WireJSON.encode(frame)
                    #expect(
                        direct == (try foundation(frame)),
                        "\(text.debugDescription) \(payload.count) \(id ?? "nil")"
                    )
                    #expect(try WireJSON.decode(ServerFrame.self, from: direct) == frame)
                }
            }
        }
        let zero = ServerFrame.message(.init(group: "g", seq: 0, time: 0, sender: "s", message: Data([1])))
        #expect(try WireJSON.encode(zero) == (try foundation(zero)))
    }

    @Test func sendFramesAreByteForByteFoundations() throws {
        for text in Self.strings {
            for payload in Self.payloads {
                for welcome in [nil, payload, Data([0x00])] {
                    let frame = ClientFrame.send(.init(id: text, group: text, message: payload, welcome: welcome))
                    let direct = try WireJSON.encode(frame)
                    #expect(direct == (try foundation(frame)), "\(text.debugDescription) \(payload.count)")
                    #expect(try WireJSON.decode(ClientFrame.self, from: direct) == frame)
                }
            }
        }
    }

    @Test func otherFramesStillGoThroughTheCoder() throws {
        let frames: [ServerFrame] = [
            .replayFinished,
            .welcome(.init(group: "g/h", seq: 3, time: 4, welcome: Data([0xFF, 0xEF]))),
            .error(.init(id: "x", group: nil, error: ErrorBody(.tooLarge))),
        ]
        for frame in frames {
            #expect(try WireJSON.encode(frame) == (try foundation(frame)))
        }
        let ack = ClientFrame.ack(.init(group: "g", seq: 9))
        #expect(try WireJSON.encode(ack) == (try foundation(ack)))
    }
}
