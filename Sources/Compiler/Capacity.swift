import Manifests
import MapImage

extension Compiler {
    /// One error per capacity of the datapath that `c` exceeds (ImageCapacity: each table's
    /// BL_MAX_*, the size of one backend set, BL_MAX_RULES), naming what fills it: an oversized
    /// set names its service port and the EndpointSlices its endpoints come from; an overfull
    /// table names its largest users. Empty when the image fits (the usual case costs one pass
    /// over the sets and frontends).
    static func capacityDiagnostics(_ c: ImageContents, snapshot: Snapshot) -> [Diagnostic] {
        let problems = ImageCapacity.check(c)
        if problems.isEmpty { return [] }
        let users = CapacityUsers(c, snapshot: snapshot)
        var perObject: [Diagnostic] = []
        var tables: [Diagnostic] = []
        // One error per service port (group), for its largest set: its local and zone sets
        // repeat the cluster set's endpoints.
        var largestSet: [UInt32: CapacityProblem] = [:]
        for p in problems {
            guard case .set(let key) = p.subject else { continue }
            if let other = largestSet[key.groupID], other.count >= p.count { continue }
            largestSet[key.groupID] = p
        }
        for p in problems {
            switch p.subject {
            case .table(let t):
                tables.append(Diagnostic(.error, file: nil, message: p.description + users.largest(in: t)))
            case .set(let key):
                guard largestSet[key.groupID] == p else { continue }
                perObject.append(users.oversizedSet(key, p))
            case .frontendRules(let key):
                let owners = Set(c.frontends.first { $0.key == key }?.rules.map { users.owner(ofGroup: $0.groupID) } ?? [])
                perObject.append(Diagnostic(.error, file: nil, object: owners.sorted().joined(separator: ", "), message: p.description))
            case .metadata:
                tables.append(Diagnostic(.error, file: nil, message: p.description))
            }
        }
        return perObject + tables
    }
}

/// Who fills the tables of an image, for the capacity errors.
struct CapacityUsers {
    let contents: ImageContents
    let snapshot: Snapshot
    let groups: [UInt32: GroupInfo]
    let serviceNames: Set<String>

