import CBalancerABI
import MapImage
import Testing

/// The small helpers every module may use instead of writing its own: little-endian words, hex,
/// first-wins indexes; and the container layout the encoder and decoder share.
@Suite struct ByteHelperTests {
    @Test func littleEndianBytesAreLeastSignificantFirst() {
        #expect(LittleEndian.bytes(UInt16(0x1122)) == [0x22, 0x11])
        #expect(LittleEndian.bytes(UInt32(0x1122_3344)) == [0x44, 0x33, 0x22, 0x11])
        #expect(LittleEndian.bytes(UInt64(0x0102_0304_0506_0708)) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(LittleEndian.bytes(Int32(-2)) == [0xFE, 0xFF, 0xFF, 0xFF])
        var out: [UInt8] = [0xAA]
        out.appendLittleEndian(UInt32(0xDEAD_BEEF))
        #expect(out == [0xAA, 0xEF, 0xBE, 0xAD, 0xDE])
    }

    @Test func storeOverwritesOnlyItsBytes() {
        var out = [UInt8](repeating: 0xCC, count: 8)
        out.storeLittleEndian(UInt16(0xABCD), at: 3)
        #expect(out == [0xCC, 0xCC, 0xCC, 0xCD, 0xAB, 0xCC, 0xCC, 0xCC])
    }

    @Test func readIsTheInverseOfWrite() {
        let words: [UInt64] = [0, 1, 0xFF, 0x100, 0x8000_0000_0000_0000, 0x0123_4567_89AB_CDEF, .max]
        for w in words {
            let bytes = [0x55] + LittleEndian.bytes(w) + [0x66]
            #expect(bytes.readLittleEndian(UInt64.self, at: 1) == w)
            #expect(bytes.readLittleEndian(UInt32.self, at: 1) == UInt32(truncatingIfNeeded: w))
        }
        #expect(LittleEndian.bytes(Int16(-300)).readLittleEndian(Int16.self, at: 0) == -300)
    }

    @Test func sliceOffsetsCountFromTheSlice() {
        let bytes: [UInt8] = [9, 9, 9, 9, 0x01, 0x02, 0x03, 0x04]
        let slice = bytes[4...]
        #expect(slice.readLittleEndian(UInt32.self, at: 0) == 0x0403_0201)
        #expect(slice.readLittleEndian(UInt16.self, at: 2) == 0x0403)
    }

    @Test func hexSpellings() {
        #expect(Hex.bytes([0x00, 0x0A, 0xF0, 0xFF]) == "000af0ff")
        #expect(Hex.bytes([]) == "")
        #expect(Hex.padded(UInt32(0x1B), width: 4) == "001b")
        #expect(Hex.padded(UInt32(0x12345), width: 2) == "12345")
        #expect(Hex.padded(UInt32(0), width: 1) == "0")
        #expect(Hex.id(0xAB) == "0x000000ab")
        #expect(hex(0xDEAD_BEEF) == "0xdeadbeef")
        var out: [UInt8] = []
        Hex.appendByte(0x7E, to: &out)
        #expect(out == Array("7e".utf8))
    }

    @Test func headerDigestIsItsHex() throws {
        let image = MapImage(contents: sampleContents())
        let spelled = image.bytes[32..<64].map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(image.header.digestHex == spelled)
    }

    @Test func firstWinsKeepsTheFirstOfEachKey() {
        let d = Dictionary(firstWins: [(1, "a"), (2, "b"), (1, "c")])
        #expect(d == [1: "a", 2: "b"])
        let byLength = Dictionary(["x", "yy", "z"], firstBy: \.count)
        #expect(byLength == [1: "x", 2: "yy"])
    }

    /// The container's fields where docs/image-format.md puts them (literal offsets here, on
    /// purpose: the document's, not the code's names for them).
    @Test func containerFieldsAreWhereTheFormatSays() throws {
        let bytes = ImageEncoder.encode(sampleContents())
        #expect(Array(bytes[0..<8]) == Array("BLIMAGE".utf8) + [0])
        #expect(bytes.readLittleEndian(UInt16.self, at: 8) == 1)
        #expect(bytes.readLittleEndian(UInt16.self, at: 10) == 64)
        #expect(bytes.readLittleEndian(UInt32.self, at: 12) == ABI.version)
        #expect(bytes.readLittleEndian(UInt32.self, at: 16) == 11)
        #expect(bytes.readLittleEndian(UInt32.self, at: 20) == 0)
        #expect(bytes.readLittleEndian(UInt64.self, at: 24) == UInt64(bytes.count))
        let header = try ImageDecoder.decodeHeader(bytes)
        for (i, s) in header.sections.enumerated() {
            let e = 64 + 32 * i
            #expect(bytes.readLittleEndian(UInt32.self, at: e) == s.kind)
            #expect(bytes.readLittleEndian(UInt16.self, at: e + 4) == UInt16(s.keySize))
            #expect(bytes.readLittleEndian(UInt16.self, at: e + 6) == UInt16(s.valueSize))
            #expect(bytes.readLittleEndian(UInt32.self, at: e + 8) == UInt32(s.count))
            #expect(bytes.readLittleEndian(UInt32.self, at: e + 12) == 0)
            #expect(bytes.readLittleEndian(UInt64.self, at: e + 16) == UInt64(s.offset))
            #expect(bytes.readLittleEndian(UInt64.self, at: e + 24) == UInt64(s.length))
            #expect(s.offset % 8 == 0)
        }
        #expect(header.sections.map(\.kind) == ImageTable.allCases.map(\.rawValue) + [0x100])
    }

    /// Every rule slot of a frontend record is filled by index from the header's array: the
    /// third rule lands at the third `bl_rule`, and unused slots stay zero.
    @Test func frontendRulesFillTheHeadersArray() throws {
        let key = FrontendKey(address: IPAddress("10.0.0.1")!, port: 80, proto: .tcp)
        let rules = (1...UInt32(ABI.maxRules)).map {
            Rule(groupID: 0x100 + $0, ownerID: 0x200 + $0, origin: .service, kind: .clusterIP, action: .translate, flags: [])
        }
        let full = ImageRecords.frontend(Frontend(key: key, id: 9, rules: rules)).value
        let ruleSize = Int(BL_RULE_SIZE), first = ABI.valueSize(.frontends) - ABI.maxRules * ruleSize
        for (i, r) in rules.enumerated() {
            #expect(full.readLittleEndian(UInt32.self, at: first + i * ruleSize) == r.groupID, "rule \(i)")
        }
        let one = ImageRecords.frontend(Frontend(key: key, id: 9, rules: [rules[0]])).value
        #expect(one.readLittleEndian(UInt32.self, at: first) == rules[0].groupID)
        #expect(one[(first + ruleSize)...].allSatisfy { $0 == 0 })
        #expect(FrontendRecord(key: ImageRecords.frontend(Frontend(key: key, id: 9, rules: rules)).key, value: full)?.groupIDs
                == rules.map(\.groupID))
    }
}
