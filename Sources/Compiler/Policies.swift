import Manifests
import MapImage

/// LocalRedirectPolicy and BalancingPolicy, compiled (docs/policies.md). A policy becomes backend
/// groups and sets like a Service port does, and one rule per frontend it claims; the rules are
/// stacked in front of the Service's own rule on the same (address, port, protocol) when the image
/// is assembled: LocalRedirectPolicy, then BalancingPolicy, then Service. Every policy rule falls
/// through, so a policy that cannot serve here (no local pod, another node, over its rate, from
/// its own backend) leaves the connect to the next rule in the same call.
extension ServiceCompiler {
    /// One policy's rule for one frontend, with what decides a conflict.
    struct PolicyClaim: Sendable {
        /// nil when the policy has no backend at all: it claims the frontend (conflicts are
        /// still found) but contributes no rule, which is the same as falling through.
        var rule: Rule?
        var precedence: ServicePrecedence
        var object: String
        var source: ObjectSource
    }

    /// The parts of LocalRedirectPolicy and BalancingPolicy the compile treats alike.
    struct PolicyEntry {
        enum Backends {
            case localPods(LabelSelector)
            case pods(LabelSelector, RedirectMode)
            case addresses([IPAddress])
        }

        var kind: String
        var tag: String
        var origin: RuleOrigin
        var meta: ObjectMeta
        var source: ObjectSource
        var enabled: Bool
        var config: PolicyConfig
        var frontend: PolicyFrontend
        var backends: Backends
        var backendPorts: [PolicyPort]
        var skipFromBackend: Bool
        var rateLimit: UInt32?

        var object: String { "\(kind) \(meta.name)" }
        var identity: String { "\(tag)/\(meta.name)" }
    }

    /// A frontend port of a policy, paired with its backend port, for one address family.
    struct PolicyPortPlan {
        var entry: Int
        var family: IPFamily
        var frontendPort: UInt16
        var proto: PortProtocol
        var name: String
        var backendPort: UInt16
        var addresses: [IPAddress]
    }

