import Manifests
import MapImage

/// Recompiles only the services a change of EndpointSlices touches, and says which records of
/// the image change: what keeps a large cluster's datapath current in milliseconds instead of a
/// full compile and reload per event.
///
/// It starts from a full compile (`Compiler.compileIncrementally`) and keeps what that compile
/// decided: every service's plan, the ids of services, groups, nodes, zones and frontends, and a
/// registry of backends (which sets list each address, under which nodes). A change re-plans the
/// services whose slices changed, exactly as the full compile plans them, and turns the old and the
/// new plans into records.
///
/// The result must be the records a full compile of the same objects gives, byte for byte. Where
/// that cannot be guaranteed cheaply, `apply` answers `.needsFullCompile` instead of guessing:
/// a frontend a policy also claims, a node or zone name no Node object has, a new backend whose
/// id would collide, or a removed backend another id was displaced past. After that answer the
/// compiler is spent: start a new one from a full compile.
public struct IncrementalCompiler: Sendable {
    typealias ServiceRef = ServiceCompiler.ServiceRef
    typealias ServicePlan = ServiceCompiler.ServicePlan

    /// A backend address as the registry sees it.
    struct BackendEntry: Sendable {
        /// The backend id; 0 while no set uses the address.
        var id: UInt32 = 0
        /// How many sets' members (over all plans) refer to a listing of this address.
        var inSets = 0
        /// Listings of the address (every plan endpoint), and how many under each known node.
        var listings = 0
        var nodes: [Int32: Int] = [:]

        /// The least node name it is listed under: node indices follow name order.
        var node: Int32 { nodes.keys.min() ?? -1 }
    }

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
    let serviceIDs: [String: UInt32]
    let knownNodes: [String: Int32]
    let knownNames: [String]
    let ownerOfAddress: [IPAddress: String]
    let nodeIDByIndex: [UInt32]
    let nodeIDs: [String: UInt32]
    let zoneIDs: [String: UInt32]
    let catalogueZones: Set<String>
    let frontendIDs: [FrontendKey: UInt32]
    /// The service whose rule a frontend carries (frontends no policy claims).
    let frontendWinner: [FrontendKey: String]
    let policyClaimed: Set<FrontendKey>
    /// Whether any policy exists: Pods matter to the image only through policies.
    public let hasPolicies: Bool
    var backends: [BackendIdentity: BackendEntry] = [:]
    var idOwner: [UInt32: BackendIdentity] = [:]
    /// Backends whose id is not their hash: [hash, id) is the range their placement passed over.
    var displaced: [BackendIdentity: (from: UInt32, to: UInt32)] = [:]