    init(_ c: ImageContents, snapshot: Snapshot) {
        contents = c
        self.snapshot = snapshot
        groups = Dictionary(c.metadata.groups.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        serviceNames = Set(snapshot.services.map { "\($0.meta.namespace)/\($0.meta.name)" })
    }

    /// "Service ns/name" or the policy's own "LocalRedirectPolicy name".
    func owner(ofGroup id: UInt32) -> String {
        guard let g = groups[id] else { return "group \(id)" }
        return serviceNames.contains(g.ownerName) ? "Service \(g.ownerName)" : g.ownerName
    }

    /// "; the largest users: Service a/b (600000), …" for a table's records by owner.
    func largest(in table: ImageTable) -> String {
        var count: [String: Int] = [:]
        switch table {
        case .frontends:
            for f in contents.frontends {
                for o in Set(f.rules.map { owner(ofGroup: $0.groupID) }) { count[o, default: 0] += 1 }
            }
        case .vips:
            let names = Dictionary(contents.metadata.services.map { ($0.id, "Service \($0.qualifiedName)") }, uniquingKeysWith: { a, _ in a })
            for v in contents.vips { count[names[v.serviceID] ?? "service \(v.serviceID)", default: 0] += 1 }
        case .nodeAddresses:
            let names = Dictionary(contents.metadata.nodes.map { ($0.id, "Node \($0.name)") }, uniquingKeysWith: { a, _ in a })
            for a in contents.nodeAddresses { count[names[a.nodeID] ?? "node \(a.nodeID)", default: 0] += 1 }
        case .nodes:
            let objects = contents.nodes.filter { $0.flags.contains(.fromObject) }.count
            return "; \(objects) Node objects and \(contents.nodes.count - objects) node names that only endpoints mention"
        case .sets:
            for s in contents.sets { count[owner(ofGroup: s.key.groupID), default: 0] += 1 }
        case .slots, .members:
            for s in contents.sets { count[owner(ofGroup: s.key.groupID), default: 0] += s.backends.count }
        case .backends:
            var seen: [String: Set<UInt32>] = [:]
            for s in contents.sets { seen[owner(ofGroup: s.key.groupID), default: []].formUnion(s.backends) }
            count = seen.mapValues(\.count)
        case .serviceCIDRs:
            return "; ServiceCIDR objects and --service-cidr together"
        case .sourceRanges:
            let names = Dictionary(contents.metadata.services.map { ($0.id, "Service \($0.qualifiedName)") }, uniquingKeysWith: { a, _ in a })
            for r in contents.sourceRanges { count[names[r.ownerID] ?? "service \(r.ownerID)", default: 0] += 1 }
        }
        let top = count.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        guard !top.isEmpty else { return "" }
        let shown = top.prefix(3).map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
        return "; the largest users: \(shown)" + (top.count > 3 ? " and \(top.count - 3) more" : "")
    }

    /// The error for a set beyond a set's capacity, at the EndpointSlice (or object) its
    /// endpoints come from.
    func oversizedSet(_ key: SetKey, _ p: CapacityProblem) -> Diagnostic {
        let g = groups[key.groupID]
        let what = g.map { "\(owner(ofGroup: key.groupID)) port \($0.portName.isEmpty ? "\($0.port)" : $0.portName)/\($0.proto) (\($0.family))" }
            ?? "group \(key.groupID)"
        let isService = g.map { serviceNames.contains($0.ownerName) } ?? false
        var message = "\(what) has \(p.count) \(isService ? "endpoints" : "backends") in its \(scope(key)); a backend set holds at most \(p.limit) (\(p.remedy))"
        guard let g, serviceNames.contains(g.ownerName) else {
            return Diagnostic(.error, file: nil, object: owner(ofGroup: key.groupID), message: message)
        }
        let slices = snapshot.endpointSlices
            .filter { "\($0.meta.namespace)/\($0.serviceName ?? "")" == g.ownerName }
            .sorted { ($0.endpoints.count, $1.meta.name) > ($1.endpoints.count, $0.meta.name) }
        guard let first = slices.first else {
            let svc = snapshot.services.first { "\($0.meta.namespace)/\($0.meta.name)" == g.ownerName }
            return Diagnostic(.error, file: svc?.source.file, line: svc?.source.line ?? 0, column: svc?.source.column ?? 0,
                              object: "Service \(g.ownerName)", message: message)
        }
        if slices.count > 1 {
            let shown = slices.prefix(3).map { "\($0.meta.name) (\($0.endpoints.count))" }.joined(separator: ", ")
            message += "; its endpoints come from \(slices.count) EndpointSlices: \(shown)\(slices.count > 3 ? ", …" : "")"
        }
        return Diagnostic(.error, file: first.source.file, line: first.source.line, column: first.source.column,
                          object: "EndpointSlice \(first.meta.namespace)/\(first.meta.name)", field: "endpoints", message: message)
    }

    func scope(_ key: SetKey) -> String {
        let node = { (id: UInt32) in contents.metadata.node(id: id)?.name ?? "\(id)" }
        switch key.scope {
        case .cluster: return "cluster set"
        case .serving: return "set of endpoints still serving (draining)"
        case .zone: return "set for zone \(contents.metadata.zones.first { $0.id == key.scopeID }?.name ?? "\(key.scopeID)")"
        case .node: return "set hinted for node \(node(key.scopeID))"
        case .local: return "set of node \(node(key.scopeID))'s own endpoints"
        case .gate: return "gate set of node \(node(key.scopeID))"
        case .inCluster: return "set of cluster \(contents.metadata.clusterName(UInt8(truncatingIfNeeded: key.scopeID)))'s endpoints"
        case .outOfCluster: return "set of the endpoints outside cluster \(contents.metadata.clusterName(UInt8(truncatingIfNeeded: key.scopeID)))"
        }
    }
}