    /// `serviceGroupIDs`: the ids policy groups must not take (the Services' groups); by default
    /// those this compile has.
    /// `nodeObjects`: the Nodes by name, when the caller keeps them so (else from the snapshot).
    mutating func compilePolicies(defaultRedirectRateLimit: UInt32, serviceGroupIDs: Set<UInt32>? = nil, nodeObjects: [String: Node]? = nil) {
        var entries: [PolicyEntry] = []
        for p in snapshot.localRedirectPolicies {
            entries.append(PolicyEntry(kind: "LocalRedirectPolicy", tag: "lrp", origin: .localRedirect, meta: p.meta, source: p.source,
                                       enabled: p.enabled, config: p.config, frontend: p.frontend, backends: .localPods(p.selector),
                                       backendPorts: p.toPorts, skipFromBackend: p.skipRedirectFromBackend,
                                       rateLimit: p.rateLimit ?? (defaultRedirectRateLimit > 0 ? defaultRedirectRateLimit : nil)))
        }
        for p in snapshot.balancingPolicies {
            let backends: PolicyEntry.Backends
            let ports: [PolicyPort]
            switch p.backend {
            case .serviceEndpoint(let selector, let toPorts, let mode):
                backends = .pods(selector, mode)
                ports = toPorts
            case .addressEndpoint(let addresses, let toPorts):
                backends = .addresses(addresses)
                ports = toPorts
            }
            entries.append(PolicyEntry(kind: "BalancingPolicy", tag: "bp", origin: .balancing, meta: p.meta, source: p.source,
                                       enabled: p.enabled, config: p.config, frontend: p.frontend, backends: backends,
                                       backendPorts: ports, skipFromBackend: false, rateLimit: p.rateLimit))
        }
        entries.sort { $0.identity < $1.identity }
        guard !entries.isEmpty else { return }

        // Policy ids: the seed system's annotation, else derived from kind and name.
        var explicit: [Int: UInt32] = [:]
        for (i, e) in entries.enumerated() {
            guard let a = e.meta.annotations["balancing.elf.io/serviceId"] else { continue }
            if let v = UInt32(a), v != 0 {
                explicit[i] = v
            } else {
                report(.warning, e, "metadata.annotations", "balancing.elf.io/serviceId \(shown(a)) is not a non-zero 32-bit number; a derived id is used")
            }
        }
        let identities = entries.map(\.identity)
        var idConflicts: [(Int, Int, UInt32)] = []
        let policyIDs = StableID.assignPositions(identities, hashes: identities.map { StableID.hash("policy/\($0)") },
                                                 explicit: explicit) { idConflicts.append(($0, $1, $2)) }
        for (first, second, id) in idConflicts {
            report(.warning, entries[second], "metadata.annotations",
                   "balancing.elf.io/serviceId \(id) is already the id of \(entries[first].object); a derived id is used")
        }

        // Frontends and port pairing; a policy with an error is left out whole.
        var plans: [PolicyPortPlan] = []
        for (i, e) in entries.enumerated() {
            guard e.enabled else {
                report(.note, e, "spec.enabled", "disabled: not compiled")
                continue
            }
            if let p = planPorts(e, index: i) { plans += p }
        }

        // Group ids: stable per (policy, frontend port, family), never one a Service group has.
        let groupIdentities = plans.map {
            GroupIdentity(namespace: entries[$0.entry].tag, name: entries[$0.entry].meta.name, port: "\($0.frontendPort)",
                          proto: $0.proto.rawValue, family: $0.family.rawValue)
        }
        let groupIDs = StableID.assignPositions(groupIdentities, hashes: groupIdentities.map(\.stableHash), explicit: [:],
                                                reserved: serviceGroupIDs ?? Set(groups.map(\.id)))

        let eligiblePods = snapshot.pods.filter { $0.phase == "Running" && $0.ready && !$0.terminating }
        let nodeObjects = nodeObjects ?? Dictionary(snapshot.nodes.map { ($0.meta.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (k, plan) in plans.enumerated() {
            compilePolicyPort(plan, entry: entries[plan.entry], policyID: policyIDs[plan.entry], groupID: groupIDs[k],
                              pods: eligiblePods, nodeObjects: nodeObjects)
        }
    }

    private mutating func report(_ severity: Diagnostic.Severity, _ e: PolicyEntry, _ field: String, _ message: String) {
        diagnostics.append(Diagnostic(severity, file: e.source.file, line: e.source.line, column: e.source.column,
                                      object: e.object, field: field, message: message))
    }

    /// The policy's frontend ports paired with backend ports, per address family; nil (with
    /// errors reported) when the policy cannot be compiled.
    private mutating func planPorts(_ e: PolicyEntry, index: Int) -> [PolicyPortPlan]? {
        struct Front {
            var port: UInt16
            var proto: PortProtocol
            var name: String
        }
        var fronts: [Front] = []
        var addresses: [IPAddress] = []
        var failed = false
        switch e.frontend {
        case .address(let ip, let toPorts):
            if let reason = options.refusal(of: ip) {
                report(.error, e, "spec.frontend.addressMatcher.ip", reason)
                return nil
            }
            addresses = [ip]
            fronts = toPorts.map { Front(port: $0.port, proto: $0.proto, name: $0.name) }
        case .service(let namespace, let name, let toPorts):
            guard let svc = snapshot.services.first(where: { $0.meta.namespace == namespace && $0.meta.name == name }) else {
                report(.error, e, "spec.frontend.serviceMatcher.serviceName", "Service \(namespace)/\(name) not found")
                return nil
            }
            if let reason = ServiceCompiler.skipReason(svc) {
                report(.error, e, "spec.frontend.serviceMatcher.serviceName", "Service \(namespace)/\(name) is not proxied (\(reason))")
                return nil
            }
            addresses = svc.clusterIPs
            if toPorts.isEmpty {
                fronts = svc.ports.filter { $0.proto.transport != nil }.map { Front(port: $0.port, proto: $0.proto, name: $0.name) }
            } else {
                for (i, p) in toPorts.enumerated() {
                    guard let sp = svc.ports.first(where: { $0.port == p.port && $0.proto == p.proto }) else {
                        report(.error, e, "spec.frontend.serviceMatcher.toPorts[\(i)]",
                               "port \(p.port)/\(p.proto.rawValue) is not a port of Service \(namespace)/\(name)")
                        failed = true
                        continue
                    }
                    fronts.append(Front(port: p.port, proto: p.proto, name: p.name.isEmpty ? sp.name : p.name))
                }
            }
        }
        // Pairing: one port each side pairs directly; otherwise by name.
        var out: [PolicyPortPlan] = []
        for f in fronts {
            let back: PolicyPort?
            if fronts.count == 1 && e.backendPorts.count == 1 {
                back = e.backendPorts[0]
            } else {
                back = f.name.isEmpty ? nil : e.backendPorts.first { $0.name == f.name }
            }
            let label = f.name.isEmpty ? "\(f.port)/\(f.proto.rawValue)" : "\"\(f.name)\" (\(f.port)/\(f.proto.rawValue))"
            guard let back else {
                report(.error, e, "spec.backend", "no backend port pairs with frontend port \(label)")
                failed = true
                continue
            }
            guard back.proto == f.proto else {
                report(.error, e, "spec.backend", "protocols differ: frontend port \(label), backend port \(back.port)/\(back.proto.rawValue)")
                failed = true
                continue
            }
            guard f.proto.transport != nil else { continue }
            for family in [IPFamily.ipv4, .ipv6] {
                let mine = addresses.filter { $0.family == family }
                guard !mine.isEmpty else { continue }
                out.append(PolicyPortPlan(entry: index, family: family, frontendPort: f.port, proto: f.proto, name: f.name,
                                          backendPort: back.port, addresses: mine))
            }
        }
        return failed ? nil : out
    }

    private mutating func compilePolicyPort(_ plan: PolicyPortPlan, entry e: PolicyEntry, policyID: UInt32, groupID: UInt32,
                                            pods: [Pod], nodeObjects: [String: Node]) {
        guard let transport = plan.proto.transport else { return }
        // A policy of one cluster selects that cluster's pods and nodes, and serves its clients.
        let cluster = clusters.id(of: e.meta.name)
        let pods = clusters.isEmpty ? pods : pods.filter { clusters.id(of: $0.meta.namespace) == cluster }
        let nodeObjects = clusters.isEmpty ? nodeObjects : nodeObjects.filter { clusters.id(of: $0.key) == cluster }
        groups.append(GroupInfo(id: groupID, owner: policyID, ownerName: e.object, portName: plan.name, port: plan.frontendPort,
                                proto: plan.proto.rawValue, family: plan.family.rawValue, nodePort: nil))
        func backend(_ address: IPAddress) -> BackendIdentity {
            BackendIdentity(address: SocketAddress(address: address, port: plan.backendPort), proto: transport, cluster: cluster)
        }
        /// The node's address of this family: InternalIP first.
        func nodeAddress(_ name: String) -> IPAddress? {
            guard let n = nodeObjects[name] else { return nil }
            let mine = n.addresses.filter { $0.address.family == plan.family }
            return (mine.first { $0.type == "InternalIP" } ?? mine.first)?.address
        }
        // Backends: (identity, node name) lists, per set.
        var sets: [(SetScope, String, [(BackendIdentity, String?)])] = []
        var flags: RuleFlags = cluster == 0 ? [.fallThrough] : [.fallThrough, .clusterScoped]
        var backendNodes: Set<String> = []
        switch e.backends {
        case .localPods(let selector):
            flags.insert(.localOnly)
            if e.skipFromBackend { flags.insert(.skipFromBackend) }
            var byNode: [String: [(BackendIdentity, String?)]] = [:]
            for pod in pods where selector.matches(pod.meta.labels) {
                guard let node = pod.nodeName, !node.isEmpty, let ip = pod.podIPs.first(where: { $0.family == plan.family }) else { continue }
                byNode[node, default: []].append((backend(ip), node))
            }
            for (node, list) in byNode.sorted(by: { $0.key < $1.key }) {
                sets.append((.local, node, list))
                backendNodes.insert(node)
            }
        case .pods(let selector, let mode):
            var list: [(BackendIdentity, String?)] = []
            var seenNodes: Set<String> = []
            for pod in pods where selector.matches(pod.meta.labels) {
                switch mode {
                case .podEndpoint:
                    guard let ip = pod.podIPs.first(where: { $0.family == plan.family }) else { continue }
                    list.append((backend(ip), pod.nodeName))
                case .hostPort, .nodeProxy:
                    guard let node = pod.nodeName, !node.isEmpty, seenNodes.insert(node).inserted else { continue }
                    var address = nodeAddress(node)
                    if mode == .nodeProxy {
                        let key = plan.family == .ipv4 ? "balancing.elf.io/nodeProxyIpv4" : "balancing.elf.io/nodeProxyIpv6"
                        if let text = nodeObjects[node]?.meta.annotations[key], let ip = IPAddress(text), ip.family == plan.family {
                            address = ip
                        }
                    }
                    guard let address else { continue }
                    list.append((backend(address), node))
                }
            }
            if mode != .podEndpoint { flags.insert(.direct) }
            if !list.isEmpty { sets.append((.cluster, "", list)) }
        case .addresses(let addresses):
            flags.insert(.direct)
            let list = addresses.filter { $0.family == plan.family }.map { (backend($0), String?.none) }
            if !list.isEmpty { sets.append((.cluster, "", list)) }
        }

        var rule: Rule?
        if !sets.isEmpty {
            for (scope, scopeName, list) in sets {
                var unique: [BackendIdentity: String?] = [:]
                for (b, node) in list where unique[b] == nil { unique[b] = node }
                var positions: [Int32] = []
                for b in unique.keys.sorted() {
                    positions.append(Int32(endpoints.count))
                    endpoints.append(b)
                    endpointHashes.append(b.stableHash)
                    endpointNodes.append((unique[b] ?? nil).map { internNode($0) } ?? -1)
                }
                if scope == .local { _ = internNode(scopeName) }
                self.sets.append(PendingSet(groupID: groupID, scope: scope, scopeName: scopeName, flags: [], backends: positions))
            }
            // Node selection: gate sets name the nodes the rule applies on.
            if e.config.nodeSelector != nil || !e.config.enableOutCluster {
                flags.insert(.nodeGated)
                if e.config.enableOutCluster { flags.insert(.outCluster) }
                let selector = e.config.nodeSelector
                var gated: Set<String> = []
                for (name, node) in nodeObjects where selector?.matches(node.meta.labels) ?? true { gated.insert(name) }
                // Nodes known only by name have no labels: only an empty selector matches them.
                if selector.map({ $0.matchLabels.isEmpty && $0.matchExpressions.isEmpty }) ?? true {
                    gated.formUnion(backendNodes)
                }
                for name in gated.sorted() {
                    _ = internNode(name)
                    self.sets.append(PendingSet(groupID: groupID, scope: .gate, scopeName: name, flags: [], backends: []))
                }
            }
            let kind: FrontendKind
            if case .address = e.frontend { kind = .policyAddress } else { kind = .policyService }
            rule = Rule(groupID: groupID, ownerID: policyID, rateLimit: e.rateLimit ?? 0, origin: e.origin, kind: kind,
                        action: .translate, flags: flags, cluster: cluster)
        }

        let precedence = ServicePrecedence(timestamp: e.meta.creationTimestamp, name: e.meta.name)
        for address in plan.addresses {
            let key = FrontendKey(address: address, port: plan.frontendPort, proto: transport, cluster: cluster)
            claimPolicyFrontend(key, PolicyClaim(rule: rule, precedence: precedence, object: e.object, source: e.source),
                                origin: e.origin)
        }
    }

    /// Two policies of one kind on one frontend: the older keeps it; the other's rule for it is
    /// dropped with an error naming both (the compile fails unless --keep-going).
    private mutating func claimPolicyFrontend(_ key: FrontendKey, _ claim: PolicyClaim, origin: RuleOrigin) {
        let existing = origin == .localRedirect ? lrpClaims[key] : bpClaims[key]
        var winner = claim
        if let other = existing {
            let (w, l) = claim.precedence < other.precedence ? (claim, other) : (other, claim)
            winner = w
            diagnostics.append(Diagnostic(.error, file: l.source.file, line: l.source.line, column: l.source.column, object: l.object,
                                          field: "spec.frontend",
                                          message: "frontend \(key) is also claimed by \(w.object), which is older and keeps it; this policy's rule for it is dropped"))
        }
        if origin == .localRedirect { lrpClaims[key] = winner } else { bpClaims[key] = winner }
    }

    /// Every frontend with its rules in priority order: LocalRedirectPolicy, BalancingPolicy,
    /// Service.
    func mergedFrontends() -> [Frontend] {
        var keys = Set(frontends.keys)
        keys.formUnion(lrpClaims.keys)
        keys.formUnion(bpClaims.keys)
        var out: [Frontend] = []
        out.reserveCapacity(keys.count)
        for key in keys {
            var rules: [Rule] = []
            if let r = lrpClaims[key]?.rule { rules.append(r) }
            if let r = bpClaims[key]?.rule { rules.append(r) }
            if let f = frontends[key] { rules += f.0.rules }
            guard !rules.isEmpty else { continue }
            out.append(Frontend(key: key, id: 0, rules: rules))
        }
        return out
    }
}
