import Manifests
import MapImage

/// Recompiles only the services a change of EndpointSlices or Services touches, and says which
/// records of the image change: what keeps a large cluster's datapath current in milliseconds
/// instead of a full compile and reload per event.
///
/// It starts from a full compile (`Compiler.compileIncrementally`) and keeps what that compile
/// decided: every service's plan, the ids of services, groups, nodes, zones and frontends, and a
/// registry of backends (which sets list each address, under which nodes). A change re-plans the
/// services whose slices changed, exactly as the full compile plans them, and turns the old and the
/// new plans into records.
///
/// The result must be the records a full compile of the same objects gives, byte for byte. Where
/// that cannot be guaranteed cheaply, `apply` answers `.needsFullCompile` instead of guessing:
/// a frontend or cluster IP another service or a policy also claims, a node or zone name no Node
/// object has, a new id (backend, service, group, frontend) that would collide, a removed one
/// another id was displaced past (IDSpace), an explicit id annotation, a Service a policy names.
/// After that answer the compiler is spent: start a new one from a full compile.
public struct IncrementalCompiler: Sendable {
    typealias ServiceRef = ServiceCompiler.ServiceRef
    typealias ServicePlan = ServiceCompiler.ServicePlan

    public enum Outcome: Sendable {
        /// The records to write (possibly none).
        case delta(RecordDelta)
        /// Only a full compile gives the exact image; the reason is for the log.
        case needsFullCompile(String)
    }

    let options: CompileOptions
    var services: [ServiceRef: Service] = [:]
    var slices: [ServiceRef: EndpointSlice] = [:]
    /// Slice keys by the service their label names.
    var slicesOfService: [ServiceRef: Set<ServiceRef>] = [:]
    var plans: [ServiceRef: (plan: ServicePlan, groupIDs: [UInt32])] = [:]
    /// Every service's id by "namespace/name" (what `plan` looks up), and the id spaces a new
    /// service, group or frontend takes its id in.
    var serviceIDs: [String: UInt32]
    var serviceSpace: IDSpace<String>
    var groupSpace: IDSpace<ServiceCompiler.GroupIdentity>
    var frontendSpace: IDSpace<FrontendKey>
    /// Some Service carries an id annotation: services then come and go by full compiles only.
    let explicitServiceIDs: Bool
    /// How many services claim each frontend and cluster IP, and which one won it.
    var frontendClaims: [FrontendKey: Int] = [:]
    var vipClaims: [IPAddress: Int] = [:]
    var vipWinner: [IPAddress: String]
    /// Node names by index (what plans refer to endpoints' nodes by): the full compile's sorted
    /// names, then nodes added since (an index is never reused; a removed node's name leaves
    /// `knownNodes`).
    var knownNodes: [String: Int32]
    var knownNames: [String]
    var ownerOfAddress: [IPAddress: String]
    var nodeIDByIndex: [UInt32]
    var nodeIDs: [String: UInt32]
    var zoneIDs: [String: UInt32]
    /// What Node objects say (every known node has one: see `init`), how many claim each
    /// address, how many nodes are in each zone, and the id spaces of nodes and zones.
    var nodeEntries: [String: NodeCatalogue.Entry]
    var addressClaims: [IPAddress: Int] = [:]
    var zoneNodes: [String: Int] = [:]
    var nodeSpace: IDSpace<String>
    var zoneSpace: IDSpace<String>
    /// Some Node carries an id annotation: nodes then come and go by full compiles only.
    let explicitNodeIDs: Bool
    /// Services with endpoints that name no node, by address, counted: a node that gains or loses
    /// the address becomes or stops being their node (kube-proxy's rule), so they are planned again.
    var nodelessEndpoints: [IPAddress: [ServiceRef: Int]] = [:]
    /// What plans refer to, counted: endpoints per node, and the nodes and zones sets name.
    var nodeListings: [Int32: Int] = [:]
    var setNodes: [String: Int] = [:]
    var setZones: [String: Int] = [:]
    /// The service whose rule a frontend carries (frontends no policy claims).
    var frontendWinner: [FrontendKey: String]
    /// Frontends a policy claims (the layer's records carry them).
    var policyClaimed: Set<FrontendKey> = []
    /// Policies, every Pod (a policy added later selects among them), those a policy selects, the
    /// Node objects (policies gate on their labels), and what the policies compile to.
    var localRedirectPolicies: [ServiceRef: LocalRedirectPolicy] = [:]
    var balancingPolicies: [ServiceRef: BalancingPolicy] = [:]
    var pods = PodIndex()
    var selectedPods: [ServiceRef: Pod] = [:]
    var nodeObjects: [String: Node] = [:]
    var layer = PolicyLayer.empty
    var backends: [BackendIdentity: BackendEntry] = [:]
    var idOwner: [UInt32: BackendIdentity] = [:]
    /// Backends whose id is not their hash: [hash, id) is the range their placement passed over.
    var displaced: [BackendIdentity: (from: UInt32, to: UInt32)] = [:]

