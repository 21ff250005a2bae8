import MapImage

/// The Multi-Cluster Services API (KEP-1645) over a merged snapshot (Clusters.merge): each
/// ServiceImport becomes a Service of the pseudo-cluster `clusterset` (namespace
/// `clusterset/<namespace>`) with the import's clusterset IPs, and EndpointSlices gathering the
/// endpoints of every cluster that exports it. The compiler then needs nothing of its own for
/// them but the frontend kind and the cluster affinity.
///
/// - Exporting clusters: those with a ServiceExport and a Service of the import's namespace and
///   name. Their properties are merged as the KEP says: ports are the union by name (by
///   port/protocol when unnamed), and a property two exports disagree on (a port's number or
///   protocol, session affinity, cluster affinity) takes the oldest export's value
///   (creationTimestamp, then `--cluster` order), with a warning naming every cluster.
/// - Endpoints: an exporting cluster's own EndpointSlices of the Service; for a cluster whose
///   Service is not among the inputs, the slices an MCS controller wrote, labelled
///   `multicluster.kubernetes.io/service-name` and `multicluster.kubernetes.io/source-cluster`.
/// - A ServiceImport seen in several clusters (each importing cluster has one) is one import;
///   when their IPs differ, the first cluster's (in `--cluster` order) are used, with a warning.
enum MultiClusterServices {
    static let serviceNameLabel = "multicluster.kubernetes.io/service-name"
    static let sourceClusterLabel = "multicluster.kubernetes.io/source-cluster"
    static let affinityAnnotation = "balancing.elf.io/cluster-affinity"

    struct Ref: Hashable, Comparable {
        var namespace: Substring
        var name: String
        static func < (a: Ref, b: Ref) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
        var text: String { "\(namespace)/\(name)" }
    }

    /// One exporting cluster of an import.
    struct Export {
        var cluster: String
        var order: Int
        var export: ServiceExport
        var service: Service

        var timestamp: String { export.meta.creationTimestamp.isEmpty ? "~" : export.meta.creationTimestamp }
        var affinity: String? { export.meta.annotations[affinityAnnotation] ?? service.meta.annotations[affinityAnnotation] }
    }

