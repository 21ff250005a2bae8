// A strict JSON reader that fills the arena directly, for the input every cluster dump is made
// of: one object (or array) per piece, strings, integers, booleans and nulls.

/// Why it exists: jansson allocates a value per node and a hash table per object, and its tree is
/// then copied into the arena; on a 166 MB kubectl dump that was most of the compile. This reader
/// skips whitespace itself (no compacted copy of indented JSON) and writes scalars straight into
/// the arena.
///
/// It never decides what is valid and never reports anything: it accepts only input it knows
/// jansson accepts and builds the very tree `JSONValueReader` would build from jansson's values
/// (the same keys in the same order, the same decoded string bytes, the same integer text). For
/// anything else — a syntax error, a real number, an integer jansson would refuse or rewrite
/// (`-0`), a duplicate key, a byte order mark, several top-level values, a scalar at the top —
/// it returns nil and the caller parses with jansson, which accepts or explains.
enum JSONFastReader {
    static func parse(_ input: UnsafeBufferPointer<UInt8>, file: String) -> ManifestTree? {
        FastReading.tree(input, file: file, yamlSemantics: false, Reader.self)
    }

    /// Input this reader leaves to jansson.
    typealias Refusal = FastReading.Refusal

    private struct Reader: FastDocumentReader {
        let p: UnsafePointer<UInt8>
        let n: Int
        var i = 0

        init(p: UnsafePointer<UInt8>, n: Int) {
            self.p = p
            self.n = n
        }

        private enum Next { case value, key, after }