    /// Nil when the compile has something this compiler does not follow (nodes known only from
    /// endpoints, ids that wrapped around); every change then takes a full compile.
    init?(_ sc: ServiceCompiler, contents: ImageContents, snapshot: Snapshot, options: CompileOptions) {
        guard sc.nodeNames.count == sc.nodes.entries.count else { return nil }
        // Several clusters: frontends are folded across clusters (ClusterFrontends), which the
        // incremental compiler does not follow; every change takes a full compile.
        guard snapshot.clusters.isEmpty else { return nil }
        self.options = options
        for p in snapshot.localRedirectPolicies { localRedirectPolicies[ServiceRef(namespace: p.meta.namespace, name: p.meta.name)] = p }
        for p in snapshot.balancingPolicies { balancingPolicies[ServiceRef(namespace: p.meta.namespace, name: p.meta.name)] = p }
        for p in snapshot.pods { pods.set(ServiceRef(namespace: p.meta.namespace, name: p.meta.name), p) }
        for n in snapshot.nodes { nodeObjects[n.meta.name] = n }
        for s in snapshot.services { services[ServiceRef(namespace: s.meta.namespace, name: s.meta.name)] = s }
        for s in snapshot.endpointSlices {
            let key = ServiceRef(namespace: s.meta.namespace, name: s.meta.name)
            slices[key] = s
            if let svc = s.serviceName, !svc.isEmpty { slicesOfService[ServiceRef(namespace: s.meta.namespace, name: svc), default: []].insert(key) }
        }
        var groups: [(ServiceCompiler.GroupIdentity, UInt32)] = []
        for r in sc.retained {
            let ref = ServiceRef(namespace: r.service.meta.namespace, name: r.service.meta.name)
            plans[ref] = (r.plan, r.groupIDs)
            groups += zip(ServiceCompiler.groupIdentities(r.service), r.groupIDs)
            for (key, _) in r.plan.frontends { frontendClaims[key, default: 0] += 1 }
            for v in r.plan.vips { vipClaims[v.address, default: 0] += 1 }
        }
        serviceIDs = sc.retainedServiceIDs
        let annotated = Set(snapshot.services.filter { $0.meta.annotations["balancing.elf.io/serviceId"] != nil }
            .map { "\($0.meta.namespace)/\($0.meta.name)" })
        explicitServiceIDs = !annotated.isEmpty
        guard let serviceSpace = IDSpace(sc.retainedServiceIDs.map { ($0.key, $0.value) }, explicit: annotated, hash: { name in
            let parts = name.split(separator: "/", maxSplits: 1)
            return ServiceCompiler.serviceHash(String(parts.first ?? ""), String(parts.last ?? ""))
        }), let groupSpace = IDSpace(groups, hash: \.stableHash),
            let frontendSpace = IDSpace(contents.frontends.map { ($0.key, $0.id) }, hash: \.stableHash) else { return nil }
        self.serviceSpace = serviceSpace
        self.groupSpace = groupSpace
        self.frontendSpace = frontendSpace
        vipWinner = sc.vips.mapValues { $0.precedence.name }
        knownNodes = sc.nodeIndexByName
        knownNames = sc.nodeNames
        ownerOfAddress = sc.nodes.ownerOfAddress
        var nodeIDs: [String: UInt32] = [:]
        for n in contents.metadata.nodes { nodeIDs[n.name] = n.id }
        self.nodeIDs = nodeIDs
        nodeIDByIndex = sc.nodeNames.map { nodeIDs[$0] ?? 0 }
        var zones: [String: UInt32] = [:]
        for z in contents.metadata.zones { zones[z.name] = z.id }
        zoneIDs = zones
        nodeEntries = sc.nodes.entries
        for e in sc.nodes.entries.values {
            for a in Set(e.addresses.map(\.address)) { addressClaims[a, default: 0] += 1 }
            if let z = e.zone { zoneNodes[z, default: 0] += 1 }
        }
        explicitNodeIDs = sc.nodes.entries.values.contains { $0.explicitID != nil }
            || snapshot.nodes.contains { $0.meta.annotations["balancing.elf.io/nodeId"] != nil }
        let explicitNames = Set(snapshot.nodes.filter { $0.meta.annotations["balancing.elf.io/nodeId"] != nil }.map(\.meta.name))
        guard let nodeSpace = IDSpace(nodeIDs.map { ($0.key, $0.value) }, explicit: explicitNames, hash: { StableID.hash("node/\($0)") }),
              let zoneSpace = IDSpace(zones.map { ($0.key, $0.value) }, hash: { StableID.hash("zone/\($0)") }) else { return nil }
        self.nodeSpace = nodeSpace
        self.zoneSpace = zoneSpace
        frontendWinner = sc.frontends.mapValues { $0.precedence.name }
        for r in sc.retained { list(r.plan, +1) }
        for s in snapshot.endpointSlices { indexNodeless(s, +1) }
        reselectPods()
        guard case .success(let layer) = compileLayer(), layer.claimed == Set(sc.lrpClaims.keys).union(sc.bpClaims.keys) else { return nil }
        self.layer = layer
        policyClaimed = layer.claimed
        list(layer.plan, +1)
        for b in contents.backends {
            let identity = BackendIdentity(address: b.address, proto: b.proto)
            guard backends[identity] != nil else { return nil }
            backends[identity]?.id = b.id
            idOwner[b.id] = identity
        }
        for (identity, e) in backends where e.inSets > 0 {
            guard e.id != 0 else { return nil }
            let h = max(identity.stableHash, 1)
            if e.id < h { return nil }
            if e.id != h { displaced[identity] = (h, e.id) }
        }
    }

