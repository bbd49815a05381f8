import Testing

@testable import ParleyChat

@Suite struct KeyDecoderTests {
    /// Feeds each chunk as one read, then a quiet moment.
    func decode(_ chunks: [String]) -> [KeyEvent] {
        var decoder = KeyDecoder()
        return chunks.flatMap { decoder.feed(Array($0.utf8)) } + decoder.flush()
    }

    @Test(arguments: [
        ("\r", KeyEvent.enter), ("\n", .enter), ("\t", .tab), ("\u{7F}", .backspace), ("\u{8}", .backspace),
        ("\u{1}", .control("a")), ("\u{5}", .control("e")), ("\u{2}", .control("b")), ("\u{6}", .control("f")),
        ("\u{15}", .control("u")), ("\u{B}", .control("k")), ("\u{17}", .control("w")), ("\u{3}", .control("c")),
        ("\u{1B}[A", .up), ("\u{1B}[B", .down), ("\u{1B}[C", .right), ("\u{1B}[D", .left),
        ("\u{1B}OC", .right), ("\u{1B}OH", .home), ("\u{1B}OF", .end), ("\u{1B}[H", .home), ("\u{1B}[F", .end),
        ("\u{1B}[1~", .home), ("\u{1B}[7~", .home), ("\u{1B}[4~", .end), ("\u{1B}[8~", .end),
        ("\u{1B}[3~", .delete), ("\u{1B}[5~", .pageUp), ("\u{1B}[6~", .pageDown),
        ("\u{1B}[1;5C", .wordRight), ("\u{1B}[1;5D", .wordLeft), ("\u{1B}[1;3D", .wordLeft),
        ("\u{1B}b", .alt("b")), ("\u{1B}f", .alt("f")), ("\u{1B}d", .alt("d")), ("\u{1B}3", .alt("3")),
        ("\u{1B}\u{7F}", .altBackspace), ("\u{1B}", .escape),
    ])
    func decodesOneKey(_ bytes: String, _ key: KeyEvent) {
        #expect(decode([bytes]) == [key])
    }

    @Test func textIsDecodedAsCharactersIncludingWideAndCombined() {
        #expect(decode(["hé漢🙂"]) == [.character("h"), .character("é"), .character("漢"), .character("🙂")])
    }

    @Test func anEscapeSequenceSplitAcrossReadsIsOneKey() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.isWaiting)
        #expect(decoder.feed(Array("[".utf8)) == [])
        #expect(decoder.feed(Array("3".utf8)) == [])
        #expect(decoder.feed(Array("~x".utf8)) == [.delete, .character("x")])
        #expect(!decoder.isWaiting)
        #expect(decode(["\u{1B}[1;", "5", "C"]) == [.wordRight])
    }

    @Test func aUTF8CharacterSplitAcrossReadsIsOneCharacter() {
        let bytes = Array("漢".utf8)
        var decoder = KeyDecoder()
        #expect(decoder.feed([bytes[0]]) == [])
        #expect(decoder.feed([bytes[1]]) == [])
        #expect(decoder.feed([bytes[2]]) == [.character("漢")])
        // A broken sequence becomes U+FFFD, and what follows still decodes.
        var broken = KeyDecoder()
        #expect(broken.feed([0xE6, 0x41]) == [.character("\u{FFFD}"), .character("A")])
    }

    @Test func aLoneEscapeWaitsForAQuietMomentThenIsTheEscapeKey() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.flush() == [.escape])
        #expect(decode(["\u{1B}\u{1B}[A"]) == [.escape, .up])
        #expect(decode(["\u{1B}\u{1}"]) == [.escape, .control("a")])
    }

    @Test func unknownAndOverlongSequencesAreDroppedNotTyped() {
        #expect(decode(["\u{1B}[99Zx"]) == [.character("x")])
        #expect(decode(["\u{1B}[<0;12;5Mx"]) == [.character("x")])
        let overlong = "\u{1B}[" + String(repeating: "1;", count: 40) + "x"
        #expect(!decode([overlong]).contains(.character("1")))
        // C1 controls and NUL are no keys.
        #expect(decode(["a\u{0}\u{85}b"]) == [.character("a"), .character("b")])
    }

    @Test func aBracketedPasteIsOneEventAndItsNewlinesDoNotSend() {
        let keys = decode(["x\u{1B}[200~line one\rline two\n\u{1B}[201~y"])
        #expect(keys == [.character("x"), .paste("line one\rline two\n"), .character("y")])
        #expect(!keys.contains(.enter))
    }

    @Test func aPasteAndItsEndMarkerSplitAcrossReadsStillEnd() {
        let keys = decode(["\u{1B}[20", "0~a\u{1B}[A", "b\u{1B}[2", "01", "~\r"])
        // The arrow inside the paste is pasted text, not a key.
        #expect(keys == [.paste("a\u{1B}[Ab"), .enter])
    }

    @Test func aRunawayPasteIsCutAtTheLimit() {
        var decoder = KeyDecoder()
        _ = decoder.feed(Array("\u{1B}[200~".utf8))
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 10_000)
        for _ in 0..<20 { #expect(decoder.feed(chunk) == []) }
        let keys = decoder.feed(Array("\u{1B}[201~\r".utf8))
        guard case .paste(let text) = keys.first else {
            Issue.record("no paste: \(keys)")
            return
        }
        #expect(text.utf8.count == KeyDecoder.pasteLimit)
        #expect(keys.dropFirst() == [.enter])
    }
}

extension KeyDecoderTests {
    @Test func aPasteWhoseEndMarkerIsLostEndsAfterAQuietSecond() {
        var decoder = KeyDecoder()
        #expect(decoder.feed(Array("\u{1B}[200~lost".utf8)) == [])
        for _ in 1..<KeyDecoder.pasteQuietLimit { #expect(decoder.flush() == []) }
        #expect(decoder.flush() == [.paste("lost")])
        #expect(decoder.feed(Array("\r".utf8)) == [.enter])
    }
}
