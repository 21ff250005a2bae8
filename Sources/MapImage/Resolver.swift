/// How a host that is not a node reaches backends (docs/deployment.md: a host that is not a node).
public enum HostMode: String, Sendable, CaseIterable, Codable {
    /// Backends as compiled: the host can route to pod addresses.
    case pod
    /// The backend's node address and the service's NodePort: edge hosts without a pod network.
    case nodeport
}

/// The Resolver's answer for one connect.
public struct Resolution: Sendable, Equatable {
    public enum Result: String, Sendable, Codable {
        case translate, reject, unreachable, passthrough
    }

    public var result: Result
    /// Every backend the connect may reach, sorted.
    public var backends: [SocketAddress]
    /// The frontend that matched (the wildcard one for a NodePort), if any.
    public var frontend: FrontendKey?
    /// The rule that decided, and its index in the frontend's rule list.
    public var rule: Rule?
    public var ruleIndex: Int?
    /// The backend set chosen.
    public var set: SetKey?
    /// One line a person reads: why this answer.
    public var reason: String

    public init(result: Result, backends: [SocketAddress] = [], frontend: FrontendKey? = nil, rule: Rule? = nil,
                ruleIndex: Int? = nil, set: SetKey? = nil, reason: String) {
        self.result = result
        self.backends = backends
        self.frontend = frontend
        self.rule = rule
        self.ruleIndex = ruleIndex
        self.set = set
        self.reason = reason
    }
}

public struct ResolverError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A Swift model of the datapath's decision over an image: "where would a connect from this
/// client to this address go?". The kernel programs must agree with it; tests compare the two.
///
/// The steps are the datapath's, in its order: exact frontend; a ClusterIP's unknown port is
/// refused; a node address consults the NodePort wildcard of its family; an address inside a
/// service CIDR that none of these answered is refused; anything else passes. A LoadBalancer
/// frontend with source ranges refuses a client outside them, or whose address is unknown.
/// Within a frontend, rules are tried in order; a rule that cannot serve here and may fall
/// through hands over to the next one.
public struct Resolver: Sendable {
    public let contents: ImageContents
    private let frontends: [FrontendKey: Frontend]
    private let vips: [IPAddress: VIP]
    private let nodeAddresses: [IPAddress: NodeAddress]
    private let nodes: [UInt32: ImageNode]
    private let sets: [SetKey: BackendSet]
    private let backends: [UInt32: Backend]
    private let ranges: [UInt32: [IPPrefix]]

    public init(_ contents: ImageContents) {
        ranges = Dictionary(grouping: contents.sourceRanges, by: \.ownerID).mapValues { $0.map(\.prefix) }
        self.contents = contents
        frontends = Dictionary(contents.frontends, firstBy: \.key)
        vips = Dictionary(contents.vips, firstBy: \.address)
        nodeAddresses = Dictionary(firstWins: contents.nodeAddresses.map { ($0.address, $0) })
        nodes = Dictionary(contents.nodes, firstBy: \.id)
        sets = Dictionary(contents.sets, firstBy: \.key)
        backends = Dictionary(contents.backends, firstBy: \.id)
    }

    /// The node id of a node name in this image, or an error naming the known nodes.
    public func nodeID(named name: String) throws(ResolverError) -> UInt32 {
        try NodeInfo.id(named: name, in: contents.metadata.nodes)
    }

    /// The id of a cluster named in this image's metadata, or an error naming the known ones.
    public func clusterID(named name: String) throws(ResolverError) -> UInt8 {
        if let c = contents.metadata.cluster(named: name) { return c.id }
        let known = (contents.metadata.clusters ?? []).map(\.name)
        throw ResolverError(message: known.isEmpty
            ? "cluster \"\(PrintableText.escape(name))\": this image names no clusters (it was compiled without --cluster)"
            : "cluster \"\(PrintableText.escape(name))\" is not in this image (known: \(known.map(PrintableText.escape).joined(separator: ", ")))")
    }

