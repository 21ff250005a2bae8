import FoundationEssentials
import KubeAPI
import Logging
import Synchronization

/// Which Pods a watcher of the API asks for. kube-proxy asks for none: only the policies read
/// Pods, so with `asNeeded` a node asks for
/// - none while no enabled policy selects Pods;
/// - its own Pods (`spec.nodeName=<node>`, as the kubelet asks) while LocalRedirectPolicies
///   exist: their backends and skipRedirectFromBackend are this node's Pods;
/// - each BalancingPolicy's selected Pods, on any node, with its label selector (one request per
///   distinct selector: one query cannot ask for the union of several).
/// `all` is every Pod always (tests, and an image meant to equal `compile` of a full snapshot).
public enum PodWatching: Sendable, Equatable {
    case all
    case asNeeded(node: String?)
}

/// The Pods the policies need: this node's, those of some label selectors, or all.
struct PodScope: Sendable, Equatable, CustomStringConvertible {
    var node: String?
    /// Label selectors in the API's syntax, sorted, without repeats.
    var selectors: [String] = []
    var all = false

    static let none = PodScope()

    var isNone: Bool { !all && node == nil && selectors.isEmpty }

    var description: String {
        if all { return "all" }
        var parts: [String] = []
        if let node { parts.append("this node's (spec.nodeName=\(node))") }
        if !selectors.isEmpty { parts.append("selected (" + selectors.joined(separator: "; ") + ")") }
        return parts.isEmpty ? "none" : parts.joined(separator: " and ")
    }

    /// The metric's label: none, node, selector, node+selector or all.
    var label: String {
        if all { return "all" }
        switch (node != nil, !selectors.isEmpty) {
        case (false, false): return "none"
        case (true, false): return "node"
        case (false, true): return "selector"
        case (true, true): return "node+selector"
        }
    }

    /// One resource per request: every Pod, or this node's and one per selector.
    var resources: [KubeResource] {
        if all { return [.pods] }
        return (node.map { [KubeResource.pods.selecting(fields: "spec.nodeName=\($0)")] } ?? [])
            + selectors.map { KubeResource.pods.selecting(labels: $0) }
    }

    /// The scope the policies in the stores need, and why, in words for the log.
    static func needed(stores: [String: KindStore], node: String?) -> (scope: PodScope, why: String) {
        struct Policy: Decodable {
            struct Spec: Decodable {
                struct Backend: Decodable {
                    struct Endpoint: Decodable {
                        var endpointSelector: Selector?
                    }
                    var serviceEndpoint: Endpoint?
                }
                var enabled: Bool?
                var backend: Backend?
            }
            var spec: Spec?
        }
        func enabled(_ kind: String) -> [Policy] {
            (stores[kind]?.objects.values ?? [:].values).compactMap { try? JSONDecoder().decode(Policy.self, from: Data($0)) }
                .filter { $0.spec?.enabled != false }
        }
        var scope = PodScope()
        var why: [String] = []
        let local = enabled("LocalRedirectPolicy").count
        if local > 0 {
            if let node {
                scope.node = node
                why.append("\(local) LocalRedirectPolicies redirect to this node's Pods")
            } else {
                why.append("no node is named (--node), so no local Pods")
            }
        }
        let selecting = enabled("BalancingPolicy").compactMap { $0.spec?.backend?.serviceEndpoint }
        if !selecting.isEmpty {
            // A selector that selects everything (none written) is every Pod.
            let queries = selecting.map { $0.endpointSelector?.query ?? "" }
            if queries.contains("") {
                scope = PodScope(all: true)
            } else {
                scope.selectors = Array(Set(queries)).sorted()
            }
            why.append("\(selecting.count) BalancingPolicies select Pods on any node")
        }
        return (scope, why.isEmpty ? "no policy selects Pods" : why.joined(separator: "; "))
    }

    /// A policy's `endpointSelector`, written as the API's query syntax.
    struct Selector: Decodable {
        struct Requirement: Decodable {
            var key: String
            var `operator`: String
            var values: [String]?
        }
        var matchLabels: [String: String]?
        var matchExpressions: [Requirement]?

        /// `app=dns,tier in (a,b),!legacy`; "" selects everything. An operator the API does not
        /// know cannot be asked for: every Pod then, and the compiler reports the policy.
        var query: String {
            var terms = (matchLabels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            for r in matchExpressions ?? [] {
                let values = (r.values ?? []).sorted().joined(separator: ",")
                switch r.operator {
                case "In": terms.append("\(r.key) in (\(values))")
                case "NotIn": terms.append("\(r.key) notin (\(values))")
                case "Exists": terms.append(r.key)
                case "DoesNotExist": terms.append("!" + r.key)
                default: return ""
                }
            }
            return terms.joined(separator: ",")
        }
    }
}

/// The Pods of several requests (this node's, one per selector) as one store, the watcher's
/// "Pod": each request's reflector keeps its own store, and an object is in the union while one
/// of them holds it. A Pod two selectors share is kept once.
final class PodUnion: Sendable {
    let watcher: ApiWatcher
    let parts: Mutex<[[String: KindStore]]>
    let listed = Mutex<Set<Int>>([])
    let count: Int

