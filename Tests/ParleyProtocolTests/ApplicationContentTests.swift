import MLS
import ParleyProtocol
import Testing

/// The envelope members send inside MLS: exact round trips, and every malformed shape refused.
@Suite struct ApplicationContentTests {
    @Test func textAndDestroyRoundTrip() throws {
        for content in [ApplicationContent.text("hello"), .text("é👩‍👩‍👧"), .destroyGroup] {
            #expect(try ApplicationContent(decoding: content.encoded()) == content)
        }
        #expect(try ApplicationContent.destroyGroup.encoded() == [1, 2])
        #expect(try ApplicationContent.text("hi").encoded() == [1, 1, 2, UInt8(ascii: "h"), UInt8(ascii: "i")])
    }

    @Test func theLongestTextRoundTripsAndOneByteMoreIsRefused() throws {
        let longest = String(repeating: "a", count: ApplicationContent.maxTextBytes)
        #expect(try ApplicationContent(decoding: ApplicationContent.text(longest).encoded()) == .text(longest))
        let limit = ApplicationContent.maxTextBytes
        #expect(throws: ApplicationContentError.tooLarge(limit: limit)) {
            try ApplicationContent.text(longest + "a").encoded()
        }
        var writer = TLSWriter()
        writer.write(UInt8(1))
        writer.write(UInt8(1))
        try writer.writeOpaque([UInt8](repeating: 0x61, count: limit + 1))
        #expect(throws: ApplicationContentError.tooLarge(limit: limit)) {
            try ApplicationContent(decoding: writer.bytes)
        }
        #expect(throws: ApplicationContentError.tooLarge(limit: limit)) {
            try ApplicationContent(decoding: [UInt8](repeating: 1, count: 1 << 20))
        }
    }

    @Test(
        arguments: [
            ([], ApplicationContentError.malformed),
            ([1], .malformed),
            ([2, 1, 1, 0x61], .unsupportedVersion(2)),
            ([0, 2], .unsupportedVersion(0)),
            ([1, 3], .unknownType(3)),
            ([1, 0], .unknownType(0)),
            ([1, 2, 0], .malformed),  // trailing byte after destroy_group
            ([1, 1, 2, 0x61], .malformed),  // length says 2, one byte follows
            ([1, 1, 1, 0x61, 0x61], .malformed),  // trailing byte after the text
            ([1, 1, 0x40, 0x01, 0x61], .malformed),  // non-minimal length header
            ([1, 1, 0], .emptyText),
            ([1, 1, 2, 0xC3, 0x28], .invalidText),  // invalid UTF-8
            ([1, 1, 1, 0x80], .invalidText),  // a lone continuation byte
        ] as [([UInt8], ApplicationContentError)]
    )
    func malformedContentIsRefusedWithItsReason(bytes: [UInt8], expected: ApplicationContentError) {
        #expect(throws: expected) { try ApplicationContent(decoding: bytes) }
    }

    @Test func anEmptyTextIsNotEncoded() {
        #expect(throws: ApplicationContentError.emptyText) { try ApplicationContent.text("").encoded() }
    }
}
