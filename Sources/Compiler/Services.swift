import MapImage

/// Kubernetes Service semantics, compiled (kubernetes-semantics.md §2). Everything that does not
/// depend on the node or the moment is decided here; what depends on the node (its own
/// endpoints, topology hints) is compiled for every node and keyed by node or zone id, so one image
/// serves every node and every out-of-cluster host.
struct ServiceCompiler {
    let snapshot: Snapshot
    var diagnostics: [Diagnostic] = []

    // Results
    var frontends: [FrontendKey: (Frontend, precedence: ServicePrecedence)] = [:]
    var vips: [IPAddress: (VIP, precedence: ServicePrecedence)] = [:]
    var sets: [PendingSet] = []
    var groups: [GroupInfo] = []
    var services: [ServiceInfo] = []
    var groupIDs: [String: UInt32] = [:]

    // Node and zone catalogue
    let nodes: NodeCatalogue
    /// Backends interned once: index → identity and node, so later stages work on integers.
    var backendIndex: [BackendIdentity: Int32] = [:]
    var backendList: [BackendIdentity] = []
    var backendNode: [Int32] = []
    /// Node names interned: Node objects first (sorted), then names only endpoints mention.
    var nodeNames: [String] = []
    var nodeIndexByName: [String: Int32] = [:]

    mutating func internNode(_ name: String) -> Int32 {
        if let i = nodeIndexByName[name] { return i }
        let i = Int32(nodeNames.count)
        nodeIndexByName[name] = i
        nodeNames.append(name)
        return i
    }

    mutating func intern(_ b: BackendIdentity) -> Int32 {
        if let i = backendIndex[b] { return i }
        let i = Int32(backendList.count)
        backendIndex[b] = i
        backendList.append(b)
        backendNode.append(-1)
        return i
    }

    init(snapshot: Snapshot) {
        self.snapshot = snapshot
        var d: [Diagnostic] = []
        nodes = NodeCatalogue(snapshot: snapshot, diagnostics: &d)
        diagnostics = d
        for name in nodes.entries.keys.sorted() { _ = internNode(name) }
    }

    /// A set before backend ids exist: backends by identity.
    struct PendingSet {
        var groupID: UInt32
        var scope: SetScope
        var scopeName: String  // node or zone name; "" for cluster
        var flags: SetFlags
        /// Interned backend indices, in backend-identity order.
        var backends: [Int32]
    }

    /// Which service wins a frontend both claim: the older (creationTimestamp), then by name.
    struct ServicePrecedence: Comparable {
        var timestamp: String
        var name: String

        static func < (a: ServicePrecedence, b: ServicePrecedence) -> Bool {
            let ta = a.timestamp.isEmpty ? "~" : a.timestamp
            let tb = b.timestamp.isEmpty ? "~" : b.timestamp
            return (ta, a.name) < (tb, b.name)
        }
    }

    /// A merged endpoint of one service port and family.
    struct MergedEndpoint {
        var backend: Int32
        var ready: Bool
        var serving: Bool
        var terminating: Bool
        var node: Int32
        var forZones: [String]
        var forNodes: [String]
    }

