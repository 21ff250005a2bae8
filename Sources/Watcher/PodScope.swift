import FoundationEssentials
import KubeAPI
import Logging
import Synchronization

/// Which Pods a watcher of the API asks for. kube-proxy asks for none: only the policies read
/// Pods, so with `asNeeded` a node asks for
/// - none while no enabled policy selects Pods;
/// - its own Pods (`spec.nodeName=<node>`, as the kubelet asks) while LocalRedirectPolicies
///   exist: their backends and skipRedirectFromBackend are this node's Pods;
/// - every Pod while a BalancingPolicy has a serviceEndpoint backend (its selector's Pods on any
///   node). One query cannot ask for the union of several label selectors, and a reflector per
///   selector is left for later: docs/deployment.md says what each node asks.
/// `all` is every Pod always (tests, and an image meant to equal `compile` of a full snapshot).
public enum PodWatching: Sendable, Equatable {
    case all
    case asNeeded(node: String?)
}

enum PodScope: Sendable, Equatable, CustomStringConvertible {
    case none
    case node(String)
    case all

    var description: String {
        switch self {
        case .none: "none"
        case .node(let n): "this node's (spec.nodeName=\(n))"
        case .all: "all"
        }
    }

    /// The field selector of the Pod reflector for this scope.
    var fieldSelector: String? {
        if case .node(let n) = self { return "spec.nodeName=\(n)" }
        return nil
    }

    /// The scope the policies in the stores need, and why, in words for the log.
    static func needed(stores: [String: KindStore], node: String?) -> (scope: PodScope, why: String) {
        struct Policy: Decodable {
            struct Spec: Decodable {
                struct Backend: Decodable {
                    struct Present: Decodable {}
                    var serviceEndpoint: Present?
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
        let selecting = enabled("BalancingPolicy").filter { $0.spec?.backend?.serviceEndpoint != nil }.count
        if selecting > 0 { return (.all, "\(selecting) BalancingPolicies select Pods on any node") }
        let local = enabled("LocalRedirectPolicy").count
        if local > 0, let node {
            return (.node(node), "\(local) LocalRedirectPolicies redirect to this node's Pods")
        }
        return (.none, local > 0 ? "no node is named (--node), so no local Pods" : "no policy selects Pods")
    }
}

extension ApiWatcher {
    /// Keeps one Pod reflector running with the scope the policies need, restarting it when
    /// that changes; nothing before the policies' first lists, so the first image already has
    /// the Pods it needs (the compile loop waits for the Pods' first list too). A narrower
    /// scope's list replaces the store, so Pods leaving the scope leave the image.
    func supervisePods(node: String?, shouldStop: @escaping @Sendable () -> Bool) async {
        final class StopFlag: Sendable {
            let flag = Atomic<Bool>(false)
        }
        var current: (scope: PodScope, stop: StopFlag, task: Task<Void, Never>)?
        defer {
            current?.stop.flag.store(true, ordering: .relaxed)
            current?.task.cancel()
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
                        old.task.cancel()
                        await old.task.value
                    }
                    logger.info("watching Pods: \(scope)", metadata: ["why": "\(why)"])
                    metrics?.podScope(scope.description)
                    switch scope {
                    case .none:
                        // Nothing to ask: no Pods, listed (the compile loop need not wait).
                        let keys = stores.withLock { s -> Set<KindStore.Key> in
                            let k = Set(s["Pod"]?.objects.keys ?? [:].keys)
                            s["Pod"] = KindStore(kind: "Pod")
                            return k
                        }
                        changed("Pod", keys: keys, listed: true)
                        current = (scope, StopFlag(), Task {})
                    case .node, .all:
                        let stop = StopFlag()
                        let reflector = Reflector(client: client, resource: KubeResource.pods.selecting(fields: scope.fieldSelector),
                                                  backoff: apiBackoff, watchTimeout: watchTimeout, logger: logger)
                        let feed = ReflectorFeed(watcher: self)
                        let task = Task { await reflector.run(into: feed, shouldStop: { stop.flag.load(ordering: .relaxed) || shouldStop() }) }
                        current = (scope, stop, task)
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
