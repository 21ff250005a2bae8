import Crypto
import MapImage

/// Several clusters in one compile (docs/multicluster.md). Each cluster's objects are qualified
/// by its name, so that two clusters may both have `default/web` and `worker-1`: a namespace
/// becomes `<cluster>/<namespace>`, a node `<cluster>/<node>`, a cluster-scoped object
/// `<cluster>/<name>`. Kubernetes names never contain "/", so a qualified name is never mistaken
/// for another. Everything downstream (ids, policy selection, slices finding their Service)
/// then keeps each cluster apart with no change, and every message names the cluster.
///
/// ServiceImports become Services of the pseudo-cluster `clusterset` whose endpoints are every
/// exporting cluster's (MultiClusterServices.swift).
public enum Clusters {
    /// The pseudo-cluster of clusterset services (ServiceImports); no `--cluster` may take it.
    public static let clusterSet = "clusterset"

    /// Why `name` cannot name a cluster, or nil: a DNS label (as a ClusterProperty's id is one),
    /// and not `clusterset`.
    public static func invalidName(_ name: String) -> String? {
        if name == clusterSet { return "\"\(clusterSet)\" is reserved for the services of the clusterset (ServiceImports)" }
        return KubeValidation.dns1123Label(name)
    }

    /// The cluster part of a qualified namespace or name ("east/default" → "east"); nil when
    /// unqualified.
    public static func cluster(of qualified: String) -> Substring? {
        guard let slash = qualified.firstIndex(of: "/") else { return nil }
        return qualified[..<slash]
    }

    /// The name without its cluster ("east/default" → "default").
    public static func local(_ qualified: String) -> Substring {
        guard let slash = qualified.firstIndex(of: "/") else { return qualified[...] }
        return qualified[qualified.index(after: slash)...]
    }

    /// One snapshot of every cluster, qualified, with the ServiceImports made Services. `clusters`
    /// are in `--cluster` order (cluster id = index + 1); names must be valid and distinct (the
    /// command line checks them).
    public static func merge(_ clusters: [(name: String, snapshot: Snapshot)]) -> (Snapshot, [Diagnostic]) {
        var out = Snapshot()
        out.clusters = clusters.map(\.name)
        for (name, snap) in clusters {
            let q = Qualifier(cluster: name)
            out.services += snap.services.map(q.service)
            out.endpointSlices += snap.endpointSlices.map(q.slice)
            out.nodes += snap.nodes.map(q.node)
            out.pods += snap.pods.map(q.pod)
            out.localRedirectPolicies += snap.localRedirectPolicies.map(q.localRedirectPolicy)
            out.balancingPolicies += snap.balancingPolicies.map(q.balancingPolicy)
            out.serviceCIDRs += snap.serviceCIDRs.map { var c = $0; c.meta.name = q.name(c.meta.name); return c }
            out.serviceImports += snap.serviceImports.map { var i = $0; i.meta.namespace = q.name(i.meta.namespace); return i }
            out.serviceExports += snap.serviceExports.map { var e = $0; e.meta.namespace = q.name(e.meta.namespace); return e }
            for (kind, n) in snap.counts { out.counts[kind, default: 0] += n }
            // The same object in two clusters is two inputs: each digest is bound to its cluster.
            for d in snap.objectDigests {
                var h = SHA256()
                h.update(data: Array("cluster/\(name)/".utf8))
                h.update(data: d)
                out.objectDigests.append(Array(h.finalize()))
            }
        }
        var diagnostics: [Diagnostic] = []
        MultiClusterServices.synthesize(&out, &diagnostics)
        return (out, diagnostics)
    }
}

/// Qualifies one cluster's objects (Clusters).
struct Qualifier {
    let cluster: String

    func name(_ s: String) -> String { "\(cluster)/\(s)" }
    func node(_ s: String?) -> String? { s.map(name) }

    func service(_ s: Service) -> Service {
        var s = s
        s.meta.namespace = name(s.meta.namespace)
        return s
    }

