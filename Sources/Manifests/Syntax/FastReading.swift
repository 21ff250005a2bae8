/// What JSONFastReader and YAMLFastReader share: how a refusal ends a read, and the escapes
/// both decode (`\u00e9`, `\U0001F600`).
enum FastReading {
    /// Input a fast reader leaves to jansson or libyaml.
    struct Refusal: Error {}

    /// The tree a `Reader` builds in a fresh arena from `input`, or nil when it refused.
    static func tree<Reader: FastDocumentReader>(_ input: UnsafeBufferPointer<UInt8>, file: String, yamlSemantics: Bool,
                                                 _: Reader.Type) -> ManifestTree? {
        guard let base = input.baseAddress else { return nil }
        var builder = TreeBuilder(file: file, yamlSemantics: yamlSemantics, inputSize: input.count, rejectDuplicateKeys: true)
        var reader = Reader(p: base, n: input.count)
        do throws(Refusal) {
            try reader.document(&builder)
        } catch {
            return nil
        }
        return builder.finish()
    }

    /// The value of the `count` hexadecimal digits at `p` (either case), or nil.
    static func hex(_ p: UnsafePointer<UInt8>, count: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in 0 ..< count {
            let c = p[k]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// Appends the UTF-8 encoding of `v`, a Unicode scalar value (the callers refuse surrogates
    /// and anything above U+10FFFF).
    static func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case 0 ..< 0x80:
            out.append(UInt8(v))
        case 0x80 ..< 0x800:
            out.append(UInt8(0xC0 | v >> 6))
            out.append(UInt8(0x80 | v & 0x3F))
        case 0x800 ..< 0x10000:
            out.append(UInt8(0xE0 | v >> 12))
            out.append(UInt8(0x80 | (v >> 6) & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        default:
            out.append(UInt8(0xF0 | v >> 18))
            out.append(UInt8(0x80 | (v >> 12) & 0x3F))
            out.append(UInt8(0x80 | (v >> 6) & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        }
    }
}

/// A fast reader's pass over one piece: it fills the arena with the piece's document or refuses.
protocol FastDocumentReader {
    init(p: UnsafePointer<UInt8>, n: Int)
    mutating func document(_ b: inout TreeBuilder) throws(FastReading.Refusal)
}
