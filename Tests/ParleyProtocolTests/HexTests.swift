import ParleyProtocol
import Testing

/// Hex is what people read and type back (fingerprints, device keys): exact both ways, strict on input.
@Suite struct HexTests {
    @Test func encodesEveryByteAndDecodesItBack() {
        let all = (0...255).map { UInt8($0) }
        let text = Hex.encode(all)
        #expect(text.count == 512)
        #expect(text.hasPrefix("000102") && text.hasSuffix("fdfeff"))
        #expect(Hex.decode(text) == all)
        #expect(Hex.decode(text.uppercased()) == all, "either case is accepted")
        #expect(Hex.encode([0xAB, 0x01], uppercase: true, separator: ":") == "AB:01")
        #expect(Hex.encode([]) == "" && Hex.decode("") == [])
    }

    @Test func refusesAnythingButEvenHexDigitsOfTheAskedLength() {
        for bad in ["0", "0g", "+1", " 01", "01 ", "0x01", "１２", "é0"] {
            #expect(Hex.decode(bad) == nil, "\(bad)")
        }
        #expect(Hex.decode("0102", count: 2) == [1, 2])
        #expect(Hex.decode("0102", count: 3) == nil)
        #expect(Hex.decode(String(repeating: "ab", count: 32), count: 32)?.count == 32)
    }
}