    mutating func compileServices(serviceIDs: [String: UInt32]) {
        var slicesByService: [String: [EndpointSlice]] = [:]
        for s in snapshot.endpointSlices {
            guard let svc = s.serviceName, !svc.isEmpty else {
                diagnostics.append(Diagnostic(.warning, file: s.source.file, line: s.source.line, column: s.source.column,
                                              object: "EndpointSlice \(s.meta.namespace)/\(s.meta.name)", field: "metadata.labels",
                                              message: "no kubernetes.io/service-name label: the slice belongs to no service and is ignored"))
                continue
            }
            slicesByService["\(s.meta.namespace)/\(svc)", default: []].append(s)
        }
        for k in slicesByService.keys { slicesByService[k]?.sort { $0.meta.name < $1.meta.name } }

        // Group ids: one per service port and family, with the stable-id collision rule.
        var groupIdentities: [String] = []
        for svc in snapshot.services where skipReason(svc) == nil {
            let name = "\(svc.meta.namespace)/\(svc.meta.name)"
            for port in svc.ports where port.proto.transport != nil {
                for ip in svc.clusterIPs { groupIdentities.append(groupIdentity(name, port, ip.family)) }
            }
        }
        groupIDs = StableID.assign(groupIdentities, hash: { StableID.hash($0) })

        for svc in snapshot.services.sorted(by: { ($0.meta.namespace, $0.meta.name) < ($1.meta.namespace, $1.meta.name) }) {
            let name = "\(svc.meta.namespace)/\(svc.meta.name)"
            let object = "Service \(name)"
            if let reason = skipReason(svc) {
                note(svc, object, "", "not proxied: \(reason)")
                continue
            }
            guard let serviceID = serviceIDs[name] else { continue }
            services.append(ServiceInfo(id: serviceID, namespace: svc.meta.namespace, name: svc.meta.name, type: svc.type.rawValue,
                                        internalTrafficPolicy: svc.internalTrafficPolicy.rawValue,
                                        externalTrafficPolicy: svc.externalTrafficPolicy.rawValue, affinityTimeout: svc.affinityTimeout))
            let precedence = ServicePrecedence(timestamp: svc.meta.creationTimestamp, name: name)
            for ip in svc.clusterIPs {
                claimVIP(VIP(address: ip, serviceID: serviceID, flags: .rejectUnknownPort), precedence, object)
            }
            let slices = slicesByService[name] ?? []
            for (index, port) in svc.ports.enumerated() {
                guard let transport = port.proto.transport else {
                    note(svc, object, "spec.ports[\(index)]", "port \(port.port)/SCTP skipped: SCTP is not translated at the socket layer")
                    continue
                }
                for clusterIP in svc.clusterIPs {
                    compileGroup(svc, name: name, object: object, serviceID: serviceID, precedence: precedence, port: port,
                                 transport: transport, clusterIP: clusterIP, slices: slices)
                }
            }
            // Addresses of a family the service has no cluster IP of are not served (kube-proxy
            // does no family translation).
            let families = Set(svc.clusterIPs.map(\.family))
            for ip in svc.externalIPs where !families.contains(ip.family) {
                note(svc, object, "spec.externalIPs", "\(ip) skipped: the service has no \(ip.family.rawValue) cluster IP")
            }
            if svc.type == .loadBalancer {
                for (i, ing) in svc.ingress.enumerated() {
                    let field = "status.loadBalancer.ingress[\(i)]"
                    if ing.ip == nil {
                        note(svc, object, field, "hostname-only ingress \(ing.hostname ?? "") skipped: no IP to match")
                    } else if ing.ipMode == "Proxy" {
                        note(svc, object, field, "ingress \(ing.ip.map { "\($0)" } ?? "") skipped: ipMode Proxy delivers to node or pod addresses")
                    } else if let ip = ing.ip, !families.contains(ip.family) {
                        note(svc, object, field, "\(ip) skipped: the service has no \(ip.family.rawValue) cluster IP")
                    }
                }
            }
        }
    }

    func groupIdentity(_ service: String, _ port: ServicePort, _ family: IPFamily) -> String {
        "group/\(service)/\(port.name)/\(port.proto.rawValue)/\(family.rawValue)"
    }

    func skipReason(_ svc: Service) -> String? {
        if svc.type == .externalName { return "type ExternalName" }
        if let v = svc.meta.labels["service.kubernetes.io/service-proxy-name"] {
            return "label service.kubernetes.io/service-proxy-name=\(v) (another proxy serves it)"
        }
        if svc.meta.labels["service.kubernetes.io/headless"] != nil { return "label service.kubernetes.io/headless" }
        if svc.headless { return "headless (no cluster IP)" }
        return nil
    }

    mutating func note(_ svc: Service, _ object: String, _ field: String, _ message: String) {
        diagnostics.append(Diagnostic(.note, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                      object: object, field: field, message: message))
    }

    mutating func warn(_ svc: Service, _ object: String, _ field: String, _ message: String) {
        diagnostics.append(Diagnostic(.warning, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                      object: object, field: field, message: message))
    }

