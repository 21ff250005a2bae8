import Manifests
import MapImage

// One service planned on its own (pure: runs on any core); ServiceCompiler merges the plans.
extension ServiceCompiler {
    static func plan(_ original: Service, serviceIDs: [String: UInt32], groupIDs: ArraySlice<UInt32>, slices: [ServiceRef: [EndpointSlice]],
                     ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32], knownNames: [String],
                     clusters: ClusterIndex = ClusterIndex([]), options: CompileOptions = CompileOptions()) -> ServicePlan {
        var svc = original
        let name = "\(svc.meta.namespace)/\(svc.meta.name)"
        let object = "Service \(name)"
        var plan = ServicePlan(name: name, precedence: ServicePrecedence(timestamp: svc.meta.creationTimestamp, name: name))
        func note(_ field: String, _ message: String) {
            plan.diagnostics.append(Diagnostic(.note, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                               object: object, field: field, message: message))
        }
        // --allowed-external-cidrs: an address outside is an error, and left out of the plan.
        if options.allowedExternalCIDRs != nil {
            func refuse(_ field: String, _ reason: String) {
                plan.diagnostics.append(Diagnostic(.error, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                                   object: object, field: field, message: reason))
            }
            svc.externalIPs = svc.externalIPs.enumerated().filter { i, ip in
                guard let reason = options.refusal(of: ip) else { return true }
                refuse("spec.externalIPs[\(i)]", reason)
                return false
            }.map(\.element)
            svc.ingress = svc.ingress.enumerated().filter { i, ing in
                guard let ip = ing.ip, let reason = options.refusal(of: ip) else { return true }
                refuse("status.loadBalancer.ingress[\(i)].ip", reason)
                return false
            }.map(\.element)
        }
        if svc.clusterIPUnset && svc.type != .externalName {
            plan.diagnostics.append(Diagnostic(.warning, file: svc.source.file, line: svc.source.line, column: svc.source.column,
                                               object: object, field: "spec.clusterIP",
                                               message: "no spec.clusterIP: a manifest the API server has not allocated one for yet (it is not headless: that is clusterIP None); not proxied until it has one"))
            return plan
        }
        if let reason = skipReason(svc) {
            note("", "not proxied: \(reason)")
            return plan
        }
        guard let serviceID = serviceIDs[name] else { return plan }
        plan.info = ServiceInfo(id: serviceID, namespace: svc.meta.namespace, name: svc.meta.name, type: svc.type.rawValue,
                                internalTrafficPolicy: svc.internalTrafficPolicy.rawValue,
                                externalTrafficPolicy: svc.externalTrafficPolicy.rawValue, affinityTimeout: svc.affinityTimeout)
        if !clusters.isEmpty, let c = Clusters.cluster(of: svc.meta.namespace) {
            plan.info?.cluster = String(c)
            plan.info?.namespace = String(Clusters.local(svc.meta.namespace))
            if svc.clusterAffinity != .none { plan.info?.clusterAffinity = svc.clusterAffinity.rawValue }
        }
        plan.vips = svc.clusterIPs.map { VIP(address: $0, serviceID: serviceID, flags: .rejectUnknownPort, cluster: clusters.id(of: svc.meta.namespace)) }
        if svc.type == .loadBalancer {
            plan.sourceRanges = svc.sourceRanges.map { SourceRange(ownerID: serviceID, prefix: $0) }
        }
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
                          knownNames: knownNames, clusters: clusters)
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
                          ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32], knownNames: [String],
                          clusters: ClusterIndex) {
        let family = clusterIP.family
        // Its cluster (0: one unnamed cluster, or the clusterset's services, which every client
        // reaches and whose endpoints are several clusters').
        let cluster = clusters.id(of: svc.meta.namespace)
        let clusterSet = !clusters.isEmpty && Clusters.cluster(of: svc.meta.namespace) == Clusters.clusterSet[...]
        plan.groups.append(GroupInfo(id: groupID, owner: serviceID, ownerName: name, portName: port.name, port: port.port,
                                     proto: port.proto.rawValue, family: family.rawValue, nodePort: port.nodePort))

        let endpoints = merge(svc, port: port, transport: transport, family: family, slices: slices, ownerOfAddress: ownerOfAddress,
                              knownNodes: knownNodes, clusters: clusters)
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
        var usable = ready
        var clusterFlags: SetFlags = []
        if usable.isEmpty {
            usable = endpoints.filter { $0.serving && $0.terminating }
            if !usable.isEmpty { clusterFlags = .terminating }
        }
        let hasEndpoints = !usable.isEmpty
        if hasEndpoints { addSet(.cluster, "", clusterFlags, usable) }
        // Cluster affinity (a clusterset service): each cluster's share of the cluster set, and
        // the rest, for its clients to prefer.
        let affinityFlags: RuleFlags
        switch svc.clusterAffinity {
        case .none: affinityFlags = []
        case .local: affinityFlags = .preferLocalCluster
        case .remote: affinityFlags = .preferRemoteCluster
        }
        if hasEndpoints && svc.clusterAffinity != .none {
            let scope: SetScope = svc.clusterAffinity == .local ? .inCluster : .outOfCluster
            for n in stride(from: 1, through: clusterLimit(clusters), by: 1) {
                let id = UInt8(n)
                let mine = usable.filter { svc.clusterAffinity == .local ? $0.backend.cluster == id : $0.backend.cluster != id }
                if !mine.isEmpty { addSet(scope, "\(id)", clusterFlags, mine) }
            }
        }
        // Serving set: endpoints still serving that the cluster set leaves out (terminating while
        // ready ones exist). Never chosen; it keeps the sockets translated to them from being
        // terminated (they drain, as kube-proxy's conntrack entries do).
        if hasEndpoints {
            let chosen = Set(usable.map(\.backend))
            let draining = endpoints.filter { $0.serving && !chosen.contains($0.backend) }
            if !draining.isEmpty { addSet(.serving, "", [], draining) }
        }

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

        var base: RuleFlags = affinityFlags
        if svc.affinityTimeout != nil { base.insert(.affinity) }
        if itpLocal { base.insert(.internalLocal) }
        let etpLocal = svc.externalTrafficPolicy == .local
        let action: RuleAction = hasEndpoints ? .translate : .reject
        func rule(_ kind: FrontendKind, _ flags: RuleFlags) -> Rule {
            Rule(groupID: groupID, ownerID: serviceID, affinityTimeout: svc.affinityTimeout ?? 0, origin: .service, kind: kind,
                 action: action, flags: flags, nodePort: port.nodePort ?? 0, cluster: cluster)
        }
        func key(_ address: IPAddress, _ port: UInt16) -> FrontendKey {
            FrontendKey(address: address, port: port, proto: transport, cluster: cluster)
        }
        let topo: RuleFlags = topology ? .topology : []

        // ClusterIP: the only frontend internalTrafficPolicy applies to.
        // A cluster's ClusterIP serves its own clients (and hosts outside every cluster).
        var clusterRuleFlags: RuleFlags = itpLocal ? base.union(.localOnly) : base.union(topo)
        if cluster != 0 { clusterRuleFlags.insert(.clusterScoped) }
        plan.frontends.append((key(clusterIP, port.port), rule(clusterSet ? .clusterSetIP : .clusterIP, clusterRuleFlags)))

        // External frontends: externalTrafficPolicy is recorded; connects that start on a node or
        // host are short-circuited to all cluster endpoints, as kube-proxy does.
        let external = base.union(topo).union(etpLocal ? .externalLocal : [])
        if let np = port.nodePort, svc.type == .nodePort || svc.type == .loadBalancer {
            plan.frontends.append((key(.wildcard(family), np), rule(.nodePort, external)))
        }
        if svc.type == .loadBalancer {
            // loadBalancerSourceRanges of this family restrict the ingress IPs (kube-proxy maps the
            // ranges by family: none of this family, no restriction).
            let ranged = svc.sourceRanges.contains { $0.address.family == family }
            for ing in svc.ingress where ing.ipMode != "Proxy" {
                guard let ip = ing.ip, ip.family == family else { continue }
                plan.frontends.append((key(ip, port.port), rule(.loadBalancer, ranged ? external.union(.sourceRanges) : external)))
            }
        }
        for ip in svc.externalIPs where ip.family == family {
            plan.frontends.append((key(ip, port.port), rule(.externalIP, external)))
        }
    }

    static func clusterLimit(_ clusters: ClusterIndex) -> Int { min(clusters.names.count, ABI.maxClusters) }

    /// The endpoints of one service port and family across its slices (kube-proxy's
    /// endpointslicecache): joined by port name and protocol, `addresses[0]` only, and for the
    /// same ip:port a later entry (slice name order, then list order) replaces an earlier one
    /// unless the later one is terminating.
    static func merge(_ svc: Service, port: ServicePort, transport: TransportProtocol, family: IPFamily,
                      slices: [EndpointSlice], ownerOfAddress: [IPAddress: String], knownNodes: [String: Int32],
                      clusters: ClusterIndex = ClusterIndex([])) -> [MergedEndpoint] {
        // Few endpoints per service port are the rule: a linear scan beats hashing there.
        var out: [MergedEndpoint] = []
        var position: [BackendIdentity: Int] = [:]
        let wanted: AddressType = family == .ipv4 ? .ipv4 : .ipv6
        for slice in slices where slice.addressType == wanted {
            guard let sp = slice.ports.first(where: { $0.name == port.name && $0.proto == port.proto }), let number = sp.port else { continue }
            // The endpoints' cluster: a clusterset slice names it, others are their namespace's.
            let cluster = clusters.isEmpty ? 0 : slice.sourceCluster.map { clusters.id(named: $0) } ?? clusters.id(of: slice.meta.namespace)
            let eps = slice.endpoints
            for i in eps.indices {
                guard let address = eps[i].address else { continue }
                let identity = BackendIdentity(address: SocketAddress(address: address, port: number), proto: transport, cluster: cluster)
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