    /// Nil when the compile has something this compiler does not follow (nodes known only from
    /// endpoints, ids that wrapped around); every change then takes a full compile.
    init?(_ sc: ServiceCompiler, contents: ImageContents, snapshot: Snapshot, options: CompileOptions) {
        guard sc.nodeNames.count == sc.nodes.entries.count else { return nil }
        self.options = options
        hasPolicies = !snapshot.localRedirectPolicies.isEmpty || !snapshot.balancingPolicies.isEmpty
        for s in snapshot.services { services[ServiceRef(namespace: s.meta.namespace, name: s.meta.name)] = s }
        for s in snapshot.endpointSlices {
            let key = ServiceRef(namespace: s.meta.namespace, name: s.meta.name)
            slices[key] = s
            if let svc = s.serviceName, !svc.isEmpty { slicesOfService[ServiceRef(namespace: s.meta.namespace, name: svc), default: []].insert(key) }
        }
        var ids: [String: UInt32] = [:]
        for r in sc.retained {
            let ref = ServiceRef(namespace: r.service.meta.namespace, name: r.service.meta.name)
            plans[ref] = (r.plan, r.groupIDs)
            if let info = r.plan.info { ids[info.qualifiedName] = info.id }
        }
        serviceIDs = ids
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
        catalogueZones = sc.nodes.zoneNames
        var fids: [FrontendKey: UInt32] = [:]
        fids.reserveCapacity(contents.frontends.count)
        for f in contents.frontends { fids[f.key] = f.id }
        frontendIDs = fids
        frontendWinner = sc.frontends.mapValues { $0.precedence.name }
        policyClaimed = Set(sc.lrpClaims.keys).union(sc.bpClaims.keys)

        for r in sc.retained { list(r.plan, +1) }
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

    /// Adds (+1) or removes (-1) a plan's listings in the backend registry.
    mutating func list(_ plan: ServicePlan, _ sign: Int) {
        var inSet = [Bool](repeating: false, count: plan.endpoints.count)
        for s in plan.sets { for m in s.members { inSet[Int(m)] = true } }
        for (k, identity) in plan.endpoints.enumerated() {
            var e = backends[identity] ?? BackendEntry()
            e.listings += sign
            if inSet[k] { e.inSets += sign }
            let n = plan.endpointNodes[k]
            if n >= 0 {
                let c = (e.nodes[n] ?? 0) + sign
                e.nodes[n] = c == 0 ? nil : c
            }
            backends[identity] = e
        }
    }

    /// The records a plan contributes: its sets, and the frontends it wins.
    func records(_ plan: ServicePlan, into tables: inout [ImageTable: RecordTable]) {
        for s in plan.sets {
            let key = SetKey(groupID: s.groupID, scope: s.scope, scopeName: s.scopeName, zoneIDs: zoneIDs, nodeIDs: nodeIDs)
            let ids = s.members.map { backends[plan.endpoints[Int($0)]]?.id ?? 0 }
            ImageRecords.set(BackendSet(key: key, flags: s.flags, backends: ids), into: &tables)
        }
        var seen = Set<FrontendKey>()
        for (key, rule) in plan.frontends where frontendWinner[key] == plan.name && seen.insert(key).inserted {
            let r = ImageRecords.frontend(Frontend(key: key, id: frontendIDs[key] ?? 0, rules: [rule]))
            tables[.frontends, default: [:]][r.key] = r.value
        }
    }

    func backendRecord(_ identity: BackendIdentity, _ e: BackendEntry) -> (key: [UInt8], value: [UInt8]) {
        let node = e.node
        return ImageRecords.backend(Backend(id: e.id, address: identity.address, proto: identity.proto,
                                            nodeID: node >= 0 ? nodeIDByIndex[Int(node)] : 0))
    }

    /// Why a re-planned service cannot be followed incrementally, if it cannot.
    func obstacle(_ old: ServicePlan, _ new: ServicePlan) -> String? {
        if old.frontends.map(\.0) != new.frontends.map(\.0) || old.vips != new.vips || old.groups != new.groups {
            return "\(new.name): its frontends changed"
        }
        if !old.otherNodes.isEmpty || !new.otherNodes.isEmpty { return "\(new.name): an endpoint names a node with no Node object" }
        for s in old.sets + new.sets {
            switch s.scope {
            case .cluster: continue
            case .zone:
                if !catalogueZones.contains(s.scopeName) { return "\(new.name): a hint names zone \(s.scopeName), which no node has" }
            case .node, .local, .gate:
                if knownNodes[s.scopeName] == nil { return "\(new.name): a set names node \(s.scopeName), which has no Node object" }
            }
        }
        if let k = new.frontends.first(where: { policyClaimed.contains($0.0) }) { return "\(new.name): a policy also claims \(k.0)" }
        return nil
    }

    /// Applies changed EndpointSlices (nil: deleted) and returns the records to write.
    public mutating func apply(endpointSlices changes: [(namespace: String, name: String, slice: EndpointSlice?)]) -> Outcome {
        var affected = Set<ServiceRef>()
        for c in changes {
            let key = ServiceRef(namespace: c.namespace, name: c.name)
            if let old = slices[key], let svc = old.serviceName, !svc.isEmpty {
                let ref = ServiceRef(namespace: c.namespace, name: svc)
                affected.insert(ref)
                slicesOfService[ref]?.remove(key)
            }
            if let new = c.slice, let svc = new.serviceName, !svc.isEmpty {
                let ref = ServiceRef(namespace: c.namespace, name: svc)
                affected.insert(ref)
                slicesOfService[ref, default: []].insert(key)
            }
            slices[key] = c.slice
        }
        var replanned: [(ref: ServiceRef, old: ServicePlan, new: ServicePlan)] = []
        for ref in affected.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
            guard let svc = services[ref], let (old, groupIDs) = plans[ref], old.info != nil else { continue }
            let mine = (slicesOfService[ref] ?? []).compactMap { slices[$0] }.sorted { $0.meta.name < $1.meta.name }
            let new = ServiceCompiler.plan(svc, serviceIDs: serviceIDs, groupIDs: groupIDs[...], slices: [ref: mine],
                                           ownerOfAddress: ownerOfAddress, knownNodes: knownNodes, knownNames: knownNames)
            if let reason = obstacle(old, new) { return .needsFullCompile(reason) }
            replanned.append((ref, old, new))
        }
        if replanned.isEmpty { return .delta(RecordDelta()) }

        var before: [ImageTable: RecordTable] = [:]
        for r in replanned { records(r.old, into: &before) }
        var touched = Set<BackendIdentity>()
        for r in replanned {
            touched.formUnion(r.old.endpoints)
            touched.formUnion(r.new.endpoints)
        }
        var was: [BackendIdentity: BackendEntry] = [:]
        for t in touched { was[t] = backends[t] }
        for r in replanned {
            list(r.old, -1)
            list(r.new, +1)
        }

        var delta = RecordDelta()
        // Removed backends free their ids first, then new ones take theirs (the order the dense
        // rule would meet them in does not matter when no placement passed over either).
        var added: [BackendIdentity] = []
        for identity in touched.sorted() {
            guard var e = backends[identity] else { continue }
            let previous = was[identity]
            if e.inSets == 0, e.id != 0 {
                if let blocker = displaced.first(where: { $0.value.from <= e.id && e.id < $0.value.to }) {
                    return .needsFullCompile("backend id \(e.id) was passed over by \(blocker.key.address)")
                }
                delta.set(.backends, key: backendRecord(identity, e).key, value: nil)
                idOwner[e.id] = nil
                displaced[identity] = nil
                e.id = 0
            } else if e.inSets > 0, e.id == 0 {
                added.append(identity)
            } else if e.inSets > 0, let previous, previous.node != e.node {
                let r = backendRecord(identity, e)
                delta.set(.backends, key: r.key, value: r.value)
            }
            if e.listings == 0 && e.id == 0 { backends[identity] = nil } else { backends[identity] = e }
        }
        for identity in added {
            let h = max(identity.stableHash, 1)
            if let other = idOwner[h] { return .needsFullCompile("backend \(identity.address) hashes to id \(h), which \(other.address) has") }
            idOwner[h] = identity
            backends[identity]?.id = h
            if let e = backends[identity] {
                let r = backendRecord(identity, e)
                delta.set(.backends, key: r.key, value: r.value)
            }
        }

        var after: [ImageTable: RecordTable] = [:]
        for r in replanned {
            records(r.new, into: &after)
            plans[r.ref] = (r.new, plans[r.ref]?.groupIDs ?? [])
        }
        delta.merge(ImageRecords.delta(from: before, to: after))
        return .delta(delta)
    }
}
