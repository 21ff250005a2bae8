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
    /// Policy rules by frontend (Policies.swift), stacked in front of the Service's rule.
    var lrpClaims: [FrontendKey: PolicyClaim] = [:]
    var bpClaims: [FrontendKey: PolicyClaim] = [:]

    // Node and zone catalogue
    let nodes: NodeCatalogue
    /// Every endpoint of every plan in merge order (an address listed by several groups appears
    /// once per group), with its backend-id hash and node; sets refer to these positions.
    /// Backends are deduplicated once, by sorting, when the image is assembled.
    var endpoints: [BackendIdentity] = []
    var endpointHashes: [UInt32] = []
    var endpointNodes: [Int32] = []
    /// Node names interned: Node objects first (sorted), then names only endpoints mention.
    var nodeNames: [String] = []
    var nodeIndexByName: [String: Int32] = [:]
    /// Each service's plan and group ids, kept when an incremental compiler will start from this
    /// compile (IncrementalCompiler): it recompiles one service by planning it again.
    var retainPlans = false
    var retained: [(service: Service, plan: ServicePlan, groupIDs: [UInt32])] = []

    mutating func internNode(_ name: String) -> Int32 {
        if let i = nodeIndexByName[name] { return i }
        let i = Int32(nodeNames.count)
        nodeIndexByName[name] = i
        nodeNames.append(name)
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
        /// Positions in `endpoints`, in backend-identity order.
        var backends: [Int32]
    }

    /// Which service wins a frontend both claim: the older (creationTimestamp), then by name.
    struct ServicePrecedence: Comparable, Sendable {
        var timestamp: String
        var name: String

        static func < (a: ServicePrecedence, b: ServicePrecedence) -> Bool {
            let ta = a.timestamp.isEmpty ? "~" : a.timestamp
            let tb = b.timestamp.isEmpty ? "~" : b.timestamp
            return (ta, a.name) < (tb, b.name)
        }
    }

    /// A merged endpoint of one service port and family.
    struct MergedEndpoint: Sendable {
        var backend: BackendIdentity
        var ready: Bool
        var serving: Bool
        var terminating: Bool
        /// Index into the known nodes; -1: a name the catalogue lacks (in `otherNode`); -2: none.
        var node: Int32
        var otherNode: String?
        var forZones: [String]
        var forNodes: [String]
    }

    /// What one service compiles to, before anything shared (backend and node indices, frontend
    /// and VIP claims) is touched: computed for all services in parallel, merged in name order.
    struct ServicePlan: Sendable {
        struct PlannedSet: Sendable {
            var groupID: UInt32
            var scope: SetScope
            var scopeName: String
            var flags: SetFlags
            /// Indices into `endpoints`, in backend-identity order.
            var members: [Int32]
        }

        var name: String
        var precedence: ServicePrecedence
        var info: ServiceInfo?
        var vips: [VIP] = []
        var groups: [GroupInfo] = []
        var sets: [PlannedSet] = []
        var frontends: [(FrontendKey, Rule)] = []
        /// Every endpoint of the service's groups, once, with its node: an index into the node
        /// catalogue when the name is known there, else -1 with the name in `otherNodes`.
        var endpoints: [BackendIdentity] = []
        var endpointHashes: [UInt32] = []
        var endpointNodes: [Int32] = []
        var otherNodes: [Int32: String] = [:]
        var diagnostics: [Diagnostic] = []
    }

    mutating func compileServices(serviceIDs: [String: UInt32]) {
        var slicesByService: [ServiceRef: [EndpointSlice]] = [:]
        for s in snapshot.endpointSlices {
            guard let svc = s.serviceName, !svc.isEmpty else {
                diagnostics.append(Diagnostic(.warning, file: s.source.file, line: s.source.line, column: s.source.column,
                                              object: "EndpointSlice \(s.meta.namespace)/\(s.meta.name)", field: "metadata.labels",
                                              message: "no kubernetes.io/service-name label: the slice belongs to no service and is ignored"))
                continue
            }
            slicesByService[ServiceRef(namespace: s.meta.namespace, name: svc), default: []].append(s)
        }
        for k in slicesByService.keys { slicesByService[k]?.sort { $0.meta.name < $1.meta.name } }

        let ordered = snapshot.services.sorted { ($0.meta.namespace, $0.meta.name) < ($1.meta.namespace, $1.meta.name) }

        // Group ids: one per service port and family, with the stable-id collision rule. They
        // are handed to each service's plan by position, in the order the plan walks its ports.
        var groupIdentities: [GroupIdentity] = []
        var groupHashes: [UInt32] = []
        var groupOffsets: [Int] = []
        groupOffsets.reserveCapacity(ordered.count + 1)
        for svc in ordered {
            groupOffsets.append(groupIdentities.count)
            guard ServiceCompiler.skipReason(svc) == nil else { continue }
            for port in svc.ports where port.proto.transport != nil {
                for ip in svc.clusterIPs {
                    let g = GroupIdentity(namespace: svc.meta.namespace, name: svc.meta.name, port: port.name,
                                          proto: port.proto.rawValue, family: ip.family.rawValue)
                    groupIdentities.append(g)
                    groupHashes.append(g.stableHash)
                }
            }
        }
        groupOffsets.append(groupIdentities.count)
        let groupIDs = StableID.assignPositions(groupIdentities, hashes: groupHashes, explicit: [:])
        let offsets = groupOffsets

        // Every service on every core, then the shared state in name order.
        let owners = nodes.ownerOfAddress
        let slices = slicesByService
        let known = nodeIndexByName
        let knownNames = nodeNames
        let plans = parallelMap(ordered.count) { i in
            ServiceCompiler.plan(ordered[i], serviceIDs: serviceIDs, groupIDs: groupIDs[offsets[i]..<offsets[i + 1]],
                                 slices: slices, ownerOfAddress: owners, knownNodes: known, knownNames: knownNames)
        }
        let endpointCount = plans.reduce(0) { $0 + $1.endpoints.count }
        endpoints.reserveCapacity(endpointCount)
        endpointHashes.reserveCapacity(endpointCount)
        endpointNodes.reserveCapacity(endpointCount)
        for plan in plans { apply(plan) }
        if retainPlans {
            retained = ordered.indices.map { (ordered[$0], plans[$0], Array(groupIDs[offsets[$0]..<offsets[$0 + 1]])) }
        }
    }

    /// Merges one service's plan into the shared state.
    mutating func apply(_ plan: ServicePlan) {
        diagnostics += plan.diagnostics
        guard let info = plan.info else { return }
        services.append(info)
        let object = "Service \(plan.name)"
        for vip in plan.vips { claimVIP(vip, plan.precedence, object) }
        groups += plan.groups
        let offset = Int32(endpoints.count)
        endpoints += plan.endpoints
        endpointHashes += plan.endpointHashes
        for (k, n) in plan.endpointNodes.enumerated() {
            if n == -1, let name = plan.otherNodes[Int32(k)] {
                endpointNodes.append(internNode(name))
            } else {
                endpointNodes.append(max(n, -1))
            }
        }
        for set in plan.sets {
            if set.scope == .node || set.scope == .local || set.scope == .gate { _ = internNode(set.scopeName) }
            sets.append(PendingSet(groupID: set.groupID, scope: set.scope, scopeName: set.scopeName, flags: set.flags,
                                   backends: set.members.map { offset + $0 }))
        }
        for (key, rule) in plan.frontends { claimFrontend(Frontend(key: key, id: 0, rules: [rule]), plan.precedence) }
    }

    /// A Service by namespace and name, without building "namespace/name".
    struct ServiceRef: Hashable, Sendable {
        var namespace: String
        var name: String
    }

    /// A backend group's identity: `group/<namespace>/<name>/<port name>/<protocol>/<family>`.
    struct GroupIdentity: Comparable, Sendable {
        var namespace: String
        var name: String
        var port: String
        var proto: String
        var family: String

        var stableHash: UInt32 { StableID.hash(parts: "group/", namespace, "/", name, "/", port, "/", proto, "/", family) }

        static func < (a: GroupIdentity, b: GroupIdentity) -> Bool {
            (a.namespace, a.name, a.port, a.proto, a.family) < (b.namespace, b.name, b.port, b.proto, b.family)
        }
    }

    static func skipReason(_ svc: Service) -> String? {
        if svc.type == .externalName { return "type ExternalName" }
        if let v = svc.meta.labels["service.kubernetes.io/service-proxy-name"] {
            return "label service.kubernetes.io/service-proxy-name=\(v) (another proxy serves it)"
        }
        if svc.meta.labels["service.kubernetes.io/headless"] != nil { return "label service.kubernetes.io/headless" }
        if svc.headless { return "headless (no cluster IP)" }
        return nil
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

    // MARK: - One service (pure: runs on any core)

    static func plan(_ svc: Service, serviceIDs: [String: UInt32], groupIDs: ArraySlice<UInt32>, slices: [ServiceRef: [EndpointSlice]],
                     ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32], knownNames: [String]) -> ServicePlan {
        let name = "\(svc.meta.namespace)/\(svc.meta.name)"
        let object = "Service \(name)"
        var plan = ServicePlan(name: name, precedence: ServicePrecedence(timestamp: svc.meta.creationTimestamp, name: name))
        func note(_ field: String, _ message: String) {
            plan.diagnostics.append(Diagnostic(.note, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                               object: object, field: field, message: message))
        }
        if let reason = skipReason(svc) {
            note("", "not proxied: \(reason)")
            return plan
        }
        guard let serviceID = serviceIDs[name] else { return plan }
        plan.info = ServiceInfo(id: serviceID, namespace: svc.meta.namespace, name: svc.meta.name, type: svc.type.rawValue,
                                internalTrafficPolicy: svc.internalTrafficPolicy.rawValue,
                                externalTrafficPolicy: svc.externalTrafficPolicy.rawValue, affinityTimeout: svc.affinityTimeout)
        plan.vips = svc.clusterIPs.map { VIP(address: $0, serviceID: serviceID, flags: .rejectUnknownPort) }
        let mySlices = slices[ServiceRef(namespace: svc.meta.namespace, name: svc.meta.name)] ?? []
        var nextGroup = groupIDs.startIndex
        for (index, port) in svc.ports.enumerated() {
            guard let transport = port.proto.transport else {
                note("spec.ports[\(index)]", "port \(port.port)/SCTP skipped: SCTP is not translated at the socket layer")
                continue
            }
            for clusterIP in svc.clusterIPs {
                guard nextGroup < groupIDs.endIndex else { continue }
                let groupID = groupIDs[nextGroup]
                nextGroup += 1
                planGroup(&plan, svc, name: name, serviceID: serviceID, groupID: groupID, port: port, transport: transport,
                          clusterIP: clusterIP, slices: mySlices, ownerOfAddress: ownerOfAddress, knownNodes: knownNodes,
                          knownNames: knownNames)
            }
        }
        // Addresses of a family the service has no cluster IP of are not served (kube-proxy
        // does no family translation).
        let families = Set(svc.clusterIPs.map(\.family))
        for ip in svc.externalIPs where !families.contains(ip.family) {
            note("spec.externalIPs", "\(ip) skipped: the service has no \(ip.family.rawValue) cluster IP")
        }
        if svc.type == .loadBalancer {
            for (i, ing) in svc.ingress.enumerated() {
                let field = "status.loadBalancer.ingress[\(i)]"
                if ing.ip == nil {
                    note(field, "hostname-only ingress \(ing.hostname ?? "") skipped: no IP to match")
                } else if ing.ipMode == "Proxy" {
                    note(field, "ingress \(ing.ip.map { "\($0)" } ?? "") skipped: ipMode Proxy delivers to node or pod addresses")
                } else if let ip = ing.ip, !families.contains(ip.family) {
                    note(field, "\(ip) skipped: the service has no \(ip.family.rawValue) cluster IP")
                }
            }
        }
        return plan
    }

    static func planGroup(_ plan: inout ServicePlan, _ svc: Service, name: String, serviceID: UInt32, groupID: UInt32,
                          port: ServicePort, transport: TransportProtocol, clusterIP: IPAddress, slices: [EndpointSlice],
                          ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32], knownNames: [String]) {
        let family = clusterIP.family
        plan.groups.append(GroupInfo(id: groupID, owner: serviceID, ownerName: name, portName: port.name, port: port.port,
                                     proto: port.proto.rawValue, family: family.rawValue, nodePort: port.nodePort))

        let endpoints = merge(svc, port: port, transport: transport, family: family, slices: slices, ownerOfAddress: ownerOfAddress,
                              knownNodes: knownNodes)
        // This group's endpoints join the plan's list; sets refer to them by position.
        let base32 = Int32(plan.endpoints.count)
        var position: [BackendIdentity: Int32] = [:]
        for (k, e) in endpoints.enumerated() {
            plan.endpoints.append(e.backend)
            plan.endpointHashes.append(e.backend.stableHash)
            plan.endpointNodes.append(e.node)
            if e.node == -1, let n = e.otherNode { plan.otherNodes[base32 + Int32(k)] = n }
            if endpoints.count > 32 { position[e.backend] = base32 + Int32(k) }
        }
        func member(_ e: MergedEndpoint) -> Int32 {
            if let p = position[e.backend] { return p }
            return base32 + Int32(endpoints.firstIndex { $0.backend == e.backend } ?? 0)
        }
        func addSet(_ scope: SetScope, _ scopeName: String, _ flags: SetFlags, _ eps: [MergedEndpoint]) {
            let sorted = eps.sorted { $0.backend < $1.backend }
            plan.sets.append(ServicePlan.PlannedSet(groupID: groupID, scope: scope, scopeName: scopeName, flags: flags,
                                                    members: sorted.map(member)))
        }

        // Cluster set: ready endpoints, else serving+terminating ones (KEP-1669).
        let ready = endpoints.filter(\.ready)
        var cluster = ready
        var clusterFlags: SetFlags = []
        if cluster.isEmpty {
            cluster = endpoints.filter { $0.serving && $0.terminating }
            if !cluster.isEmpty { clusterFlags = .terminating }
        }
        let hasEndpoints = !cluster.isEmpty
        if hasEndpoints { addSet(.cluster, "", clusterFlags, cluster) }

        // Local sets (internalTrafficPolicy=Local): the node's ready endpoints, else its
        // serving+terminating ones. Never filtered by topology.
        let itpLocal = svc.internalTrafficPolicy == .local
        if itpLocal && hasEndpoints {
            var byNode: [String: [MergedEndpoint]] = [:]
            for e in endpoints {
                if e.node >= 0 {
                    byNode[knownNames[Int(e.node)], default: []].append(e)
                } else if let n = e.otherNode {
                    byNode[n, default: []].append(e)
                }
            }
            for (node, eps) in byNode.sorted(by: { $0.key < $1.key }) {
                let r = eps.filter(\.ready)
                if !r.isEmpty {
                    addSet(.local, node, [], r)
                } else {
                    let t = eps.filter { $0.serving && $0.terminating }
                    if !t.isEmpty { addSet(.local, node, .terminating, t) }
                }
            }
        }

        // Topology hints, from ready endpoints only, and only when every ready endpoint has them.
        var topology = false
        if !ready.isEmpty {
            if ready.allSatisfy({ !$0.forNodes.isEmpty }) {
                for node in Set(ready.flatMap(\.forNodes)).sorted() {
                    let eps = ready.filter { $0.forNodes.contains(node) }
                    if eps.count != ready.count { addSet(.node, node, [], eps) }
                    topology = true
                }
            }
            if ready.allSatisfy({ !$0.forZones.isEmpty }) {
                for zone in Set(ready.flatMap(\.forZones)).sorted() {
                    let eps = ready.filter { $0.forZones.contains(zone) }
                    if eps.count != ready.count { addSet(.zone, zone, [], eps) }
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
        let clusterRuleFlags: RuleFlags = itpLocal ? base.union(.localOnly) : base.union(topo)
        plan.frontends.append((FrontendKey(address: clusterIP, port: port.port, proto: transport), rule(.clusterIP, clusterRuleFlags)))

        // External frontends: externalTrafficPolicy is recorded; connects that start on a node or
        // host are short-circuited to all cluster endpoints, as kube-proxy does.
        let external = base.union(topo).union(etpLocal ? .externalLocal : [])
        if let np = port.nodePort, svc.type == .nodePort || svc.type == .loadBalancer {
            plan.frontends.append((FrontendKey(address: .wildcard(family), port: np, proto: transport), rule(.nodePort, external)))
        }
        if svc.type == .loadBalancer {
            for ing in svc.ingress where ing.ipMode != "Proxy" {
                guard let ip = ing.ip, ip.family == family else { continue }
                plan.frontends.append((FrontendKey(address: ip, port: port.port, proto: transport), rule(.loadBalancer, external)))
            }
        }
        for ip in svc.externalIPs where ip.family == family {
            plan.frontends.append((FrontendKey(address: ip, port: port.port, proto: transport), rule(.externalIP, external)))
        }
    }

    /// The endpoints of one service port and family across its slices (kube-proxy's
    /// endpointslicecache): joined by port name and protocol, `addresses[0]` only, and for the
    /// same ip:port a later entry (slice name order, then list order) replaces an earlier one
    /// unless the later one is terminating.
    static func merge(_ svc: Service, port: ServicePort, transport: TransportProtocol, family: IPFamily,
                      slices: [EndpointSlice], ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32]) -> [MergedEndpoint] {
        // Few endpoints per service port are the rule: a linear scan beats hashing there.
        var out: [MergedEndpoint] = []
        var position: [BackendIdentity: Int] = [:]
        let wanted: AddressType = family == .ipv4 ? .ipv4 : .ipv6
        for slice in slices where slice.addressType == wanted {
            guard let sp = slice.ports.first(where: { $0.name == port.name && $0.proto == port.proto }), let number = sp.port else { continue }
            let eps = slice.endpoints
            for i in eps.indices {
                guard let address = eps[i].address else { continue }
                let identity = BackendIdentity(address: SocketAddress(address: address, port: number), proto: transport)
                let terminating = eps[i].terminating ?? false
                // Node names are shared by thousands of endpoints: resolve to an index here
                // rather than carrying the string (and its reference count) along.
                var node: Int32 = -2
                var other: String?
                if let n = eps[i].nodeName {
                    if let k = knownNodes[n] { node = k } else { node = -1; other = n }
                } else if let owner = ownerOfAddress[address] {
                    if let k = knownNodes[owner] { node = k } else { node = -1; other = owner }
                }
                let m = MergedEndpoint(backend: identity, ready: svc.publishNotReadyAddresses || (eps[i].ready ?? true),
                                       serving: eps[i].serving ?? true, terminating: terminating,
                                       node: node, otherNode: other, forZones: eps[i].forZones, forNodes: eps[i].forNodes)
                var existing: Int?
                if out.count <= 32 {
                    existing = out.firstIndex { $0.backend == identity }
                } else {
                    if position.isEmpty { for (k, o) in out.enumerated() { position[o.backend] = k } }
                    existing = position[identity]
                }
                if let k = existing {
                    if !terminating { out[k] = m }
                } else {
                    if !position.isEmpty { position[identity] = out.count }
                    out.append(m)
                }
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
                                                  message: "balancing.elf.io/nodeId \(shown(s)) is not a non-zero 32-bit number; a derived id is used"))
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
