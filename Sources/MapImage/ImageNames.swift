/// Names for the ids of one image, looked up once so rendering large images stays linear.
public struct ImageNames: Sendable {
    public let groups: [UInt32: GroupInfo]
    public let services: [UInt32: ServiceInfo]
    public let nodes: [UInt32: NodeInfo]
    public let zones: [UInt32: String]
    public let backends: [UInt32: Backend]
    public let clusters: [UInt8: String]

    public init(_ c: ImageContents) {
        groups = Dictionary(c.metadata.groups, firstBy: \.id)
        services = Dictionary(c.metadata.services, firstBy: \.id)
        nodes = Dictionary(c.metadata.nodes, firstBy: \.id)
        zones = Dictionary(firstWins: c.metadata.zones.map { ($0.id, $0.name) })
        backends = Dictionary(c.backends, firstBy: \.id)
        clusters = Dictionary(firstWins: (c.metadata.clusters ?? []).map { ($0.id, $0.name) })
    }

    /// A cluster's name ("cluster 7" when the metadata does not name it).
    public func cluster(_ id: UInt8) -> String { clusters[id] ?? "cluster \(id)" }

    /// A frontend key, its cluster named: "10.96.0.10:53/UDP cluster=east".
    public func frontend(_ key: FrontendKey) -> String {
        key.cluster == 0 ? "\(key)" : "\(key.unscoped) cluster=\(cluster(key.cluster))"
    }

    /// " cluster=east" for something of a cluster, "" otherwise.
    public func clusterSuffix(_ id: UInt8) -> String { id == 0 ? "" : " cluster=\(cluster(id))" }

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

    /// A node's zone ("-" for none).
    public func zone(_ id: UInt32) -> String { id == 0 ? "-" : zones[id] ?? hex(id) }

    public func service(_ id: UInt32) -> String { services[id]?.qualifiedName ?? hex(id) }

    public func scope(_ key: SetKey) -> String {
        switch key.scope {
        case .cluster: "cluster"
        case .serving: "serving"
        case .zone: "zone=\(zones[key.scopeID] ?? hex(key.scopeID))"
        case .node: "node=\(node(key.scopeID))"
        case .local: "local=\(node(key.scopeID))"
        case .gate: "gate=\(node(key.scopeID))"
        case .inCluster: "in-cluster=\(cluster(UInt8(truncatingIfNeeded: key.scopeID)))"
        case .outOfCluster: "out-of-cluster=\(cluster(UInt8(truncatingIfNeeded: key.scopeID)))"
        }
    }

    public func backend(_ id: UInt32) -> String {
        guard let b = backends[id] else { return "backend \(hex(id))" }
        return b.address.description
    }

    /// A rule as `inspect` and `diff` show it: what it does, its flags, and the values its
    /// flags use.
    public func rule(_ r: Rule) -> String {
        var parts = ["\(r.origin) \(group(r.groupID)) \(r.kind) \(r.action)"]
        parts.append("flags=\(r.flags)")
        if r.flags.contains(.affinity) { parts.append("affinity=\(r.affinityTimeout)s") }
        if r.rateLimit != 0 { parts.append("rate-limit=\(r.rateLimit)/s") }
        if r.nodePort != 0 { parts.append("nodePort=\(r.nodePort)") }
        if r.cluster != 0 { parts.append("cluster=\(cluster(r.cluster))") }
        return parts.joined(separator: " ")
    }
}

extension DiagnosticInfo {
    /// `severity object field: message`, as `inspect` and `diff` show it.
    var line: String { "\(severity) \(object)\(field.isEmpty ? "" : " \(field)"): \(message)" }
}
