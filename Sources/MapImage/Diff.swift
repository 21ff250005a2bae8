/// A semantic comparison of two images, grouped by what a person cares about: each service (its
/// frontends, rules and the backends of every set) and each node. Ids are left out of the lines
/// so a renumbering alone is not reported as a change of behaviour.
public struct ImageDiff: Sendable {
    public struct Entity: Sendable, Equatable {
        public var name: String
        public var added: [String]
        public var removed: [String]
        /// Whether the entity exists only in the new (or only in the old) image.
        public var status: Status

        public enum Status: String, Sendable { case added, removed, changed }
    }

    public var entities: [Entity]
    public var oldDigest: String
    public var newDigest: String
    /// The clusters of either image, in their order: `render` groups entities by cluster.
    public var clusters: [String] = []

    public var isEmpty: Bool { entities.isEmpty && oldDigest == newDigest }

    public init(old: MapImage, new: MapImage) {
        oldDigest = old.header.digestHex
        newDigest = new.header.digestHex
        let a = ImageDiff.view(old.contents)
        let b = ImageDiff.view(new.contents)
        var result: [Entity] = []
        for name in Set(a.keys).union(b.keys).sorted() {
            let before = a[name] ?? []
            let after = b[name] ?? []
            if before == after { continue }
            let status: Entity.Status = a[name] == nil ? .added : b[name] == nil ? .removed : .changed
            result.append(Entity(name: name, added: after.subtracting(before).sorted(), removed: before.subtracting(after).sorted(), status: status))
        }
        entities = result
        for c in (old.contents.metadata.clusters ?? []) + (new.contents.metadata.clusters ?? []) where !clusters.contains(c.name) {
            clusters.append(c.name)
        }
    }

    /// The cluster an entity belongs to ("service east/default/web", "node east/worker-1",
    /// "local-redirect LocalRedirectPolicy east/dns"): the first path component of its name
    /// when that is a cluster of the images.
    func cluster(of entity: Entity) -> String? {
        guard !clusters.isEmpty, let qualified = entity.name.split(separator: " ").last,
              let c = qualified.split(separator: "/", maxSplits: 1).first, qualified.contains("/") else { return nil }
        return clusters.contains(String(c)) ? String(c) : c == "clusterset" ? "clusterset" : nil
    }

    /// Lines per entity describing its behaviour in one image.
    static func view(_ c: ImageContents) -> [String: Set<String>] {
        let names = ImageNames(c)
        var out: [String: Set<String>] = [:]
        func add(_ entity: String, _ line: String) { out[entity, default: []].insert(line) }

        for f in c.frontends {
            for (i, r) in f.rules.enumerated() {
                add("\(r.origin) \(names.owner(r))", "frontend \(names.frontend(f.key)) rule \(i): \(names.rule(r))")
            }
        }
        for v in c.vips {
            add("service \(names.service(v.serviceID))", "vip \(v.address)\(v.flags.contains(.rejectUnknownPort) ? " reject-unknown-port" : "")")
        }
        for s in c.sets {
            let g = names.groups[s.key.groupID]
            let entity = g.map { "\(names.services[$0.owner] != nil ? "service" : "policy") \($0.ownerName)" } ?? "group \(hex(s.key.groupID))"
            let flags = s.flags.contains(.terminating) ? " (terminating fallback)" : ""
            if s.backends.isEmpty { add(entity, "\(names.group(s.key.groupID)) \(names.scope(s.key))") }
            for b in s.backends {
                add(entity, "\(names.group(s.key.groupID)) \(names.scope(s.key))\(flags): backend \(names.backend(b))")
            }
        }
        for n in c.nodes {
            let name = names.node(n.id)
            add("node \(name)", "zone \(names.zone(n.zoneID))")
            if let v4 = n.ipv4 { add("node \(name)", "primary IPv4 \(v4)") }
            if let v6 = n.ipv6 { add("node \(name)", "primary IPv6 \(v6)") }
        }
        for a in c.nodeAddresses { add("node \(names.node(a.nodeID))", "address \(a.address)") }
        for cidr in c.serviceCIDRs { add("service CIDRs", "\(cidr)") }
        for r in c.sourceRanges { add("service \(names.service(r.ownerID))", "loadBalancerSourceRange \(r.prefix)") }
        for d in c.metadata.diagnostics {
            add("diagnostics", d.line)
        }
        return out
    }

    public func render() -> String {
        if isEmpty { return "images are identical (sha256 \(oldDigest))\n" }
        var lines = ["--- old sha256 \(oldDigest)", "+++ new sha256 \(newDigest)"]
        if entities.isEmpty {
            lines.append("  (same tables; only provenance metadata differs)")
        }
        // Several clusters: what belongs to no cluster first, then each cluster's, in order.
        var groups: [(String?, [Entity])] = [(nil, entities.filter { cluster(of: $0) == nil })]
        for c in clusters + ["clusterset"] {
            let mine = entities.filter { cluster(of: $0) == c }
            if !mine.isEmpty { groups.append((c, mine)) }
        }
        for (c, list) in groups {
          if let c { lines.append("# cluster \(c)") }
          for e in list {
            let mark = e.status == .added ? "+" : e.status == .removed ? "-" : "~"
            lines.append("\(mark) \(e.name)")
            for l in e.removed { lines.append("    - \(l)") }
            for l in e.added { lines.append("    + \(l)") }
          }
        }
        // Entity names and lines carry the images' own strings: each line stays one record.
        return lines.map(PrintableText.escape).joined(separator: "\n") + "\n"
    }
}
