import FoundationEssentials

/// Names for the ids of one image, looked up once so rendering large images stays linear.
public struct ImageNames: Sendable {
    public let groups: [UInt32: GroupInfo]
    public let services: [UInt32: ServiceInfo]
    public let nodes: [UInt32: NodeInfo]
    public let zones: [UInt32: String]
    public let backends: [UInt32: Backend]

    public init(_ c: ImageContents) {
        groups = Dictionary(c.metadata.groups.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        services = Dictionary(c.metadata.services.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        nodes = Dictionary(c.metadata.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        zones = Dictionary(c.metadata.zones.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        backends = Dictionary(c.backends.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func group(_ id: UInt32) -> String {
        guard let g = groups[id] else { return "group \(hex(id))" }
        return "\(g.label) \(g.family)"
    }

    public func owner(_ rule: Rule) -> String {
        if let g = groups[rule.groupID] { return g.ownerName }
        if let s = services[rule.ownerID] { return s.qualifiedName }
        return "owner \(hex(rule.ownerID))"
    }

    public func node(_ id: UInt32) -> String { id == 0 ? "-" : nodes[id]?.name ?? hex(id) }

    public func scope(_ key: SetKey) -> String {
        switch key.scope {
        case .cluster: "cluster"
        case .zone: "zone=\(zones[key.scopeID] ?? hex(key.scopeID))"
        case .node: "node=\(node(key.scopeID))"
        case .local: "local=\(node(key.scopeID))"
        case .gate: "gate=\(node(key.scopeID))"
        }
    }

    public func backend(_ id: UInt32) -> String {
        guard let b = backends[id] else { return "backend \(hex(id))" }
        return b.address.description
    }
}

public func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

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
        out.append("# tables: " + h.sections.map { "\($0.name)=\($0.count)" }.joined(separator: " "))
        out.append("")
        for f in c.frontends {
            out.append("FRONTEND \(f.key) id=\(hex(f.id))")
            for (i, r) in f.rules.enumerated() {
                out.append("  RULE \(i) \(ruleText(r, names))")
            }
        }
        for v in c.vips {
            let owner = names.services[v.serviceID]?.qualifiedName ?? hex(v.serviceID)
            let flags = v.flags.contains(.rejectUnknownPort) ? " reject-unknown-port" : ""
            out.append("VIP \(v.address) service=\(owner)\(flags)")
        }
        for a in c.nodeAddresses {
            out.append("NODE_ADDR \(a.address) node=\(names.node(a.nodeID))")
        }
        for n in c.nodes {
            let zone = n.zoneID == 0 ? "-" : names.zones[n.zoneID] ?? hex(n.zoneID)
            let v4 = n.ipv4.map { "\($0)" } ?? "-"
            let v6 = n.ipv6.map { "\($0)" } ?? "-"
            let origin = n.flags.contains(.fromObject) ? "" : " (named by endpoints only)"
            out.append("NODE \(hex(n.id)) \(names.node(n.id)) zone=\(zone) ipv4=\(v4) ipv6=\(v6)\(origin)")
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
            out.append("BACKEND \(hex(b.id)) \(b.address)/\(b.proto) node=\(names.node(b.nodeID))")
        }
        for d in c.metadata.diagnostics {
            out.append("DIAGNOSTIC \(d.severity) \(d.object)\(d.field.isEmpty ? "" : " \(d.field)"): \(d.message)")
        }
        // Names, labels and messages are the image's own strings: each line stays one record.
        return out.map(PrintableText.escape).joined(separator: "\n") + "\n"
    }

    static func ruleText(_ r: Rule, _ names: ImageNames) -> String {
        var parts = ["\(r.origin) \(names.group(r.groupID)) \(r.kind) \(r.action)"]
        parts.append("flags=\(r.flags)")
        if r.flags.contains(.affinity) { parts.append("affinity=\(r.affinityTimeout)s") }
        if r.rateLimit != 0 { parts.append("rate-limit=\(r.rateLimit)/s") }
        if r.nodePort != 0 { parts.append("nodePort=\(r.nodePort)") }
        return parts.joined(separator: " ")
    }
}

/// The JSON form of `inspect`: the same content as the text form, structured.
public enum JSONRenderer {
    struct Document: Encodable {
        var format: UInt16
        var abi: UInt32
        var size: Int
        var sha256: String
        var tables: [String: Int]
        var metadata: ImageMetadata
        var frontends: [FrontendView]
        var vips: [VIPView]
        var nodeAddresses: [NodeAddrView]
        var nodes: [NodeView]
        var sets: [SetView]
        var backends: [BackendView]
    }

    struct FrontendView: Encodable {
        var frontend: String
        var address: String
        var port: UInt16
        var `protocol`: String
        var id: UInt32
        var rules: [RuleView]
    }

    struct RuleView: Encodable {
        var origin: String
        var kind: String
        var action: String
        var group: UInt32
        var groupName: String
        var owner: UInt32
        var flags: [String]
        var affinityTimeout: UInt32?
        var rateLimit: UInt32?
        var nodePort: UInt16?
    }

    struct VIPView: Encodable {
        var address: String
        var service: UInt32
        var serviceName: String
        var rejectUnknownPort: Bool
    }

    struct NodeAddrView: Encodable {
        var address: String
        var node: UInt32
        var nodeName: String
    }

    struct NodeView: Encodable {
        var id: UInt32
        var name: String
        var zone: UInt32
        var zoneName: String?
        var ipv4: String?
        var ipv6: String?
        var object: Bool
    }

    struct SetView: Encodable {
        var group: UInt32
        var groupName: String
        var scope: String
        var scopeID: UInt32
        var scopeName: String
        var terminating: Bool
        var backends: [String]
        var backendIDs: [UInt32]
    }

    struct BackendView: Encodable {
        var id: UInt32
        var address: String
        var `protocol`: String
        var node: UInt32
        var nodeName: String
    }

    public static func render(_ image: MapImage) -> String {
        let c = image.contents
        let names = ImageNames(c)
        let doc = Document(
            format: image.header.formatVersion, abi: image.header.abiVersion, size: image.header.totalSize,
            sha256: image.header.digestHex,
            tables: Dictionary(image.header.sections.map { ($0.name, $0.count) }, uniquingKeysWith: { a, _ in a }),
            metadata: c.metadata,
            frontends: c.frontends.map { f in
                FrontendView(frontend: f.key.description, address: f.key.isNodePortWildcard ? "*" : f.key.address.description,
                             port: f.key.port, protocol: f.key.proto.description, id: f.id,
                             rules: f.rules.map { r in
                                 RuleView(origin: r.origin.description, kind: r.kind.description, action: r.action.description,
                                          group: r.groupID, groupName: names.group(r.groupID), owner: r.ownerID, flags: r.flags.names,
                                          affinityTimeout: r.flags.contains(.affinity) ? r.affinityTimeout : nil,
                                          rateLimit: r.rateLimit == 0 ? nil : r.rateLimit, nodePort: r.nodePort == 0 ? nil : r.nodePort)
                             })
            },
            vips: c.vips.map { VIPView(address: $0.address.description, service: $0.serviceID,
                                       serviceName: names.services[$0.serviceID]?.qualifiedName ?? "",
                                       rejectUnknownPort: $0.flags.contains(.rejectUnknownPort)) },
            nodeAddresses: c.nodeAddresses.map { NodeAddrView(address: $0.address.description, node: $0.nodeID, nodeName: names.node($0.nodeID)) },
            nodes: c.nodes.map { NodeView(id: $0.id, name: names.node($0.id), zone: $0.zoneID, zoneName: names.zones[$0.zoneID],
                                          ipv4: $0.ipv4?.description, ipv6: $0.ipv6?.description, object: $0.flags.contains(.fromObject)) },
            sets: c.sets.map { s in
                SetView(group: s.key.groupID, groupName: names.group(s.key.groupID), scope: s.key.scope.description,
                        scopeID: s.key.scopeID, scopeName: names.scope(s.key), terminating: s.flags.contains(.terminating),
                        backends: s.backends.map { names.backend($0) }, backendIDs: s.backends)
            },
            backends: c.backends.map { BackendView(id: $0.id, address: $0.address.description, protocol: $0.proto.description,
                                                   node: $0.nodeID, nodeName: names.node($0.nodeID)) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(doc) else { return "{}\n" }
        return PrintableText.escapeJSON(String(decoding: data, as: UTF8.self)) + "\n"
    }
}