    static func synthesize(_ snap: inout Snapshot, _ diagnostics: inout [Diagnostic]) {
        let order = Dictionary(snap.clusters.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        func ref(_ qualifiedNamespace: String, _ name: String) -> (cluster: String, ref: Ref)? {
            guard let c = Clusters.cluster(of: qualifiedNamespace) else { return nil }
            return (String(c), Ref(namespace: Clusters.local(qualifiedNamespace), name: name))
        }
        // Slices an MCS controller wrote: the import's, and out of their cluster's own slices
        // unless they also name a Service of it (a derived Service, as GKE's MCS makes).
        var mcsSlices: [Ref: [(holder: String, slice: EndpointSlice)]] = [:]
        snap.endpointSlices.removeAll { s in
            guard let svc = s.meta.labels[serviceNameLabel], let (holder, r) = ref(s.meta.namespace, svc) else { return false }
            mcsSlices[r, default: []].append((holder, s))
            return s.serviceName == nil
        }
        var services: [String: [Ref: Service]] = [:]
        for s in snap.services {
            if let (c, r) = ref(s.meta.namespace, s.meta.name) { services[c, default: [:]][r] = s }
        }
        var slicesOf: [String: [Ref: [EndpointSlice]]] = [:]
        for s in snap.endpointSlices {
            guard let svc = s.serviceName, let (c, r) = ref(s.meta.namespace, svc) else { continue }
            slicesOf[c, default: [:]][r, default: []].append(s)
        }
        var exports: [Ref: [Export]] = [:]
        for e in snap.serviceExports {
            guard let (c, r) = ref(e.meta.namespace, e.meta.name) else { continue }
            guard let svc = services[c]?[r] else {
                diagnostics.append(Diagnostic(.warning, file: e.source.file, line: e.source.line, column: e.source.column,
                                              object: "ServiceExport \(c)/\(r.text)",
                                              message: "cluster \(c) has no Service \(r.text) to export; ignored"))
                continue
            }
            exports[r, default: []].append(Export(cluster: c, order: order[c] ?? 0, export: e, service: svc))
        }
        var imports: [Ref: [(cluster: String, imp: ServiceImport)]] = [:]
        for i in snap.serviceImports {
            guard let (c, r) = ref(i.meta.namespace, i.meta.name) else { continue }
            imports[r, default: []].append((c, i))
        }
        for r in mcsSlices.keys.sorted() where imports[r] == nil {
            for (holder, s) in mcsSlices[r] ?? [] {
                diagnostics.append(Diagnostic(.note, file: s.source.file, line: s.source.line, column: s.source.column,
                                              object: "EndpointSlice \(holder)/\(r.namespace)/\(s.meta.name)", field: "metadata.labels",
                                              message: "labelled \(serviceNameLabel)=\(r.name) but no cluster has a ServiceImport \(r.text): ignored"))
            }
        }
        for r in exports.keys.sorted() where imports[r] == nil {
            let clusters = (exports[r] ?? []).map(\.cluster).joined(separator: ", ")
            diagnostics.append(Diagnostic(.note, file: nil, object: "ServiceExport \(r.text)",
                                          message: "exported by \(clusters) but no cluster has a ServiceImport \(r.text): no clusterset IP to serve"))
        }

        for r in imports.keys.sorted() {
            let candidates = (imports[r] ?? []).sorted { (order[$0.cluster] ?? 0) < (order[$1.cluster] ?? 0) }
            guard let (firstCluster, imp) = candidates.first else { continue }
            let object = "ServiceImport \(r.text)"
            func report(_ severity: Diagnostic.Severity, _ field: String, _ message: String) {
                diagnostics.append(Diagnostic(severity, file: imp.source.file, line: imp.source.line, column: imp.source.column,
                                              object: object, field: field, message: message))
            }
            let differing = candidates.filter { Set($0.imp.ips) != Set(imp.ips) }.map(\.cluster)
            if !differing.isEmpty {
                report(.warning, "spec.ips", "the ServiceImports of \(([firstCluster] + differing).joined(separator: ", ")) have different ips; \(firstCluster)'s \(imp.ips.map(\.description).joined(separator: ", ")) are used (the first in --cluster order)")
            }
            if imp.type == .headless {
                report(.note, "spec.type", "not proxied: type Headless (clients resolve the endpoints through DNS)")
                continue
            }
            if imp.ips.isEmpty {
                report(.note, "spec.ips", "not proxied: no clusterset IP allocated yet")
                continue
            }
            let exps = (exports[r] ?? []).sorted { ($0.timestamp, $0.order) < ($1.timestamp, $1.order) }
            var ports: [ServicePort] = []
            var affinityTimeout = imp.affinityTimeout
            var clusterAffinity = ClusterAffinity.none
            if exps.isEmpty {
                ports = imp.ports
            } else {
                ports = unionPorts(exps, report: report)
                affinityTimeout = oldestWins(exps, "spec.sessionAffinity", report: report) { e in
                    e.service.affinityTimeout.map { "ClientIP (\($0) s)" } ?? "None"
                }.service.affinityTimeout
                let winner = oldestWins(exps, "metadata.annotations[\(affinityAnnotation)]", report: report) { $0.affinity ?? "none" }
                if let text = winner.affinity {
                    if let a = ClusterAffinity(rawValue: text) {
                        clusterAffinity = a
                    } else {
                        report(.warning, "metadata.annotations", "\(affinityAnnotation) \(shown(text)) of \(winner.cluster) is not one of local, remote, none; none is used")
                    }
                }
            }
            // Endpoints: each exporting cluster's own slices; the MCS controller's for the others.
            var slices: [EndpointSlice] = []
            let own = Set(exps.map(\.cluster))
            for e in exps {
                for s in slicesOf[e.cluster]?[r] ?? [] { slices.append(gathered(s, from: e.cluster, service: r.name)) }
            }
            for (holder, s) in mcsSlices[r] ?? [] {
                let source = s.meta.labels[sourceClusterLabel] ?? holder
                if own.contains(source) { continue }
                var g = gathered(s, from: source, service: r.name)
                // Node names were qualified with the cluster holding the slice; they are the
                // source cluster's nodes (and unknown when that cluster is not an input).
                for i in g.endpoints.indices {
                    let local = g.endpoints[i].nodeName.map { String(Clusters.local($0)) }
                    g.endpoints[i].nodeName = order[source] == nil ? nil : local.map { "\(source)/\($0)" }
                    g.endpoints[i].forNodes = []
                }
                if order[source] == nil {
                    report(.note, "", "endpoints of cluster \(shown(source)) (EndpointSlice \(holder)/\(s.meta.namespace.split(separator: "/").last ?? "")/\(s.meta.name)) belong to no --cluster: they are remote to every client and have no node")
                }
                g.meta.name = "\(holder)/\(s.meta.name)"
                slices.append(g)
            }
            let creation = exps.first?.export.meta.creationTimestamp ?? imp.meta.creationTimestamp
            var meta = ObjectMeta(namespace: "\(Clusters.clusterSet)/\(r.namespace)", name: r.name, labels: [:], annotations: [:],
                                  creationTimestamp: creation)
            meta.uid = imp.meta.uid
            var svc = Service(meta: meta, source: imp.source, type: .clusterIP, headless: false, clusterIPs: imp.ips, ports: ports,
                              externalIPs: [], ingress: [], affinityTimeout: affinityTimeout, externalTrafficPolicy: .cluster,
                              internalTrafficPolicy: .cluster, publishNotReadyAddresses: false, hasSelector: true)
            svc.clusterAffinity = clusterAffinity
            snap.services.append(svc)
            snap.endpointSlices += slices
        }
    }

    /// A slice of cluster `cluster` re-homed in the clusterset namespace of the import.
    static func gathered(_ s: EndpointSlice, from cluster: String, service: String) -> EndpointSlice {
        var g = s
        g.meta.namespace = "\(Clusters.clusterSet)/\(Clusters.local(s.meta.namespace))"
        g.meta.name = "\(cluster)/\(s.meta.name)"
        g.serviceName = service
        g.sourceCluster = cluster
        return g
    }

    /// The union of the exports' ports, by name (by port/protocol when unnamed); a name two
    /// exports give different numbers or protocols keeps the oldest's. A port's nodePort is kept
    /// only when every export that has the port agrees on it (host mode nodeport needs one).
    static func unionPorts(_ exps: [Export], report: (Diagnostic.Severity, String, String) -> Void) -> [ServicePort] {
        var ports: [ServicePort] = []
        var owner: [String: String] = [:]
        var nodePorts: [String: Set<UInt16?>] = [:]
        func key(_ p: ServicePort) -> String { p.name.isEmpty ? "\(p.port)/\(p.proto.rawValue)" : p.name }
        for e in exps {
            for p in e.service.ports {
                let k = key(p)
                nodePorts[k, default: []].insert(p.nodePort)
                if let i = ports.firstIndex(where: { key($0) == k }) {
                    if ports[i].port != p.port || ports[i].proto != p.proto {
                        report(.warning, "spec.ports", "port \(shown(k)) is \(ports[i].port)/\(ports[i].proto.rawValue) in \(owner[k] ?? "?") and \(p.port)/\(p.proto.rawValue) in \(e.cluster); the oldest export's (\(owner[k] ?? "?")) is used")
                    }
                    continue
                }
                owner[k] = e.cluster
                var q = p
                q.targetPort = nil
                ports.append(q)
            }
        }
        for i in ports.indices {
            let set = nodePorts[key(ports[i])] ?? []
            if set.count == 1, let only = set.first {
                ports[i].nodePort = only
            } else {
                ports[i].nodePort = nil
                let list = set.map { $0.map { "\($0)" } ?? "none" }.sorted().joined(separator: ", ")
                report(.note, "spec.ports", "port \(shown(key(ports[i]))) has no single nodePort across the exporting clusters (\(list)): host mode nodeport cannot reach it")
            }
        }
        return ports
    }

    /// The oldest export's value of a property, with a warning naming every cluster when they
    /// disagree.
    static func oldestWins(_ exps: [Export], _ field: String, report: (Diagnostic.Severity, String, String) -> Void,
                           _ value: (Export) -> String) -> Export {
        let first = exps[0]
        let values = exps.map { "\($0.cluster): \(value($0))" }
        if Set(exps.map(value)).count > 1 {
            report(.warning, field, "the exporting clusters disagree (\(values.joined(separator: "; "))); the oldest export's (\(first.cluster)) is used")
        }
        return first
    }
}
