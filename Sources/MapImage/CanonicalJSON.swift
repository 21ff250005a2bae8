/// The metadata section's canonical JSON, written by hand: keys in byte order, no insignificant
/// whitespace, integers in decimal, strings escaped as RFC 8259 requires and nothing more. It is a
/// byte-for-byte definition (images are compared by bytes), and it is much faster than a generic
/// encoder on a large cluster's ten thousand services.
public struct CanonicalJSONWriter {
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
                Hex.appendByte(b, to: &out)
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `s` as a JSON string literal, escaped as `string` escapes it (JSON log lines).
    public static func quoted(_ s: String) -> String {
        var w = CanonicalJSONWriter()
        w.string(s)
        return String(decoding: w.out, as: UTF8.self)
    }

    mutating func int<T: BinaryInteger>(_ v: T) {
        out.append(contentsOf: String(v).utf8)
    }

    mutating func bool(_ v: Bool) {
        if v { raw("true") } else { raw("false") }
    }
}

extension ImageMetadata {
    /// Members are written in byte order of their keys, by hand: this runs once per service and
    /// group of a large cluster, so no per-object allocation.
    func writeCanonical(_ w: inout CanonicalJSONWriter) {
        w.out.reserveCapacity(256 * (services.count + groups.count) + 4096)
        w.raw("{")
        if let clusters, !clusters.isEmpty {
            w.raw("\"clusters\":[")
            for (i, c) in clusters.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"id\":"); w.int(c.id)
                w.raw(",\"name\":"); w.string(c.name)
                w.raw("}")
            }
            w.raw("],")
        }
        w.raw("\"compiler\":")
        w.string(compiler)
        w.raw(",\"counts\":{")
        for (i, (k, v)) in counts.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }).enumerated() {
            if i > 0 { w.raw(",") }
            w.string(k)
            w.raw(":")
            w.int(v)
        }
        w.raw("},\"diagnostics\":[")
        for (i, d) in diagnostics.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"field\":"); w.string(d.field)
            w.raw(",\"message\":"); w.string(d.message)
            w.raw(",\"object\":"); w.string(d.object)
            w.raw(",\"severity\":"); w.string(d.severity)
            w.raw("}")
        }
        w.raw("],\"groups\":[")
        for (i, g) in groups.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"family\":"); w.string(g.family)
            w.raw(",\"id\":"); w.int(g.id)
            if let p = g.nodePort { w.raw(",\"nodePort\":"); w.int(p) }
            w.raw(",\"owner\":"); w.int(g.owner)
            w.raw(",\"ownerName\":"); w.string(g.ownerName)
            w.raw(",\"port\":"); w.int(g.port)
            w.raw(",\"portName\":"); w.string(g.portName)
            w.raw(",\"protocol\":"); w.string(g.proto)
            w.raw("}")
        }
        w.raw("],\"inputs\":{\"digest\":")
        w.string(inputs.digest)
        w.raw(",\"objects\":")
        w.int(inputs.objects)
        w.raw("},\"nodes\":[")
        for (i, n) in nodes.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"addresses\":[")
            for (j, a) in n.addresses.enumerated() {
                if j > 0 { w.raw(",") }
                w.string(a)
            }
            w.raw("],")
            if let c = n.cluster { w.raw("\"cluster\":"); w.string(c); w.raw(",") }
            w.raw("\"id\":"); w.int(n.id)
            w.raw(",\"name\":"); w.string(n.name)
            w.raw(",\"object\":"); w.bool(n.object)
            if let z = n.zone { w.raw(",\"zone\":"); w.string(z) }
            w.raw("}")
        }
        w.raw("],\"services\":[")
        for (i, sv) in services.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            if let t = sv.affinityTimeout { w.raw("\"affinityTimeout\":"); w.int(t); w.raw(",") }
            if let c = sv.cluster { w.raw("\"cluster\":"); w.string(c); w.raw(",") }
            if let a = sv.clusterAffinity { w.raw("\"clusterAffinity\":"); w.string(a); w.raw(",") }
            w.raw("\"externalTrafficPolicy\":"); w.string(sv.externalTrafficPolicy)
            w.raw(",\"id\":"); w.int(sv.id)
            w.raw(",\"internalTrafficPolicy\":"); w.string(sv.internalTrafficPolicy)
            w.raw(",\"name\":"); w.string(sv.name)
            w.raw(",\"namespace\":"); w.string(sv.namespace)
            w.raw(",\"type\":"); w.string(sv.type)
            w.raw("}")
        }
        w.raw("],\"zones\":[")
        for (i, z) in zones.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"id\":"); w.int(z.id)
            w.raw(",\"name\":"); w.string(z.name)
            w.raw("}")
        }
        w.raw("]}")
    }
}
