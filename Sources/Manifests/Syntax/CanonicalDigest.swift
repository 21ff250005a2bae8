import Crypto

extension ManifestTree {
    // MARK: Canonical digest

    private enum CanonicalTag: UInt8 {
        case null = 0x6E  // n
        case bool = 0x62  // b
        case int = 0x69  // i
        case real = 0x72  // r
        case string = 0x73  // s
        case key = 0x6B  // k
        case mapping = 0x6D  // m
        case sequence = 0x61  // a
    }

    /// SHA-256 of a canonical serialisation of the subtree, so the same object digests the same
    /// whether it was written as YAML or JSON and whatever its key order.
    ///
    /// Plain YAML scalars are typed the way YAML 1.2's core schema and JSON agree on:
    /// `null`/`Null`/`NULL`/`~`/empty are null; `true`/`True`/`TRUE`/`false`/`False`/`FALSE` are
    /// booleans; text matching JSON's integer grammar is an integer; text matching JSON's number
    /// grammar with a fraction or exponent is a real (compared by value); anything else, and every
    /// quoted scalar, is a string. Mapping keys are always compared as strings, as in JSON.
    public func canonicalDigest(_ n: NodeID) -> [UInt8] {
        var sink = DigestSink()
        enum Work {
            case node(Int32)
            case key(Int32)
        }
        var stack: [Work] = [.node(n.index)]
        /// Child slots of the current mapping's keys, reused to avoid an allocation per mapping.
        var order: [Int] = []
        while let work = stack.popLast() {
            switch work {
            case .key(let k):
                let r = nodes[Int(k)]
                sink.record(.key, text, Int(r.start), Int(r.length))
            case .node(let idx):
                let r = nodes[Int(idx)]
                switch r.kind {
                case .scalar:
                    emitScalar(r, into: &sink)
                case .sequence:
                    sink.header(CanonicalTag.sequence.rawValue, UInt64(r.length))
                    let base = Int(r.start)
                    var slot = base + Int(r.length)
                    while slot > base {
                        slot -= 1
                        stack.append(.node(children[slot]))
                    }
                case .mapping:
                    let count = Int(r.length) / 2
                    sink.header(CanonicalTag.mapping.rawValue, UInt64(count))
                    let base = Int(r.start)
                    order.removeAll(keepingCapacity: true)
                    var isSorted = true
                    for e in 0 ..< count {
                        if e > 0, !Self.keyLess(children[base + 2 * e - 2], children[base + 2 * e], nodes, text) {
                            isSorted = false
                        }
                        order.append(base + 2 * e)
                    }
                    // kubectl sorts YAML keys, so the sort is usually skipped.
                    if !isSorted {
                        let nodes = self.nodes, text = self.text, children = self.children
                        order.sort { Self.keyLess(children[$0], children[$1], nodes, text) }
                    }
                    for slot in order.reversed() {
                        stack.append(.node(children[slot + 1]))
                        stack.append(.key(children[slot]))
                    }
                }
            }
        }
        return sink.finish()
    }

    /// Byte-wise order of two keys' text (a proper prefix sorts first).
    @inline(__always)
    private static func keyLess(_ a: Int32, _ b: Int32, _ nodes: [NodeRecord], _ text: [UInt8]) -> Bool {
        let ra = nodes[Int(a)], rb = nodes[Int(b)]
        let sa = Int(ra.start), sb = Int(rb.start)
        let la = Int(ra.length), lb = Int(rb.length)
        var i = 0
        let n = min(la, lb)
        while i < n {
            let x = text[sa + i], y = text[sb + i]
            if x != y { return x < y }
            i += 1
        }
        return la < lb
    }

    private func emitScalar(_ r: NodeRecord, into sink: inout DigestSink) {
        let start = Int(r.start), length = Int(r.length)
        switch r.style {
        case .quoted, .jsonString:
            sink.record(.string, text, start, length)
        case .jsonNull:
            sink.record(.null, text, 0, 0)
        case .jsonTrue:
            sink.record(.bool, Self.trueBytes, 0, 4)
        case .jsonFalse:
            sink.record(.bool, Self.falseBytes, 0, 5)
        case .jsonInteger:
            emitInteger(start, length, into: &sink)
        case .jsonReal:
            emitReal(start, length, into: &sink)
        case .plain:
            if Self.isNullText(text, start, length) {
                sink.record(.null, text, 0, 0)
            } else if let b = Self.boolValue(text, start, length) {
                if b { sink.record(.bool, Self.trueBytes, 0, 4) } else { sink.record(.bool, Self.falseBytes, 0, 5) }
            } else {
                switch Self.numberShape(text, start, length) {
                case .integer: emitInteger(start, length, into: &sink)
                case .real: emitReal(start, length, into: &sink)
                case .none: sink.record(.string, text, start, length)
                }
            }
        }
    }

    private func emitInteger(_ start: Int, _ length: Int, into sink: inout DigestSink) {
        // "-0" is the only integer spelling JSON's grammar allows that is not already canonical.
        if length == 2, text[start] == UInt8(ascii: "-"), text[start + 1] == UInt8(ascii: "0") {
            sink.record(.int, Self.zeroBytes, 0, 1)
        } else {
            sink.record(.int, text, start, length)
        }
    }

    private func emitReal(_ start: Int, _ length: Int, into sink: inout DigestSink) {
        let s = String(decoding: text[start ..< start + length], as: UTF8.self)
        if let d = Double(s) {
            let canonical = Array("\(d)".utf8)
            sink.record(.real, canonical, 0, canonical.count)
        } else {
            sink.record(.real, text, start, length)
        }
    }

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let zeroBytes: [UInt8] = [UInt8(ascii: "0")]

    private struct DigestSink {
        private var hasher = SHA256()
        private var buffer: [UInt8] = []
        private static let chunk = 1 << 16

        init() { buffer.reserveCapacity(Self.chunk) }

        mutating func header(_ tag: UInt8, _ value: UInt64) {
            if buffer.count + 9 > Self.chunk { flush() }
            buffer.append(tag)
            withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
        }

        mutating func record(_ tag: CanonicalTag, _ bytes: [UInt8], _ start: Int, _ length: Int) {
            header(tag.rawValue, UInt64(length))
            if length > Self.chunk / 4 {
                flush()
                hasher.update(data: bytes[start ..< start + length])
            } else {
                if buffer.count + length > Self.chunk { flush() }
                buffer.append(contentsOf: bytes[start ..< start + length])
            }
        }

        mutating func flush() {
            if !buffer.isEmpty {
                hasher.update(data: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }

        mutating func finish() -> [UInt8] {
            flush()
            return Array(hasher.finalize())
        }
    }
}
