import Manifests
import MapImage

/// The policies' part of an image — their groups, sets and backends, and their rules on frontends —
/// compiled again whole when a policy, a Pod one selects, or a Node changes: policies are few, and
/// the Pods they select are kept apart from the cluster's others, so a change costs the policies'
/// own work, not the cluster's.
struct PolicyLayer: Sendable {
    /// Their sets and backends, as one plan (no frontends: those are `lrpClaims`/`bpClaims`).
    var plan: ServiceCompiler.ServicePlan
    var lrpClaims: [FrontendKey: ServiceCompiler.PolicyClaim] = [:]
    var bpClaims: [FrontendKey: ServiceCompiler.PolicyClaim] = [:]
    var groupIDs: Set<UInt32> = []

    var claimed: Set<FrontendKey> { Set(lrpClaims.keys).union(bpClaims.keys) }

    /// The rules a frontend carries ahead of the Service's.
    func rules(_ key: FrontendKey) -> [Rule] {
        [lrpClaims[key]?.rule, bpClaims[key]?.rule].compactMap { $0 }
    }

    static let ref = ServiceCompiler.ServiceRef(namespace: "", name: "")
    static var empty: PolicyLayer { PolicyLayer(plan: ServiceCompiler.ServicePlan(name: "", precedence: .init(timestamp: "", name: ""))) }
}

extension IncrementalCompiler {
    var hasPolicies: Bool { !localRedirectPolicies.isEmpty || !balancingPolicies.isEmpty }

    /// Services a policy names as its frontend (the policies read their cluster IPs and ports).
    var policyServices: Set<ServiceRef> {
        var named = Set<ServiceRef>()
        for p in localRedirectPolicies.values { if case .service(let ns, let name, _) = p.frontend { named.insert(ServiceRef(namespace: ns, name: name)) } }
        for p in balancingPolicies.values { if case .service(let ns, let name, _) = p.frontend { named.insert(ServiceRef(namespace: ns, name: name)) } }
        return named
    }

    /// Whether a Node's change can change what the policies compile to: a node that comes or goes
    /// (gate sets name every node a policy applies on; local backends need their node), its labels
    /// a node selector reads, its addresses and annotations when a policy sends to a node's address
    /// (hostPort, nodeProxy). A zone, or a label no selector reads, cannot.
    func nodeMattersToPolicies(_ old: Node?, _ new: Node?) -> Bool {
        guard hasPolicies else { return false }
        guard let old, let new else { return old != nil || new != nil }
        let configs = localRedirectPolicies.values.map(\.config) + balancingPolicies.values.map(\.config)
        let selectorKeys = Set(configs.compactMap(\.nodeSelector).flatMap { Array($0.matchLabels.keys) + $0.matchExpressions.map(\.key) })
        if selectorKeys.contains(where: { old.meta.labels[$0] != new.meta.labels[$0] }) { return true }
        let toNodes = balancingPolicies.values.contains {
            if case .serviceEndpoint(_, _, let mode) = $0.backend { return mode != .podEndpoint }
            return false
        }
        return toNodes && (old.addresses != new.addresses || old.meta.annotations != new.meta.annotations)
    }

    /// The selectors policies pick Pods by.
    var podSelectors: [LabelSelector] {
        var out = localRedirectPolicies.values.map(\.selector)
        for p in balancingPolicies.values { if case .serviceEndpoint(let selector, _, _) = p.backend { out.append(selector) } }
        return out
    }

    /// Whether a Pod may matter to a policy (any policy selecting it, eligible or not).
    func selected(_ pod: Pod, by selectors: [LabelSelector]) -> Bool {
        selectors.contains { $0.matches(pod.meta.labels) }
    }

    /// The Pods some policy selects, found again among all (after a policy's selector changed).
    mutating func reselectPods() {
        let selectors = podSelectors
        var out: [ServiceRef: Pod] = [:]
        for selector in selectors { out.merge(pods.matching(selector)) { a, _ in a } }
        selectedPods = out
    }