    init(watcher: ApiWatcher, count: Int) {
        self.watcher = watcher
        self.count = count
        parts = Mutex(Array(repeating: ["Pod": KindStore(kind: "Pod")], count: count))
    }

    /// Part `index` changed `keys`: the union follows. Once every part has listed, Pods held from
    /// an earlier scope that no part holds leave it.
    func merge(_ index: Int, keys: Set<KindStore.Key>, listed wasList: Bool) {
        let objects = parts.withLock { p in keys.map { k in (k, p.lazy.compactMap { $0["Pod"]?.objects[k] }.first) } }
        let (firstComplete, complete) = listed.withLock { l -> (Bool, Bool) in
            let before = l.count == count
            if wasList { l.insert(index) }
            return (!before && l.count == count, l.count == count)
        }
        let held = firstComplete ? parts.withLock { p in Set(p.flatMap { $0["Pod"]?.objects.keys ?? [:].keys }) } : []
        let changed = watcher.stores.withLock { s -> Set<KindStore.Key> in
            var store = s["Pod"] ?? KindStore(kind: "Pod")
            var changed = Set<KindStore.Key>()
            for (k, o) in objects where store.set(k, o) { changed.insert(k) }
            if firstComplete {
                for k in Set(store.objects.keys).subtracting(held) where store.set(k, nil) { changed.insert(k) }
            }
            s["Pod"] = store
            return changed
        }
        watcher.changed("Pod", keys: changed, listed: wasList && complete)
    }

    struct Feed: ReflectorSink {
        let union: PodUnion
        let index: Int

        func withStores<T: Sendable>(_ body: (inout [String: KindStore]) -> T) -> T {
            union.parts.withLock { body(&$0[index]) }
        }

        func changed(_ kind: String, keys: Set<KindStore.Key>, listed: Bool) {
            union.merge(index, keys: keys, listed: listed)
        }

        func apiError(kind: String, reason: String) {
            union.watcher.metrics?.apiError(kind: kind, reason: reason)
        }

        func dropped(kind: String, name: String, seconds: Double) {
            union.watcher.metrics?.droppedEvent(kind: kind)
        }
    }
}

extension ApiWatcher {
    /// Keeps the Pod requests the policies need running, restarting them when that changes;
    /// nothing before the policies' first lists, so the first image already has the Pods it
    /// needs (the compile loop waits for the Pods' first list too). The new requests' lists
    /// replace what an earlier scope held.
    func supervisePods(node: String?, shouldStop: @escaping @Sendable () -> Bool) async {
        final class StopFlag: Sendable {
            let flag = Atomic<Bool>(false)
        }
        var current: (scope: PodScope, stop: StopFlag, tasks: [Task<Void, Never>])?
        defer {
            current?.stop.flag.store(true, ordering: .relaxed)
            current?.tasks.forEach { $0.cancel() }
        }
        // The policy kinds this watcher follows must have been listed before the scope is known.
        let policyKinds = Set(["LocalRedirectPolicy", "BalancingPolicy"]).intersection(resources.map(\.kind))
        // The policies are decoded again only when one of their stores changed.
        var seen: [Int]?
        while !shouldStop() {
            let generations = stores.withLock { s in policyKinds.sorted().map { s[$0]?.generation ?? 0 } }
            if generations != seen, policyKinds.isSubset(of: wake.withLock({ $0.listed })) {
                seen = generations
                let (scope, why) = stores.withLock { PodScope.needed(stores: $0, node: node) }
                if scope != current?.scope {
                    if let old = current {
                        old.stop.flag.store(true, ordering: .relaxed)
                        old.tasks.forEach { $0.cancel() }
                        for t in old.tasks { await t.value }
                    }
                    logger.info("watching Pods: \(scope)", metadata: ["why": "\(why)"])
                    metrics?.podScope(scope.label)
                    let stop = StopFlag()
                    if scope.isNone {
                        // Nothing to ask: no Pods, listed (the compile loop need not wait).
                        let keys = stores.withLock { s -> Set<KindStore.Key> in
                            let k = Set(s["Pod"]?.objects.keys ?? [:].keys)
                            s["Pod"] = KindStore(kind: "Pod")
                            return k
                        }
                        changed("Pod", keys: keys, listed: true)
                        current = (scope, stop, [])
                    } else {
                        let union = PodUnion(watcher: self, count: scope.resources.count)
                        let tasks = scope.resources.enumerated().map { index, resource in
                            let reflector = Reflector(client: client, resource: resource, backoff: apiBackoff, watchTimeout: watchTimeout, logger: logger)
                            let feed = PodUnion.Feed(union: union, index: index)
                            return Task { await reflector.run(into: feed, shouldStop: { stop.flag.load(ordering: .relaxed) || shouldStop() }) }
                        }
                        current = (scope, stop, tasks)
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
