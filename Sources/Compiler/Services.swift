import Manifests
import MapImage

/// Kubernetes Service semantics, compiled (docs/semantics.md). Everything that does not
/// depend on the node or the moment is decided here; what depends on the node (its own
/// endpoints, topology hints) is compiled for every node and keyed by node or zone id, so one image
/// serves every node and every out-of-cluster host.
struct ServiceCompiler {
    let snapshot: Snapshot
    var diagnostics: [Diagnostic] = []

    // Results
    var frontends: [FrontendKey: (Frontend, precedence: ServicePrecedence)] = [:]
    var vips: [IPAddress: (VIP, precedence: ServicePrecedence)] = [:]
    var sourceRanges: [SourceRange] = []
    var sets: [PendingSet] = []
    var groups: [GroupInfo] = []
    var services: [ServiceInfo] = []
    var groupIDs: [String: UInt32] = [:]
    /// Policy rules by frontend (Policies.swift), stacked in front of the Service's rule.
    var lrpClaims: [FrontendKey: PolicyClaim] = [:]
    var bpClaims: [FrontendKey: PolicyClaim] = [:]

    // Node and zone catalogue
    let nodes: NodeCatalogue
    /// The snapshot's clusters (none for a single-cluster snapshot).
    let clusters: ClusterIndex
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
    /// What the compile was asked (the address guardrail, --allowed-external-cidrs).
    var options = CompileOptions()
    var retained: [(service: Service, plan: ServicePlan, groupIDs: [UInt32])] = []
    /// Every service's id (skipped ones too), kept with the plans.
    var retainedServiceIDs: [String: UInt32] = [:]

    mutating func internNode(_ name: String) -> Int32 {
        if let i = nodeIndexByName[name] { return i }
        let i = Int32(nodeNames.count)
        nodeIndexByName[name] = i
        nodeNames.append(name)
        return i
    }

    init(snapshot: Snapshot) {
        self.snapshot = snapshot
        clusters = ClusterIndex(snapshot.clusters)
        var d: [Diagnostic] = []
        nodes = NodeCatalogue(snapshot: snapshot, diagnostics: &d)
        diagnostics = d
        for name in nodes.entries.keys.sorted() { _ = internNode(name) }
    }

    /// For the policies alone (the incremental compiler's policy layer): no node catalogue, nodes
    /// interned as policies name them (their indices are mapped back by name); the Nodes are
    /// given to `compilePolicies` as the caller keeps them.
    init(policiesOf snapshot: Snapshot) {
        self.snapshot = snapshot
        clusters = ClusterIndex(snapshot.clusters)
        var d: [Diagnostic] = []
        nodes = NodeCatalogue(snapshot: Snapshot(), diagnostics: &d)
        diagnostics = d
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
        /// loadBalancerSourceRanges, owned by the service's id.
        var sourceRanges: [SourceRange] = []
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
            for g in ServiceCompiler.groupIdentities(svc) {
                groupIdentities.append(g)
                groupHashes.append(g.stableHash)
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
        let clusters = self.clusters
        let options = self.options
        let plans = parallelMap(ordered.count) { i in
            ServiceCompiler.plan(ordered[i], serviceIDs: serviceIDs, groupIDs: groupIDs[offsets[i]..<offsets[i + 1]],
                                 slices: slices, ownerOfAddress: owners, knownNodes: known, knownNames: knownNames,
                                 clusters: clusters, options: options)
        }
        let endpointCount = plans.reduce(0) { $0 + $1.endpoints.count }
        endpoints.reserveCapacity(endpointCount)
        endpointHashes.reserveCapacity(endpointCount)
        endpointNodes.reserveCapacity(endpointCount)
        for plan in plans { apply(plan) }
        if retainPlans {
            retainedServiceIDs = serviceIDs
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
        sourceRanges += plan.sourceRanges
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
    struct GroupIdentity: Hashable, Comparable, Sendable {
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

    /// A service's groups, in the order its plan walks them (ports in spec order, then cluster IPs):
    /// the order group ids are handed to `plan` in.
    static func groupIdentities(_ svc: Service) -> [GroupIdentity] {
        guard skipReason(svc) == nil else { return [] }
        var out: [GroupIdentity] = []
        for port in svc.ports where port.proto.transport != nil {
            for ip in svc.clusterIPs {
                out.append(GroupIdentity(namespace: svc.meta.namespace, name: svc.meta.name, port: port.name,
                                         proto: port.proto.rawValue, family: ip.family.rawValue))
            }
        }
        return out
    }

    /// The hash a service's id derives from.
    static func serviceHash(_ namespace: String, _ name: String) -> UInt32 { StableID.hash(parts: "service/", namespace, "/", name) }

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
        if let (existing, other) = vips[vip.address], !clusters.isEmpty, vip.cluster != existing.cluster {
            // Two clusters' ClusterIPs (every cluster has 10.96.0.1): ClusterFrontends reports
            // the frontends; the address names the first cluster's service, as key 0 does, and
            // refuses unknown ports for every client (cluster 0).
            var shared = vip.cluster < existing.cluster ? (vip, precedence) : (existing, other)
            shared.0.cluster = 0
            vips[vip.address] = shared
            return
        }
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
}
