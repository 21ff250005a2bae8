/// The metadata section's canonical JSON, written by hand: keys in byte order, no insignificant
/// whitespace, integers in decimal, strings escaped as RFC 8259 requires and nothing more. It is a
/// byte-for-byte definition (images are compared by bytes), and it is much faster than a generic
/// encoder on a large cluster's ten thousand services.
struct CanonicalJSONWriter {
    var out: [UInt8] = []

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(b)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            case 0..<0x20:
                raw("\\u00")
                let digits: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    mutating func int<T: BinaryInteger>(_ v: T) {
        out.append(contentsOf: String(v).utf8)
    }

    mutating func bool(_ v: Bool) {
        if v { raw("true") } else { raw("false") }
    }

    /// Writes an object whose members are given already in key order; nil values are omitted.
    mutating func object(_ members: [(StaticString, ((inout CanonicalJSONWriter) -> Void)?)]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for (key, write) in members {
            guard let write else { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            raw(key)
            raw("\":")
            write(&self)
        }
        out.append(UInt8(ascii: "}"))
    }

    mutating func array<T>(_ items: [T], _ write: (inout CanonicalJSONWriter, T) -> Void) {
        out.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            write(&self, item)
        }
        out.append(UInt8(ascii: "]"))
    }
}

extension ImageMetadata {
    func writeCanonical(_ w: inout CanonicalJSONWriter) {
        w.object([
            ("compiler", { $0.string(compiler) }),
            ("counts", { w in
                w.out.append(UInt8(ascii: "{"))
                for (i, (k, v)) in counts.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }).enumerated() {
                    if i > 0 { w.out.append(UInt8(ascii: ",")) }
                    w.string(k)
                    w.out.append(UInt8(ascii: ":"))
                    w.int(v)
                }
                w.out.append(UInt8(ascii: "}"))
            }),
            ("diagnostics", { w in
                w.array(diagnostics) { w, d in
                    w.object([("field", { $0.string(d.field) }), ("message", { $0.string(d.message) }),
                              ("object", { $0.string(d.object) }), ("severity", { $0.string(d.severity) })])
                }
            }),
            ("groups", { w in
                w.array(groups) { w, g in
                    w.object([("family", { $0.string(g.family) }), ("id", { $0.int(g.id) }),
                              ("nodePort", g.nodePort.map { p in { $0.int(p) } }), ("owner", { $0.int(g.owner) }),
                              ("ownerName", { $0.string(g.ownerName) }), ("port", { $0.int(g.port) }),
                              ("portName", { $0.string(g.portName) }), ("protocol", { $0.string(g.proto) })])
                }
            }),
            ("inputs", { w in w.object([("digest", { $0.string(inputs.digest) }), ("objects", { $0.int(inputs.objects) })]) }),
            ("nodes", { w in
                w.array(nodes) { w, n in
                    w.object([("addresses", { w in w.array(n.addresses) { $0.string($1) } }), ("id", { $0.int(n.id) }),
                              ("name", { $0.string(n.name) }), ("object", { $0.bool(n.object) }),
                              ("zone", n.zone.map { z in { $0.string(z) } })])
                }
            }),
            ("services", { w in
                w.array(services) { w, s in
                    w.object([("affinityTimeout", s.affinityTimeout.map { t in { $0.int(t) } }),
                              ("externalTrafficPolicy", { $0.string(s.externalTrafficPolicy) }), ("id", { $0.int(s.id) }),
                              ("internalTrafficPolicy", { $0.string(s.internalTrafficPolicy) }), ("name", { $0.string(s.name) }),
                              ("namespace", { $0.string(s.namespace) }), ("type", { $0.string(s.type) })])
                }
            }),
            ("zones", { w in
                w.array(zones) { w, z in w.object([("id", { $0.int(z.id) }), ("name", { $0.string(z.name) })]) }
            }),
        ])
    }
}