    /// The policies compiled as the full compile compiles them, from the policies, the Nodes, the
    /// selected Pods and the Services they name; an obstacle when they have an error (the full
    /// compile reports it) or name a node no Node object has.
    func compileLayer() -> Result<PolicyLayer, Obstacle> {
        if !hasPolicies { return .success(.empty) }
        var snapshot = Snapshot()
        func byName<T>(_ d: [ServiceRef: T]) -> [T] {
            d.keys.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }.compactMap { d[$0] }
        }
        snapshot.localRedirectPolicies = byName(localRedirectPolicies)
        snapshot.balancingPolicies = byName(balancingPolicies)
        snapshot.pods = byName(selectedPods)
        snapshot.services = policyServices.compactMap { services[$0] }
        var sc = ServiceCompiler(policiesOf: snapshot)
        sc.compilePolicies(defaultRedirectRateLimit: options.defaultRedirectRateLimit, serviceGroupIDs: groupSpace.used, nodeObjects: nodeObjects)
        if let e = sc.diagnostics.first(where: { $0.severity == .error }) {
            return .failure(Obstacle(reason: "\(e.object): \(e.message)"))
        }
        var layer = PolicyLayer.empty
        layer.plan.groups = sc.groups
        layer.groupIDs = Set(sc.groups.map(\.id))
        layer.plan.endpoints = sc.endpoints
        layer.plan.endpointHashes = sc.endpointHashes
        var nodes: [Int32] = []
        nodes.reserveCapacity(sc.endpointNodes.count)
        for n in sc.endpointNodes {
            guard n >= 0 else { nodes.append(-1); continue }
            let name = sc.nodeNames[Int(n)]
            guard let k = knownNodes[name] else { return .failure(Obstacle(reason: "a policy's backend is on node \(name), which has no Node object")) }
            nodes.append(k)
        }
        layer.plan.endpointNodes = nodes
        layer.plan.sets = sc.sets.map {
            ServicePlan.PlannedSet(groupID: $0.groupID, scope: $0.scope, scopeName: $0.scopeName, flags: $0.flags, members: $0.backends)
        }
        layer.lrpClaims = sc.lrpClaims
        layer.bpClaims = sc.bpClaims
        return .success(layer)
    }

    /// A frontend's record as the full compile merges it: the policies' rules of `layer`, then
    /// the rule of the Service that won it; nil when it has no rule.
    func mergedFrontend(_ key: FrontendKey, _ layer: PolicyLayer) -> (key: [UInt8], value: [UInt8])? {
        var rules = layer.rules(key)
        if let winner = frontendWinner[key], let ref = Self.ref(winner),
           let rule = plans[ref]?.plan.frontends.first(where: { $0.0 == key })?.1 {
            rules.append(rule)
        }
        guard !rules.isEmpty, let id = frontendSpace[key] else { return nil }
        return ImageRecords.frontend(Frontend(key: key, id: id, rules: rules))
    }

    static func ref(_ qualified: String) -> ServiceRef? {
        guard let slash = qualified.firstIndex(of: "/") else { return nil }
        return ServiceRef(namespace: String(qualified[..<slash]), name: String(qualified[qualified.index(after: slash)...]))
    }

    /// The records the policies have now: taken before anything they are keyed by (node ids)
    /// changes.
    func layerRecords() -> [ImageTable: RecordTable] {
        var out: [ImageTable: RecordTable] = [:]
        records(layer.plan, into: &out)
        for k in layer.claimed {
            if let r = mergedFrontend(k, layer) { out[.frontends, default: [:]][r.key] = r.value }
        }
        return out
    }

    /// Compiles the policies again; returns the old and new layer as a replanned entry.
    /// Frontends that gain or lose every rule take or free their id.
    mutating func replanLayer() -> Result<(ref: ServiceRef, old: ServicePlan, new: ServicePlan), Obstacle> {
        let new: PolicyLayer
        switch compileLayer() {
        case .success(let l): new = l
        case .failure(let o): return .failure(o)
        }
        let old = layer
        let keys = old.claimed.union(new.claimed)
        for k in keys.sorted() {
            let service = frontendWinner[k] != nil
            let had = service || !old.rules(k).isEmpty, has = service || !new.rules(k).isEmpty
            if had && !has, !frontendSpace.remove(k) { return .failure(Obstacle(reason: "another frontend's id was placed past the id of \(k)")) }
            if has && !had, frontendSpace.add(k, hash: k.stableHash) == nil { return .failure(Obstacle(reason: "the id of frontend \(k) would collide")) }
        }
        layer = new
        return .success((PolicyLayer.ref, old.plan, new.plan))
    }
}