    mutating func claimVIP(_ vip: VIP, _ precedence: ServicePrecedence, _ object: String) {
        if let (existing, other) = vips[vip.address] {
            let (winner, loser) = precedence < other ? ((vip, precedence), (existing, other)) : ((existing, other), (vip, precedence))
            vips[vip.address] = winner
            diagnostics.append(Diagnostic(.warning, file: nil, object: "Service \(loser.1.name)", field: "spec.clusterIPs",
                                          message: "cluster IP \(vip.address) is also claimed by Service \(winner.1.name), which is older and keeps it"))
            return
        }
        vips[vip.address] = (vip, precedence)
    }

    mutating func claimFrontend(_ f: Frontend, _ precedence: ServicePrecedence) {
        if let (existing, other) = frontends[f.key] {
            let (winner, loser) = precedence < other ? ((f, precedence), (existing, other)) : ((existing, other), (f, precedence))
            frontends[f.key] = winner
            diagnostics.append(Diagnostic(.warning, file: nil, object: "Service \(loser.1.name)", field: "",
                                          message: "frontend \(f.key) is also claimed by Service \(winner.1.name), which is older and keeps it"))
            return
        }
        frontends[f.key] = (f, precedence)
    }

    mutating func compileGroup(_ svc: Service, name: String, object: String, serviceID: UInt32, precedence: ServicePrecedence,
                               port: ServicePort, transport: TransportProtocol, clusterIP: IPAddress, slices: [EndpointSlice]) {
        let family = clusterIP.family
        guard let groupID = groupIDs[groupIdentity(name, port, family)] else { return }
        groups.append(GroupInfo(id: groupID, owner: serviceID, ownerName: name, portName: port.name, port: port.port,
                                proto: port.proto.rawValue, family: family.rawValue, nodePort: port.nodePort))

        let endpoints = merge(svc, port: port, transport: transport, family: family, slices: slices)

        // Cluster set: ready endpoints, else serving+terminating ones (KEP-1669).
        let ready = endpoints.filter(\.ready)
        var cluster = ready
        var clusterFlags: SetFlags = []
        if cluster.isEmpty {
            cluster = endpoints.filter { $0.serving && $0.terminating }
            if !cluster.isEmpty { clusterFlags = .terminating }
        }
        let hasEndpoints = !cluster.isEmpty
        if hasEndpoints {
            addSet(groupID, .cluster, "", clusterFlags, cluster)
        }

        // Local sets (internalTrafficPolicy=Local): the node's ready endpoints, else its
        // serving+terminating ones. Never filtered by topology.
        let itpLocal = svc.internalTrafficPolicy == .local
        if itpLocal && hasEndpoints {
            var byNode: [Int32: [MergedEndpoint]] = [:]
            for e in endpoints where e.node >= 0 { byNode[e.node, default: []].append(e) }
            for (index, eps) in byNode.sorted(by: { nodeNames[Int($0.key)] < nodeNames[Int($1.key)] }) {
                let node = nodeNames[Int(index)]
                let r = eps.filter(\.ready)
                if !r.isEmpty {
                    addSet(groupID, .local, node, [], r)
                } else {
                    let t = eps.filter { $0.serving && $0.terminating }
                    if !t.isEmpty { addSet(groupID, .local, node, .terminating, t) }
                }
            }
        }

        // Topology hints, from ready endpoints only, and only when every ready endpoint has them.
        var topology = false
        if !ready.isEmpty {
            if ready.allSatisfy({ !$0.forNodes.isEmpty }) {
                for node in Set(ready.flatMap(\.forNodes)).sorted() {
                    let eps = ready.filter { $0.forNodes.contains(node) }
                    if eps.count != ready.count { addSet(groupID, .node, node, [], eps) }
                    topology = true
                }
            }
            if ready.allSatisfy({ !$0.forZones.isEmpty }) {
                for zone in Set(ready.flatMap(\.forZones)).sorted() {
                    let eps = ready.filter { $0.forZones.contains(zone) }
                    if eps.count != ready.count { addSet(groupID, .zone, zone, [], eps) }
                    topology = true
                }
            }
        }

        var base: RuleFlags = []
        if svc.affinityTimeout != nil { base.insert(.affinity) }
        if itpLocal { base.insert(.internalLocal) }
        let etpLocal = svc.externalTrafficPolicy == .local
        let action: RuleAction = hasEndpoints ? .translate : .reject
        func rule(_ kind: FrontendKind, _ flags: RuleFlags) -> Rule {
            Rule(groupID: groupID, ownerID: serviceID, affinityTimeout: svc.affinityTimeout ?? 0, origin: .service, kind: kind,
                 action: action, flags: flags, nodePort: port.nodePort ?? 0)
        }
        let topo: RuleFlags = topology ? .topology : []

        // ClusterIP: the only frontend internalTrafficPolicy applies to.
        let clusterFlags2: RuleFlags = itpLocal ? base.union(.localOnly) : base.union(topo)
        claim(FrontendKey(address: clusterIP, port: port.port, proto: transport), rule(.clusterIP, clusterFlags2), precedence)

        // External frontends: externalTrafficPolicy is recorded; connects that start on a node or
        // host are short-circuited to all cluster endpoints, as kube-proxy does.
        let external = base.union(topo).union(etpLocal ? .externalLocal : [])
        if let np = port.nodePort, svc.type == .nodePort || svc.type == .loadBalancer {
            claim(FrontendKey(address: .wildcard(family), port: np, proto: transport), rule(.nodePort, external), precedence)
        }
        if svc.type == .loadBalancer {
            for ing in svc.ingress where ing.ipMode != "Proxy" {
                guard let ip = ing.ip, ip.family == family else { continue }
                claim(FrontendKey(address: ip, port: port.port, proto: transport), rule(.loadBalancer, external), precedence)
            }
        }
        for ip in svc.externalIPs where ip.family == family {
            claim(FrontendKey(address: ip, port: port.port, proto: transport), rule(.externalIP, external), precedence)
        }
    }