    /// Counts (+1) or uncounts (-1) a slice's endpoints that name no node.
    mutating func indexNodeless(_ slice: EndpointSlice, _ sign: Int) {
        guard let svc = slice.serviceName, !svc.isEmpty else { return }
        let ref = ServiceRef(namespace: slice.meta.namespace, name: svc)
        for e in slice.endpoints where e.nodeName == nil {
            guard let a = e.address else { continue }
            Self.count(&nodelessEndpoints[a, default: [:]], ref, sign)
            if nodelessEndpoints[a]?.isEmpty == true { nodelessEndpoints[a] = nil }
        }
    }

    static func count<K: Hashable>(_ counts: inout [K: Int], _ key: K, _ sign: Int) {
        let c = (counts[key] ?? 0) + sign
        counts[key] = c == 0 ? nil : c
    }

    /// The records a plan contributes: its sets, and the frontends it wins.
    func records(_ plan: ServicePlan, into tables: inout [ImageTable: RecordTable]) {
        for s in plan.sets {
            let key = SetKey(groupID: s.groupID, scope: s.scope, scopeName: s.scopeName, zoneIDs: zoneIDs, nodeIDs: nodeIDs)
            let ids = s.members.map { backends[plan.endpoints[Int($0)]]?.id ?? 0 }
            ImageRecords.set(BackendSet(key: key, flags: s.flags, backends: ids), into: &tables)
        }
        var seen = Set<FrontendKey>()
        for (key, rule) in plan.frontends where frontendWinner[key] == plan.name && !policyClaimed.contains(key) && seen.insert(key).inserted {
            let r = ImageRecords.frontend(Frontend(key: key, id: frontendSpace[key] ?? 0, rules: [rule]))
            tables[.frontends, default: [:]][r.key] = r.value
        }
        for v in plan.vips where vipWinner[v.address] == plan.name {
            let r = ImageRecords.vip(v)
            tables[.vips, default: [:]][r.key] = r.value
        }
        for s in plan.sourceRanges {
            let r = ImageRecords.sourceRange(s)
            tables[.sourceRanges, default: [:]][r.key] = r.value
        }
    }

