import Testing

@testable import MLS

/// RFC 9420 §2.1: the decoder rejects every malformed input with a typed error.
@Suite struct TLSCodecTests {
    func decodeOpaque(_ bytes: [UInt8]) throws -> [UInt8] {
        var reader = TLSReader(bytes)
        let value = try reader.readOpaque()
        try reader.finish()
        return value
    }

    @Test func integersAreBigEndian() throws {
        var writer = TLSWriter()
        writer.write(UInt16(0x0102))
        writer.write(UInt32(0x0304_0506))
        writer.write(UInt64(0x0708_090a_0b0c_0d0e))
        #expect(writer.bytes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        var reader = TLSReader(writer.bytes)
        #expect(try reader.read(UInt16.self) == 0x0102)
        #expect(try reader.read(UInt32.self) == 0x0304_0506)
        #expect(try reader.read(UInt64.self) == 0x0708_090a_0b0c_0d0e)
        try reader.finish()
    }

    @Test(arguments: [0, 1, 63, 64, 16383, 16384, 1 << 20, (1 << 30) - 1])
    func lengthHeadersRoundTripMinimally(length: Int) throws {
        var header: [UInt8] = []
        try VariableLengthInteger.encode(length, into: &header)
        #expect(header.count == VariableLengthInteger.encodedSize(of: length))
        var reader = TLSReader(header)
        #expect(try reader.readVariableLength() == length)
        try reader.finish()
    }

    @Test func rejectsLengthsAboveTheMaximum() {
        var header: [UInt8] = []
        #expect(throws: EncodingError.vectorTooLong(1 << 30)) {
            try VariableLengthInteger.encode(1 << 30, into: &header)
        }
    }

    @Test func rejectsNonMinimalHeaders() {
        // 5 in two bytes, 63 in two bytes, 16383 in four bytes: all have shorter encodings.
        for bytes: [UInt8] in [[0x40, 0x05], [0x40, 0x3f], [0x80, 0x00, 0x3f, 0xff], [0x80, 0x00, 0x00, 0x00]] {
            var reader = TLSReader(bytes)
            #expect(throws: DecodingError.nonMinimalLength) { try reader.readVariableLength() }
        }
    }

    @Test func rejectsTheReservedPrefix() {
        var reader = TLSReader([0xc0, 0, 0, 0, 0, 0, 0, 1])
        #expect(throws: DecodingError.reservedLengthPrefix) { try reader.readVariableLength() }
    }

    @Test func rejectsTruncatedInput() {
        #expect(throws: DecodingError.truncated(needed: 5, remaining: 3)) { try decodeOpaque([0x05, 1, 2, 3]) }
        #expect(throws: DecodingError.truncated(needed: 1, remaining: 0)) { try decodeOpaque([0x40]) }
        var reader = TLSReader([0, 1, 2])
        #expect(throws: DecodingError.truncated(needed: 4, remaining: 3)) { try reader.read(UInt32.self) }
    }

    @Test func rejectsTrailingBytes() {
        #expect(throws: DecodingError.trailingBytes(count: 2)) { try decodeOpaque([0x01, 0xaa, 0xbb, 0xcc]) }
        #expect(throws: DecodingError.trailingBytes(count: 1)) { try LeafIndex(tlsEncoded: [0, 0, 0, 1, 9]) }
    }

    @Test func aHugeDeclaredLengthAllocatesNothing() {
        // A 4-byte header claiming ~1 GiB over a 4-byte input: rejected before any allocation.
        #expect(throws: DecodingError.truncated(needed: (1 << 30) - 1, remaining: 0)) {
            try decodeOpaque([0xbf, 0xff, 0xff, 0xff])
        }
    }

    @Test func vectorElementsMustFillTheVectorExactly() throws {
        // A vector of uint16 whose 3-byte body leaves half an element.
        var reader = TLSReader([0x03, 0x00, 0x01, 0x00])
        #expect(throws: DecodingError.truncated(needed: 2, remaining: 1)) { try reader.readVector(of: UInt16.self) }
        var ok = TLSReader([0x04, 0x00, 0x01, 0x00, 0x02])
        #expect(try ok.readVector(of: UInt16.self) == [1, 2])
    }

    @Test func optionalPresenceMustBeZeroOrOne() throws {
        var absent = TLSReader([0])
        #expect(try absent.readOptional(UInt8.self) == nil)
        var present = TLSReader([1, 7])
        #expect(try present.readOptional(UInt8.self) == 7)
        var invalid = TLSReader([2, 7])
        #expect(throws: DecodingError.invalidOptionalPresence(2)) { try invalid.readOptional(UInt8.self) }
    }

    @Test func closedEnumsRejectUnknownValues() {
        #expect(throws: DecodingError.unknownEnumValue(type: "ContentType", value: 4)) {
            try ContentType(tlsEncoded: [4])
        }
        #expect(throws: DecodingError.unknownEnumValue(type: "SenderType", value: 0)) {
            try SenderType(tlsEncoded: [0])
        }
    }

    @Test func openRegistriesKeepUnknownValues() throws {
        // GREASE values (RFC 9420 §13.5) must survive a round trip.
        let grease = try ExtensionType(tlsEncoded: [0x0a, 0x0a])
        #expect(grease.rawValue == 0x0a0a)
        #expect(try grease.tlsEncoded() == [0x0a, 0x0a])
        #expect(!CipherSuite(rawValue: 0x0a0a).isSupported)
    }

    @Test func nestedVectorsRoundTrip() throws {
        var writer = TLSWriter()
        try writer.writeVector { outer in
            try outer.writeOpaque([1, 2, 3])
            try outer.writeOpaque([])
            try outer.writeOpaque([UInt8](repeating: 9, count: 70))
        }
        var reader = TLSReader(writer.bytes)
        let items = try reader.readVector(of: { try $0.readOpaque() })
        try reader.finish()
        #expect(items == [[1, 2, 3], [], [UInt8](repeating: 9, count: 70)])
    }

    @Test func nestingDepthIsBounded() {
        // 100 nested one-byte-longer vectors: deeper than the decoder follows.
        var bytes: [UInt8] = []
        for _ in 0..<100 {
            var header: [UInt8] = []
            try! VariableLengthInteger.encode(bytes.count, into: &header)
            bytes = header + bytes
        }
        func descend(_ reader: inout TLSReader) throws {
            if reader.isAtEnd { return }
            try reader.readVectorContents { try descend(&$0) }
        }
        var reader = TLSReader(bytes)
        #expect(throws: DecodingError.tooDeep) { try descend(&reader) }
    }

    @Test func mlsMessageRejectsOtherVersionsAndWireFormats() {
        #expect(throws: DecodingError.self) { try MLSMessage(tlsEncoded: [0x00, 0x02, 0x00, 0x05]) }
        #expect(throws: DecodingError.unknownEnumValue(type: "WireFormat", value: 9)) {
            try MLSMessage(tlsEncoded: [0x00, 0x01, 0x00, 0x09])
        }
    }

    @Test func credentialOfUnknownTypeIsRejected() {
        #expect(throws: DecodingError.unknownEnumValue(type: "CredentialType", value: 7)) {
            try Credential(tlsEncoded: [0x00, 0x07, 0x00])
        }
    }
}