    mutating func claim(_ key: FrontendKey, _ rule: Rule, _ precedence: ServicePrecedence) {
        claimFrontend(Frontend(key: key, id: 0, rules: [rule]), precedence)
    }

    mutating func addSet(_ groupID: UInt32, _ scope: SetScope, _ scopeName: String, _ flags: SetFlags, _ eps: [MergedEndpoint]) {
        if scope == .node || scope == .local || scope == .gate { _ = internNode(scopeName) }
        let list = backendList
        let backends = eps.map(\.backend).sorted { list[Int($0)] < list[Int($1)] }
        sets.append(PendingSet(groupID: groupID, scope: scope, scopeName: scopeName, flags: flags, backends: backends))
    }

    /// The endpoints of one service port and family across its slices (kube-proxy's
    /// endpointslicecache): joined by port name and protocol, `addresses[0]` only, and for the
    /// same ip:port a later entry (slice name order, then list order) replaces an earlier one
    /// unless the later one is terminating.
    mutating func merge(_ svc: Service, port: ServicePort, transport: TransportProtocol, family: IPFamily,
                        slices: [EndpointSlice]) -> [MergedEndpoint] {
        // Few endpoints per service port are the rule: a linear scan beats hashing there.
        var out: [MergedEndpoint] = []
        var position: [Int32: Int] = [:]
        let wanted: AddressType = family == .ipv4 ? .ipv4 : .ipv6
        for slice in slices where slice.addressType == wanted {
            guard let sp = slice.ports.first(where: { $0.name == port.name && $0.proto == port.proto }), let number = sp.port else { continue }
            for e in slice.endpoints {
                guard let address = e.address else { continue }
                let index = intern(BackendIdentity(address: SocketAddress(address: address, port: number), proto: transport))
                let terminating = e.terminating ?? false
                let serving = e.serving ?? true
                let ready = svc.publishNotReadyAddresses || (e.ready ?? true)
                var node: Int32 = -1
                if let n = e.nodeName {
                    node = internNode(n)
                } else if let owner = nodes.ownerOfAddress[address] {
                    node = internNode(owner)
                }
                let m = MergedEndpoint(backend: index, ready: ready, serving: serving, terminating: terminating, node: node,
                                       forZones: e.forZones, forNodes: e.forNodes)
                var existing: Int?
                if out.count <= 32 {
                    existing = out.firstIndex { $0.backend == index }
                } else {
                    if position.isEmpty { for (k, o) in out.enumerated() { position[o.backend] = k } }
                    existing = position[index]
                }
                if let k = existing {
                    if !terminating { out[k] = m }
                } else {
                    if !position.isEmpty || out.count == 32 { position[index] = out.count }
                    out.append(m)
                }
            }
        }
        for m in out {
            // A backend listed under several nodes (inconsistent slices) takes the least name.
            let current = backendNode[Int(m.backend)]
            if m.node >= 0 && m.node != current && (current < 0 || nodeNames[Int(m.node)] < nodeNames[Int(current)]) {
                backendNode[Int(m.backend)] = m.node
            }
        }
        return out
    }
}