    /// Why a re-planned service cannot be followed incrementally, if it cannot.
    func obstacle(_ old: ServicePlan, _ new: ServicePlan) -> String? {
        // An error (an address --allowed-external-cidrs refuses) fails the sync, or is left out
        // under --keep-going: the full compile decides, as for every error.
        if let e = new.diagnostics.first(where: { $0.severity == .error }) { return "\(new.name): \(e.field): an error takes a full compile" }
        if !old.otherNodes.isEmpty || !new.otherNodes.isEmpty { return "\(new.name): an endpoint names a node with no Node object" }
        for s in old.sets + new.sets {
            switch s.scope {
            case .cluster, .serving: continue
            case .inCluster, .outOfCluster: return "\(new.name): a clusterset service (multi-cluster images take full compiles)"
            case .zone:
                if zoneNodes[s.scopeName] == nil { return "\(new.name): a hint names zone \(s.scopeName), which no node has" }
            case .node, .local, .gate:
                if knownNodes[s.scopeName] == nil { return "\(new.name): a set names node \(s.scopeName), which has no Node object" }
            }
        }
        return nil
    }

    /// Applies changed EndpointSlices (nil: deleted) and returns the records to write.
    public mutating func apply(endpointSlices changes: [(namespace: String, name: String, slice: EndpointSlice?)]) -> Outcome {
        apply(changes.map { c in
            ObjectChange(kind: "EndpointSlice", namespace: c.namespace, name: c.name, objects: c.slice.map { s in
                var one = Snapshot()
                one.endpointSlices = [s]
                return one
            })
        })
    }

