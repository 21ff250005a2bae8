/// The canonical text form of an image: one line per record in key-byte order (slots nested
/// under their set), with names next to ids, so a reviewer reads a `diff` of two renderings.
/// Strings from the image are escaped (PrintableText): no name can forge a line.
public enum TextRenderer {
    public static func render(_ image: MapImage) -> String {
        let c = image.contents
        let names = ImageNames(c)
        var out: [String] = []
        let h = image.header
        out.append("# balancer map image: format \(h.formatVersion), datapath ABI \(h.abiVersion), \(h.totalSize) bytes")
        out.append("# sha256 \(h.digestHex)")
        out.append("# \(c.metadata.compiler); inputs: \(c.metadata.inputs.objects) objects, sha256 \(c.metadata.inputs.digest)")
        let counts = c.metadata.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        out.append("# objects: \(counts.isEmpty ? "none" : counts)")
        if let clusters = c.metadata.clusters, !clusters.isEmpty {
            out.append("# clusters: " + clusters.map { "\($0.id)=\($0.name)" }.joined(separator: " "))
        }
        out.append("# tables: " + h.sections.map { "\($0.name)=\($0.count)" }.joined(separator: " "))
        out.append("")
        for f in c.frontends {
            out.append("FRONTEND \(names.frontend(f.key)) id=\(hex(f.id))")
            for (i, r) in f.rules.enumerated() {
                out.append("  RULE \(i) \(names.rule(r))")
            }
        }
        for v in c.vips {
            let flags = v.flags.contains(.rejectUnknownPort) ? " reject-unknown-port" : ""
            out.append("VIP \(v.address) service=\(names.service(v.serviceID))\(flags)\(names.clusterSuffix(v.cluster))")
        }
        for cidr in c.serviceCIDRs {
            out.append("SERVICE_CIDR \(cidr) reject-unanswered")
        }
        for r in c.sourceRanges {
            out.append("SOURCE_RANGE \(r.prefix) service=\(names.service(r.ownerID))")
        }
        for a in c.nodeAddresses {
            out.append("NODE_ADDR \(a.address) node=\(names.node(a.nodeID))\(names.clusterSuffix(a.cluster))")
        }
        for n in c.nodes {
            let v4 = n.ipv4.map { "\($0)" } ?? "-"
            let v6 = n.ipv6.map { "\($0)" } ?? "-"
            let origin = n.flags.contains(.fromObject) ? "" : " (named by endpoints only)"
            out.append("NODE \(hex(n.id)) \(names.node(n.id)) zone=\(names.zone(n.zoneID)) ipv4=\(v4) ipv6=\(v6)\(origin)")
        }
        for s in c.sets {
            let flags = s.flags.contains(.terminating) ? " terminating-fallback" : ""
            out.append("SET \(names.group(s.key.groupID)) \(names.scope(s.key)) count=\(s.backends.count)\(flags)")
            for (i, b) in s.backends.enumerated() {
                out.append("  SLOT \(i) \(names.backend(b)) id=\(hex(b))")
            }
        }
        // The members table is the slots' inverse (set, backend → index), in its own key order.
        for s in c.sets {
            for (i, b) in s.backends.enumerated().sorted(by: { $0.element.byteSwapped < $1.element.byteSwapped }) {
                out.append("MEMBER \(names.group(s.key.groupID)) \(names.scope(s.key)) \(names.backend(b)) id=\(hex(b)) slot=\(i)")
            }
        }
        for b in c.backends {
            out.append("BACKEND \(hex(b.id)) \(b.address)/\(b.proto) node=\(names.node(b.nodeID))\(names.clusterSuffix(b.cluster))")
        }
        for d in c.metadata.diagnostics {
            out.append("DIAGNOSTIC \(d.line)")
        }
        // Names, labels and messages are the image's own strings: each line stays one record.
        return out.map(PrintableText.escape).joined(separator: "\n") + "\n"
    }
}