/// A backend's identity: address, port and protocol.
struct BackendIdentity: Hashable, Comparable {
    var address: SocketAddress
    var proto: TransportProtocol

    /// One word into the hasher instead of four: this type is hashed once per endpoint.
    func hash(into h: inout Hasher) {
        let tail: UInt64 = UInt64(address.port) << 8 | UInt64(proto.rawValue)
        let low: UInt64 = address.address.low
        let mixed: UInt64 = address.address.high ^ (low << 17 | low >> 47) ^ (tail << 41)
        h.combine(mixed)
    }

    /// Dictionaries call this instead of `hash(into:)`: a multiply-xorshift mix of the fields and
    /// the seed, much cheaper than a full SipHash round for a type hashed once per endpoint.
    func _rawHashValue(seed: Int) -> Int {
        let tail: UInt64 = UInt64(address.port) << 8 | UInt64(proto.rawValue)
        var x: UInt64 = address.address.high &* 0x9E37_79B9_7F4A_7C15
        x ^= address.address.low &+ UInt64(bitPattern: Int64(seed))
        x = (x ^ (x >> 29)) &* 0xBF58_476D_1CE4_E5B9
        x ^= tail &* 0x94D0_49BB_1331_11EB
        x ^= x >> 32
        return Int(bitPattern: UInt(truncatingIfNeeded: x))
    }

    static func == (a: BackendIdentity, b: BackendIdentity) -> Bool {
        a.address == b.address && a.proto == b.proto
    }

    static func < (a: BackendIdentity, b: BackendIdentity) -> Bool {
        (a.address, a.proto) < (b.address, b.proto)
    }

    var stableHash: UInt32 {
        StableID.hash(words: address.address.high, address.address.low, UInt64(address.port) << 8 | UInt64(proto.rawValue))
    }
}

/// Nodes known to the image: Node objects, plus names that endpoints or hints mention (a node
/// can load the image before its Node object is in the snapshot).
struct NodeCatalogue {
    struct Entry {
        var name: String
        var zone: String?
        var addresses: [NodeAddressEntry]
        var fromObject: Bool
        var explicitID: UInt32?
    }

    var entries: [String: Entry] = [:]
    var ownerOfAddress: [IPAddress: String] = [:]

    init(snapshot: Snapshot, diagnostics: inout [Diagnostic]) {
        for n in snapshot.nodes.sorted(by: { $0.meta.name < $1.meta.name }) {
            let zone = n.meta.labels["topology.kubernetes.io/zone"] ?? n.meta.labels["failure-domain.beta.kubernetes.io/zone"]
            var explicit: UInt32?
            if let s = n.meta.annotations["balancing.elf.io/nodeId"] {
                if let v = UInt32(s), v != 0 {
                    explicit = v
                } else {
                    diagnostics.append(Diagnostic(.warning, file: n.source.file, line: n.source.line, column: n.source.column,
                                                  object: "Node \(n.meta.name)", field: "metadata.annotations",
                                                  message: "balancing.elf.io/nodeId \"\(s)\" is not a non-zero 32-bit number; a derived id is used"))
                }
            }
            entries[n.meta.name] = Entry(name: n.meta.name, zone: zone, addresses: n.addresses, fromObject: true, explicitID: explicit)
            for a in n.addresses {
                if let other = ownerOfAddress[a.address], other != n.meta.name {
                    diagnostics.append(Diagnostic(.warning, file: n.source.file, line: n.source.line, column: n.source.column,
                                                  object: "Node \(n.meta.name)", field: "status.addresses",
                                                  message: "address \(a.address) is also an address of Node \(other), which keeps it"))
                    continue
                }
                ownerOfAddress[a.address] = n.meta.name
            }
        }
    }

    var zoneNames: Set<String> { Set(entries.values.compactMap(\.zone)) }
}