    /// Resolves a connect to `destination` over `proto` from node `nodeID` (0: a host that is not a
    /// node) of cluster `cluster` (0: outside every cluster), by a client whose address is `from`
    /// (what loadBalancerSourceRanges are checked against; nil: unknown, as a network namespace the
    /// loader has not seen). Backends of a cluster in `clusterModes` are reached in its mode,
    /// others in `hostMode`.
    public func resolve(_ destination: SocketAddress, proto: TransportProtocol, nodeID: UInt32 = 0, hostMode: HostMode = .pod,
                        from client: IPAddress? = nil, cluster: UInt8 = 0, clusterModes: [UInt8: HostMode] = [:]) -> Resolution {
        let ctx = Client(nodeID: nodeID, cluster: cluster, hostMode: hostMode, clusterModes: clusterModes, address: client)
        var key = FrontendKey(address: destination.address, port: destination.port, proto: proto, cluster: cluster)
        var found = cluster != 0 ? frontends[key] : nil
        if found == nil {
            key.cluster = 0
            found = frontends[key]
        }
        // A frontend none of whose rules is for this client (another cluster's, a policy of
        // other nodes), none handing over: as if absent, the address's own refusals apply.
        var notes: [String] = []
        if let f = found, let r = evaluate(f, ctx, notes: &notes) { return r }
        let skipped = prefix(notes)
        if let vip = vips[destination.address], vip.refuses(forCluster: cluster) {
            let owner = contents.metadata.services.first { $0.id == vip.serviceID }?.qualifiedName ?? "service \(vip.serviceID)"
            return Resolution(result: .reject, frontend: found?.key,
                              reason: skipped + "\(destination.address) is the ClusterIP of \(owner), which has no port \(destination.port)/\(proto)"
                                  + (found == nil ? "" : " for this client"))
        }
        if found != nil {
            if let cidr = contents.serviceCIDRs.filter({ $0.contains(destination.address) }).max(by: { $0.prefixLength < $1.prefixLength }) {
                return Resolution(result: .reject, frontend: found?.key,
                                  reason: skipped + "\(destination.address) is inside the service CIDR \(cidr) and no rule is for this client: refused, as kube-proxy drops it (ECONNREFUSED)")
            }
            return Resolution(result: .passthrough, frontend: found?.key, reason: skipped + "no rule applies; the connect is left alone")
        }
        var notService = "\(destination) is not a service address"
        if let na = nodeAddresses[destination.address] {
            let wildcard = FrontendKey(address: .wildcard(destination.address.family), port: destination.port, proto: proto, cluster: na.cluster)
            if let f = frontends[wildcard] {
                var notes: [String] = []
                return evaluate(f, ctx, notes: &notes)
                    ?? Resolution(result: .passthrough, frontend: f.key, reason: prefix(notes) + "no rule applies; the connect is left alone")
            }
            let of = na.cluster == 0 ? "" : " of cluster \(contents.metadata.clusterName(na.cluster))"
            notService = "\(destination.address) is a node address\(of) but no service\(of) has NodePort \(destination.port)/\(proto)"
        }
        if let cidr = contents.serviceCIDRs.filter({ $0.contains(destination.address) }).max(by: { $0.prefixLength < $1.prefixLength }) {
            return Resolution(result: .reject, reason: "\(destination.address) is inside the service CIDR \(cidr) but no service answers \(destination.port)/\(proto) there: refused, as kube-proxy drops it (ECONNREFUSED)")
        }
        return Resolution(result: .passthrough, reason: notService)
    }

    /// Who connects, and how it reaches backends.
    struct Client {
        var nodeID: UInt32
        var cluster: UInt8
        var hostMode: HostMode
        var clusterModes: [UInt8: HostMode]
        var address: IPAddress?

        /// How backends of cluster `c` are reached (`hostMode` for cluster 0 and clusters given none).
        func mode(_ c: UInt8) -> HostMode { c == 0 ? hostMode : clusterModes[c] ?? hostMode }
    }