    func slice(_ s: EndpointSlice) -> EndpointSlice {
        var s = s
        s.meta.namespace = name(s.meta.namespace)
        for i in s.endpoints.indices {
            s.endpoints[i].nodeName = node(s.endpoints[i].nodeName)
            s.endpoints[i].forNodes = s.endpoints[i].forNodes.map(name)
        }
        return s
    }

    func node(_ n: Node) -> Node {
        var n = n
        n.meta.name = name(n.meta.name)
        return n
    }

    func pod(_ p: Pod) -> Pod {
        var p = p
        p.meta.namespace = name(p.meta.namespace)
        p.nodeName = node(p.nodeName)
        return p
    }

    func frontend(_ f: PolicyFrontend) -> PolicyFrontend {
        switch f {
        case .address: f
        case .service(let namespace, let svc, let toPorts): .service(namespace: name(namespace), name: svc, toPorts: toPorts)
        }
    }

    func localRedirectPolicy(_ p: LocalRedirectPolicy) -> LocalRedirectPolicy {
        var p = p
        p.meta.name = name(p.meta.name)
        p.frontend = frontend(p.frontend)
        return p
    }

    func balancingPolicy(_ p: BalancingPolicy) -> BalancingPolicy {
        var p = p
        p.meta.name = name(p.meta.name)
        p.frontend = frontend(p.frontend)
        return p
    }
}

/// One cluster's inputs as `--cluster NAME=PATH` gives them (PATH repeatable per NAME).
public struct ClusterInput: Sendable, Equatable {
    public var name: String
    public var paths: [String]

    public init(name: String, paths: [String]) {
        self.name = name
        self.paths = paths
    }

    /// `NAME=PATH` arguments grouped by name, in the order names first appear; an error names
    /// the argument that is malformed or whose name cannot name a cluster.
    public static func parse(_ arguments: [String], option: String = "--cluster") throws(CompileFailure) -> [ClusterInput] {
        var out: [ClusterInput] = []
        var problems: [Diagnostic] = []
        for a in arguments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex, a.index(after: eq) != a.endIndex else {
                problems.append(Diagnostic(.error, file: nil, object: "\(option) \(a)", message: "expected NAME=PATH"))
                continue
            }
            let name = String(a[..<eq]), path = String(a[a.index(after: eq)...])
            if let why = Clusters.invalidName(name) {
                problems.append(Diagnostic(.error, file: nil, object: "\(option) \(a)", message: "invalid cluster name \(shown(name)): \(why)"))
                continue
            }
            if let i = out.firstIndex(where: { $0.name == name }) { out[i].paths.append(path) } else { out.append(ClusterInput(name: name, paths: [path])) }
        }
        if out.count > ABI.maxClusters {
            problems.append(Diagnostic(.error, file: nil, object: option, message: "\(out.count) clusters: an image holds at most \(ABI.maxClusters)"))
        }
        if !problems.isEmpty { throw CompileFailure(diagnostics: problems) }
        return out
    }
}

extension InputLoader {
    /// Loads every cluster's files and merges them (Clusters.merge). Every cluster is read, so
    /// one run reports every error of every cluster.
    public static func load(clusters: [ClusterInput], limits: InputLimits = InputLimits()) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        var loaded: [(name: String, snapshot: Snapshot)] = []
        var diagnostics: [Diagnostic] = []
        var failed = false
        for c in clusters {
            do {
                let (snapshot, d) = try load(paths: c.paths, limits: limits)
                loaded.append((c.name, snapshot))
                diagnostics += d
            } catch {
                failed = true
                diagnostics += error.diagnostics
            }
        }
        if failed { throw CompileFailure(diagnostics: diagnostics.sorted(by: Diagnostic.order)) }
        let (snapshot, merged) = Clusters.merge(loaded)
        return (snapshot, (diagnostics + merged).sorted(by: Diagnostic.order))
    }
}
