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

    /// Hostile bytes: every input decodes through WireJSON exactly as through JSONDecoder alone
    /// (same value, or refused by both); the direct reader takes only the canonical form.
    @Test func theDirectReaderNeverDisagreesWithJSONDecoder() throws {
        let canonical =
            #"{"group":"g\/h","id":"i\"d","message":"AAEC\/w==","sender":"s\\","seq":7,"time":8,"type":"message"}"#
        #expect(FrameJSON.decodeMessage(Data(canonical.utf8)) != nil, "the canonical form is read directly")
        let variants = [
            canonical,
            #"{"group":"g","message":"","sender":"s","seq":0,"time":18446744073709551615,"type":"message"}"#,
            #"{"group":"g","message":"AB==","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"A===","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA=A","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":01,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":18446744073709551616,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":-1,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":1.0,"time":1,"type":"message"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":1,"time":1,"type":"message"} "#,
            #"{"group":"g","message":"AA==","sender":"s","seq":1,"time":1,"type":"message"}x"#,
            #"{"group":"\u0041","message":"AA==","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"group":"g","id":null,"message":"AA==","sender":"s","seq":1,"time":1,"type":"message"}"#,
            #"{"type":"message","group":"g","message":"AA==","sender":"s","seq":1,"time":1}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":1,"time":1,"type":"welcome"}"#,
            #"{"group":"g","message":"AA==","sender":"s","seq":1,"time":1,"type":"message""#,
            #"{"group":"g"#,
            "{\"group\":\"\u{1}\",\"message\":\"AA==\",\"sender\":\"s\",\"seq\":1,\"time\":1,\"type\":\"message\"}",
        ]
        for text in variants {
            try expectAgreement(ServerFrame.self, Data(text.utf8), text)
        }
        // Invalid UTF-8 inside a string, and a truncated frame.
        var invalid = Array(canonical.utf8)
        invalid[10] = 0xFF
        try expectAgreement(ServerFrame.self, Data(invalid), "invalid UTF-8")
        try expectAgreement(ServerFrame.self, Data(canonical.utf8.dropLast(1)), "truncated")
        #expect(FrameJSON.decodeMessage(Data(invalid)) == nil)
    }

    @Test func theDirectSendReaderNeverDisagreesWithJSONDecoder() throws {
        let canonical = #"{"group":"g","id":"1-2","message":"AAEC","type":"send","welcome":"AA=="}"#
        #expect(FrameJSON.decodeSend(Data(canonical.utf8)) != nil, "the canonical form is read directly")
        let variants = [
            canonical,
            #"{"group":"g","id":"","message":"","type":"send"}"#,
            #"{"group":"g","id":"1","message":"AAEC","type":"send","welcome":null}"#,
            #"{"group":"g","id":"1","message":"AAEC","type":"send","welcome":"AB=="}"#,
            #"{"group":"g","id":"1","message":"AAE","type":"send"}"#,
            #"{"group":"g","id":"1","message":"AAEC","type":"ack"}"#,
            #"{"group":"g","id":"1","message":"AAEC","type":"send","extra":1}"#,
            #"{"group":"g","id":"1\n","message":"AAEC","type":"send"}"#,
            #"{"group":"g","id":"1","message":"AAEC","type":"send"}{}"#,
        ]
        for text in variants {
            try expectAgreement(ClientFrame.self, Data(text.utf8), text)
        }
    }

    /// Review s9: raw UTF-8 at its edges inside the strings the direct reader takes as they are
    /// (noncharacters, the last scalar, a BOM mid-string) and the invalid forms it must leave to
    /// JSONDecoder (a surrogate, an overlong quote or slash, past U+10FFFF, a lone continuation,
    /// a sequence cut by the closing quote); and empty input. Each read as JSONDecoder reads it.
    @Test func rawUTF8AtItsEdgesDecodesAsJSONDecoderDecodesIt() throws {
        let inserts: [[UInt8]] = [
            [0xEF, 0xBF, 0xBF], [0xEF, 0xBF, 0xBE], [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBB, 0xBF], [0xED, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xC0, 0xA2], [0xC0, 0xAF], [0xE0, 0x80, 0xAF],
            [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xC3], [0xE2, 0x82],
        ]
        let (head, tail) = (Array(#"{"group":"g"#.utf8), Array(#"","id":"1","message":"AA==","type":"send"}"#.utf8))
        let (messageHead, messageTail) = (
            Array(#"{"group":"g","message":"","sender":"s"#.utf8), Array(#"","seq":1,"time":2,"type":"message"}"#.utf8)
        )
        for (index, insert) in inserts.enumerated() {
            // The first five are valid UTF-8: the direct reader takes them itself.
            #expect((FrameJSON.decodeSend(Data(head + insert + tail)) != nil) == (index < 5), "\(insert)")
            try expectAgreement(ClientFrame.self, Data(head + insert + tail), "send \(insert)")
            try expectAgreement(ServerFrame.self, Data(messageHead + insert + messageTail), "message \(insert)")
        }
        try expectAgreement(ClientFrame.self, Data(), "empty")
        try expectAgreement(ServerFrame.self, Data(), "empty")
        #expect(FrameJSON.decodeSend(Data()) == nil && FrameJSON.decodeMessage(Data()) == nil)
    }

    private func expectAgreement<T: Codable & Equatable>(_: T.Type, _ data: Data, _ label: String) throws {
        let viaWire = try? WireJSON.decode(T.self, from: data)
        let viaCoder = try? JSONDecoder().decode(T.self, from: data)
        #expect(viaWire == viaCoder, "\(label)")
    }

    /// Mutated frames (bytes replaced, dropped, inserted, near the escapes, digits and padding
    /// the direct reader judges): WireJSON and JSONDecoder agree on every one. Seeded, so a
    /// failure reproduces.
    @Test func mutatedFramesDecodeAsJSONDecoderDecodesThem() throws {
        let message = try WireJSON.encode(
            ServerFrame.message(
                .init(group: "g/\"h", seq: 10, time: 20, sender: "s", message: Data([0xFB, 0xFF]), id: "i")
            )
        )
        let send = try WireJSON.encode(
            ClientFrame.send(.init(id: "i\\", group: "g", message: Data([1]), welcome: Data([2, 3])))
        )
        let alphabet = Array(#"{}",:\/=0123456789AQw+"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xFF]
        var random = SplitMix(seed: 0x5EED)
        var directlyRead = 0
        for round in 0..<4_000 {
            for (index, original) in [message, send].enumerated() {
                var bytes = Array(original)
                for _ in 0...(random.next() % 3) { random.mutate(&bytes, alphabet: alphabet) }
                let data = Data(bytes)
                if index == 0 {
                    try expectAgreement(ServerFrame.self, data, "round \(round) message \(bytes)")
                    if FrameJSON.decodeMessage(data) != nil { directlyRead += 1 }
                } else {
                    try expectAgreement(ClientFrame.self, data, "round \(round) send \(bytes)")
                    if FrameJSON.decodeSend(data) != nil { directlyRead += 1 }
                }
            }
        }
        #expect(directlyRead > 100, "some mutants stay canonical and take the direct path: \(directlyRead)")
    }
}

/// SplitMix64: a small seeded generator, so the mutation test is the same on every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Replaces, drops or inserts one byte at a random place.
    mutating func mutate(_ bytes: inout [UInt8], alphabet: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let at = Int(next() % UInt64(bytes.count))
        let byte = alphabet[Int(next() % UInt64(alphabet.count))]
        switch next() % 3 {
        case 0: bytes[at] = byte
        case 1: bytes.remove(at: at)
        default: bytes.insert(byte, at: at)
        }
    }
}