    /// The frontend's rules in order; nil when none of them is for this client and none handed
    /// over (the datapath then treats the frontend as absent), with why in `notes`.
    private func evaluate(_ f: Frontend, _ ctx: Client, notes: inout [String]) -> Resolution? {
        let nodeID = ctx.nodeID
        // A rule that applied here handed over (the datapath counts it as a fallthrough).
        var handedOver = false
        for (i, rule) in f.rules.enumerated() {
            let name = ownerName(rule)
            if rule.flags.contains(.clusterScoped) && ctx.cluster != 0 && ctx.cluster != rule.cluster {
                notes.append("\(rule.origin) \(name) serves cluster \(contents.metadata.clusterName(rule.cluster))'s clients only")
                continue
            }
            if rule.flags.contains(.nodeGated) {
                let applies = nodeID == 0 ? rule.flags.contains(.outCluster)
                                          : sets[SetKey(groupID: rule.groupID, scope: .gate, scopeID: nodeID)] != nil
                if !applies {
                    notes.append("\(rule.origin) \(name) does not apply on this host")
                    continue
                }
            }
            // Host mode nodeport reaches pods only through a NodePort; node and external
            // addresses (DIRECT rules) are reached as they are.
            if ctx.mode(rule.cluster) == .nodeport && rule.action == .translate && rule.nodePort == 0 && !rule.flags.contains(.direct)
                && rule.flags.contains(.fallThrough) {
                notes.append("\(rule.origin) \(name) reaches pods, which host mode nodeport cannot")
                handedOver = true
                continue
            }
            if rule.flags.contains(.sourceRanges) {
                // Ranges of the destination's family only, as kube-proxy maps them.
                let family = ranges[rule.ownerID, default: []].filter { $0.address.isIPv4 == f.key.address.isIPv4 }
                let allowed = family.map(\.description).joined(separator: ", ")
                guard let client = ctx.address else {
                    return Resolution(result: .reject, frontend: f.key, rule: rule, ruleIndex: i,
                                      reason: prefix(notes) + "\(name) accepts only clients in \(allowed) (loadBalancerSourceRanges); the client's address is unknown (give --from)")
                }
                guard family.contains(where: { $0.contains(client) }) else {
                    return Resolution(result: .reject, frontend: f.key, rule: rule, ruleIndex: i,
                                      reason: prefix(notes) + "\(client) is outside \(name)'s loadBalancerSourceRanges \(allowed): refused")
                }
                notes.append("\(client) is inside \(name)'s loadBalancerSourceRanges")
            }
            if rule.action == .reject {
                if rule.flags.contains(.fallThrough) { notes.append("\(rule.origin) \(name) has no endpoint"); handedOver = true; continue }
                return Resolution(result: .reject, frontend: f.key, rule: rule, ruleIndex: i,
                                  reason: prefix(notes) + "\(name) has no usable endpoint")
            }
            var chosen: BackendSet?
            if rule.flags.contains(.localOnly) {
                if nodeID != 0 { chosen = sets[SetKey(groupID: rule.groupID, scope: .local, scopeID: nodeID)] }
                if chosen == nil {
                    if rule.flags.contains(.fallThrough) {
                        notes.append("\(rule.origin) \(name) has no endpoint on this host")
                        handedOver = true
                        continue
                    }
                    return Resolution(result: .unreachable, frontend: f.key, rule: rule, ruleIndex: i,
                                      reason: prefix(notes) + "\(name) has no endpoint on this \(nodeID == 0 ? "host (not a node)" : "node") and its traffic policy is Local")
                }
            } else {
                if rule.flags.contains(.topology) && nodeID != 0 {
                    chosen = sets[SetKey(groupID: rule.groupID, scope: .node, scopeID: nodeID)]
                    if chosen == nil, let zone = nodes[nodeID]?.zoneID, zone != 0 {
                        chosen = sets[SetKey(groupID: rule.groupID, scope: .zone, scopeID: zone)]
                    }
                }
                if chosen == nil && ctx.cluster != 0 && rule.flags.contains(.preferLocalCluster) {
                    chosen = sets[SetKey(groupID: rule.groupID, scope: .inCluster, scopeID: UInt32(ctx.cluster))]
                    if chosen == nil { notes.append("no endpoint of \(name) in cluster \(contents.metadata.clusterName(ctx.cluster)) (cluster affinity local)") }
                }
                if chosen == nil && ctx.cluster != 0 && rule.flags.contains(.preferRemoteCluster) {
                    chosen = sets[SetKey(groupID: rule.groupID, scope: .outOfCluster, scopeID: UInt32(ctx.cluster))]
                    if chosen == nil { notes.append("no endpoint of \(name) outside cluster \(contents.metadata.clusterName(ctx.cluster)) (cluster affinity remote)") }
                }
                if chosen == nil { chosen = sets[SetKey(groupID: rule.groupID, scope: .cluster, scopeID: 0)] }
                guard chosen != nil else {
                    if rule.flags.contains(.fallThrough) { notes.append("\(rule.origin) \(name) has no endpoint"); handedOver = true; continue }
                    return Resolution(result: .reject, frontend: f.key, rule: rule, ruleIndex: i, reason: prefix(notes) + "\(name) has no backend set")
                }
            }
            guard let set = chosen else { continue }
            let direct = rule.flags.contains(.direct)
            if !direct && rule.nodePort == 0 && ctx.mode(rule.cluster) == .nodeport {
                let of = rule.cluster == 0 ? "" : " (cluster \(contents.metadata.clusterName(rule.cluster))'s mode)"
                return Resolution(result: .reject, frontend: f.key, rule: rule, ruleIndex: i, set: set.key,
                                  reason: prefix(notes) + "\(name) has no NodePort, which host mode nodeport\(of) needs")
            }
            var addresses: [SocketAddress] = []
            var withoutNodePort: Set<String> = []
            for id in set.backends {
                guard let b = backends[id] else { continue }
                if direct || ctx.mode(b.cluster) == .pod {
                    addresses.append(b.address)
                    continue
                }
                guard rule.nodePort != 0 else {
                    withoutNodePort.insert(contents.metadata.clusterName(b.cluster))
                    continue
                }
                let node = nodes[b.nodeID]
                if let a = b.address.address.isIPv4 ? node?.ipv4 : node?.ipv6 {
                    addresses.append(SocketAddress(address: a, port: rule.nodePort))
                }
            }
            addresses = Array(Set(addresses)).sorted()
            if !withoutNodePort.isEmpty {
                notes.append("endpoints of \(withoutNodePort.sorted().joined(separator: ", ")) (host mode nodeport) are left out: \(name) has no single NodePort")
            }
            if addresses.isEmpty {
                return Resolution(result: .unreachable, frontend: f.key, rule: rule, ruleIndex: i, set: set.key,
                                  reason: prefix(notes) + "no node address known for \(name)'s endpoints (host mode nodeport)")
            }
            let scope = set.key.scope == .cluster ? "cluster" : "\(set.key.scope) \(scopeName(set.key))"
            let terminating = set.flags.contains(.terminating) ? ", terminating fallback" : ""
            return Resolution(result: .translate, backends: addresses, frontend: f.key, rule: rule, ruleIndex: i, set: set.key,
                              reason: prefix(notes) + "\(rule.origin) \(name) \(rule.kind), \(scope) set\(terminating)")
        }
        guard handedOver else { return nil }
        return Resolution(result: .passthrough, frontend: f.key, reason: prefix(notes) + "no rule applies; the connect is left alone")
    }

    private func prefix(_ notes: [String]) -> String { notes.isEmpty ? "" : notes.joined(separator: "; ") + "; " }

    public func ownerName(_ rule: Rule) -> String {
        if let g = contents.metadata.groups.first(where: { $0.id == rule.groupID }) { return g.label }
        return "group \(rule.groupID)"
    }

    func scopeName(_ key: SetKey) -> String {
        switch key.scope {
        case .zone: contents.metadata.zones.first { $0.id == key.scopeID }?.name ?? "\(key.scopeID)"
        case .node, .local, .gate: contents.metadata.node(id: key.scopeID)?.name ?? "\(key.scopeID)"
        case .cluster, .serving: ""
        case .inCluster, .outOfCluster: contents.metadata.clusterName(UInt8(truncatingIfNeeded: key.scopeID))
        }
    }
}