        mutating func document(_ b: inout TreeBuilder) throws(Refusal) {
            skipSpace()
            guard i < n, p[i] == UInt8(ascii: "{") || p[i] == UInt8(ascii: "[") else { throw Refusal() }
            /// Open containers, innermost last: true for an object.
            var open: [Bool] = []
            open.reserveCapacity(32)
            var next = Next.value
            while true {
                switch next {
                case .value:
                    skipSpace()
                    guard i < n else { throw Refusal() }
                    let c = p[i]
                    if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                        let isObject = c == UInt8(ascii: "{")
                        i += 1
                        do { try b.beginContainer(isObject ? .mapping : .sequence, line: 0, column: 0) } catch { throw Refusal() }
                        skipSpace()
                        guard i < n else { throw Refusal() }
                        if p[i] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                            i += 1
                            do { try b.endContainer() } catch { throw Refusal() }
                            next = .after
                        } else {
                            open.append(isObject)
                            next = isObject ? .key : .value
                        }
                    } else {
                        try scalar(c, &b)
                        next = .after
                    }
                case .key:
                    skipSpace()
                    guard i < n, p[i] == UInt8(ascii: "\"") else { throw Refusal() }
                    try string(&b, key: true)
                    skipSpace()
                    guard i < n, p[i] == UInt8(ascii: ":") else { throw Refusal() }
                    i += 1
                    next = .value
                case .after:
                    guard let isObject = open.last else {
                        skipSpace()
                        guard i == n else { throw Refusal() }
                        b.endDocument()
                        return
                    }
                    skipSpace()
                    guard i < n else { throw Refusal() }
                    let c = p[i]
                    i += 1
                    if c == UInt8(ascii: ",") {
                        next = isObject ? .key : .value
                    } else if c == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        open.removeLast()
                        do { try b.endContainer() } catch { throw Refusal() }
                    } else {
                        throw Refusal()
                    }
                }
            }
        }

        @inline(__always)
        mutating func skipSpace() {
            while i < n {
                let c = p[i]
                guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
                i += 1
            }
        }

        mutating func scalar(_ c: UInt8, _ b: inout TreeBuilder) throws(Refusal) {
            let start = b.text.count
            let style: ScalarStyle
            switch c {
            case UInt8(ascii: "\""):
                try string(&b)
                return
            case UInt8(ascii: "t"):
                try literal("true", &b)
                style = .jsonTrue
            case UInt8(ascii: "f"):
                try literal("false", &b)
                style = .jsonFalse
            case UInt8(ascii: "n"):
                try literal("null", &b)
                style = .jsonNull
            default:
                try integer(&b)
                style = .jsonInteger
            }
            do { try b.addScalar(textStart: start, style: style, line: 0, column: 0) } catch { throw Refusal() }
        }

        mutating func literal(_ word: StaticString, _ b: inout TreeBuilder) throws(Refusal) {
            let w = word.utf8Start, count = word.utf8CodeUnitCount
            guard n - i >= count else { throw Refusal() }
            for k in 0 ..< count where p[i + k] != w[k] { throw Refusal() }
            b.text.append(contentsOf: UnsafeBufferPointer(start: w, count: count))
            i += count
        }

        /// JSON's integer grammar within Int64, whose text jansson's value prints back unchanged
        /// (so not `-0`); a fraction or exponent makes a real, left to jansson.
        mutating func integer(_ b: inout TreeBuilder) throws(Refusal) {
            let start = i
            if i < n, p[i] == UInt8(ascii: "-") { i += 1 }
            let digits = i
            guard i < n, isDigit(p[i]) else { throw Refusal() }
            if p[i] == UInt8(ascii: "0") {
                i += 1
                if i < n, isDigit(p[i]) { throw Refusal() }
                if digits > start { throw Refusal() }
            } else {
                while i < n, isDigit(p[i]) { i += 1 }
            }
            if i < n, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") { throw Refusal() }
            let count = i - digits
            if count >= 19 {
                guard count == 19 else { throw Refusal() }
                let limit = Array((digits > start ? "9223372036854775808" : "9223372036854775807").utf8)
                for k in 0 ..< 19 where p[digits + k] != limit[k] {
                    if p[digits + k] > limit[k] { throw Refusal() }
                    break
                }
            }
            b.text.append(contentsOf: UnsafeBufferPointer(start: p + start, count: i - start))
        }

        @inline(__always)
        func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

        /// A string at `i` (its opening quote), decoded into the arena as a scalar. jansson refuses
        /// control characters, bad escapes, lone surrogates and ill-formed UTF-8, and a NUL in a
        /// key; so does this.
        mutating func string(_ b: inout TreeBuilder, key: Bool = false) throws(Refusal) {
            i += 1
            let start = b.text.count
            var run = i
            while true {
                guard i < n else { throw Refusal() }
                let c = p[i]
                if c == UInt8(ascii: "\"") {
                    b.text.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    i += 1
                    break
                }
                if c == UInt8(ascii: "\\") {
                    b.text.append(contentsOf: UnsafeBufferPointer(start: p + run, count: i - run))
                    try escape(&b)
                    if key, b.text.last == 0 { throw Refusal() }
                    run = i
                } else if c < 0x20 {
                    throw Refusal()
                } else if c < 0x80 {
                    i += 1
                } else {
                    i += try utf8Length(at: i)
                }
            }
            do { try b.addScalar(textStart: start, style: .jsonString, line: 0, column: 0) } catch { throw Refusal() }
        }

        /// An escape at `i` (its backslash), appended decoded.
        mutating func escape(_ b: inout TreeBuilder) throws(Refusal) {
            guard i + 1 < n else { throw Refusal() }
            let e = p[i + 1]
            i += 2
            let byte: UInt8
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): byte = e
            case UInt8(ascii: "b"): byte = 0x08
            case UInt8(ascii: "f"): byte = 0x0C
            case UInt8(ascii: "n"): byte = 0x0A
            case UInt8(ascii: "r"): byte = 0x0D
            case UInt8(ascii: "t"): byte = 0x09
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xDC00 && scalar <= 0xDFFF { throw Refusal() }
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard i + 1 < n, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else { throw Refusal() }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else { throw Refusal() }
                    scalar = ((scalar - 0xD800) << 10) + (low - 0xDC00) + 0x10000
                }
                FastReading.appendUTF8(scalar, to: &b.text)
                return
            default: throw Refusal()
            }
            b.text.append(byte)
        }

        mutating func hex4() throws(Refusal) -> UInt32 {
            guard n - i >= 4, let v = FastReading.hex(p + i, count: 4) else { throw Refusal() }
            i += 4
            return v
        }

        /// The length of the well-formed UTF-8 sequence at `at` (a byte ≥ 0x80): no overlong
        /// forms, no surrogates, nothing above U+10FFFF, as jansson checks.
        func utf8Length(at: Int) throws(Refusal) -> Int {
            let c = p[at]
            let count: Int
            var v: UInt32
            switch c {
            case 0xC2 ... 0xDF: count = 2; v = UInt32(c & 0x1F)
            case 0xE0 ... 0xEF: count = 3; v = UInt32(c & 0x0F)
            case 0xF0 ... 0xF4: count = 4; v = UInt32(c & 0x07)
            default: throw Refusal()
            }
            guard n - at >= count else { throw Refusal() }
            for k in 1 ..< count {
                let d = p[at + k]
                guard d & 0xC0 == 0x80 else { throw Refusal() }
                v = v << 6 | UInt32(d & 0x3F)
            }
            if v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (count == 3 && v < 0x800) || (count == 4 && v < 0x10000) {
                throw Refusal()
            }
            return count
        }
    }
}