    /// Applies changed objects and returns the records to write. Every kind the watcher follows is
    /// followed here; a change only a full compile gets exactly right answers `.needsFullCompile`.
    public mutating func apply(_ changes: [ObjectChange]) -> Outcome {
        var affected = Set<ServiceRef>()
        var nodeDelta = RecordDelta()
        var layerDirty = false, selectorsChanged = false
        let namedBefore = policyServices
        // The policies' records as they are, taken before a Node change renumbers what they are
        // keyed by, and only when the policies are to be compiled again.
        var layerBefore: [ImageTable: RecordTable]?
        // The frontends policies claim carry a Service's rule too: taken now, written again at the end.
        let claimedBefore = policyClaimed
        var mergedBefore: RecordTable = [:]
        for k in claimedBefore { if let r = mergedFrontend(k, layer) { mergedBefore[r.key] = r.value } }
        /// Services changed in this batch, with what they were before it.
        var changedServices: [ServiceRef: Service?] = [:]
        for c in changes {
            let key = ServiceRef(namespace: c.namespace, name: c.name)
            switch c.kind {
            case "EndpointSlice":
                if let old = slices[key], let svc = old.serviceName, !svc.isEmpty {
                    let ref = ServiceRef(namespace: c.namespace, name: svc)
                    affected.insert(ref)
                    slicesOfService[ref]?.remove(key)
                }
                let new = c.objects?.endpointSlices.first
                if let old = slices[key] { indexNodeless(old, -1) }
                if let new { indexNodeless(new, +1) }
                if let new, let svc = new.serviceName, !svc.isEmpty {
                    let ref = ServiceRef(namespace: c.namespace, name: svc)
                    affected.insert(ref)
                    slicesOfService[ref, default: []].insert(key)
                }
                slices[key] = new
            case "Service":
                if changedServices[key] == nil { changedServices[key] = .some(services[key]) }
                services[key] = c.objects?.services.first
                affected.insert(key)
            case "Pod":
                let old = pods[key], new = c.objects?.pods.first
                pods.set(key, new)
                let selectors = podSelectors
                if [old, new].contains(where: { $0.map { selected($0, by: selectors) } ?? false }) {
                    selectedPods[key] = new.flatMap { selected($0, by: selectors) ? $0 : nil }
                    layerDirty = true
                }
            case "LocalRedirectPolicy":
                localRedirectPolicies[key] = c.objects?.localRedirectPolicies.first
                layerDirty = true
                selectorsChanged = true
            case "BalancingPolicy":
                balancingPolicies[key] = c.objects?.balancingPolicies.first
                layerDirty = true
                selectorsChanged = true
            case "Node":
                let new = c.objects?.nodes.first
                if nodeMattersToPolicies(nodeObjects[c.name], new) {
                    if layerBefore == nil { layerBefore = layerRecords() }
                    layerDirty = true
                }
                // Nodes first: a slice of this batch may name a node it adds.
                switch applyNode(c.name, new) {
                case .success(let (d, replan)):
                    nodeDelta.merge(d)
                    affected.formUnion(replan)
                case .failure(let o): return .needsFullCompile(o.reason)
                }
                nodeObjects[c.name] = new
            default:
                return .needsFullCompile("\(c.kind) \(c.namespace.isEmpty ? "" : c.namespace + "/")\(c.name) changed")
            }
        }
        let named = namedBefore.union(policyServices)
        if let ref = changedServices.keys.first(where: { named.contains($0) }) {
            return .needsFullCompile("Service \(ref.namespace)/\(ref.name): a policy names it")
        }
        var replanned: [(ref: ServiceRef, old: ServicePlan, new: ServicePlan)] = []
        // The records the replanned services had, taken before anything they were written with
        // (ids, winners, the backend registry) changes.
        var before: [ImageTable: RecordTable] = [:]
        for ref in affected.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
            if let previous = changedServices[ref] {
                switch replanService(ref, name: "\(ref.namespace)/\(ref.name)", previous: previous, before: &before) {
                case .failure(let o): return .needsFullCompile(o.reason)
                case .success(let r?): replanned.append(r)
                case .success(nil): break
                }
                continue
            }
            guard let svc = services[ref], let (old, groupIDs) = plans[ref], old.info != nil else { continue }
            let new = ServiceCompiler.plan(svc, serviceIDs: serviceIDs, groupIDs: groupIDs[...], slices: [ref: slicesOf(ref)],
                                           ownerOfAddress: ownerOfAddress, knownNodes: knownNodes, knownNames: knownNames,
                                           options: options)
            if let reason = obstacle(old, new) { return .needsFullCompile(reason) }
            records(old, into: &before)
            replanned.append((ref, old, new))
        }
        // The policies after everything they read (Nodes, Pods, Services named) is current.
        if layerDirty || selectorsChanged {
            if selectorsChanged { reselectPods() }
            let previous = layer
            // Taken before the layer is replaced (when no Node change took them earlier).
            let previousRecords = layerBefore ?? layerRecords()
            switch replanLayer() {
            case .success(let r): replanned.append(r)
            case .failure(let o): return .needsFullCompile(o.reason)
            }
            // Frontends newly claimed had a record of the Service's own (its plan is still the old one).
            for k in layer.claimed.subtracting(claimedBefore) {
                if let r = mergedFrontend(k, previous) { mergedBefore[r.key] = r.value }
            }
            for (table, records) in previousRecords { before[table, default: [:]].merge(records) { kept, _ in kept } }
            policyClaimed = layer.claimed
        }
        if replanned.isEmpty { return .delta(nodeDelta) }
        before[.frontends, default: [:]].merge(mergedBefore) { kept, _ in kept }

        var delta = nodeDelta
        switch settleBackends(replanned) {
        case .success(let d): delta.merge(d)
        case .failure(let o): return .needsFullCompile(o.reason)
        }

        var after: [ImageTable: RecordTable] = [:]
        for r in replanned {
            records(r.new, into: &after)
            if services[r.ref] != nil { plans[r.ref] = (r.new, plans[r.ref]?.groupIDs ?? []) }
        }
        for k in claimedBefore.union(policyClaimed) {
            if let r = mergedFrontend(k, layer) { after[.frontends, default: [:]][r.key] = r.value }
        }
        delta.merge(ImageRecords.delta(from: before, to: after))
        return .delta(delta)
    }
}
