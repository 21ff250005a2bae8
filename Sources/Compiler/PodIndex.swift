import Manifests

/// Every Pod of the cluster, with an index by the value of each label key a policy's selector
/// has used: a selector then reads the Pods that carry its label, not all of them. A key is
/// indexed the first time a selector needs it (one pass over the Pods), and kept current as
/// Pods change.
struct PodIndex: Sendable {
    typealias Ref = ServiceCompiler.ServiceRef

    private(set) var pods: [Ref: Pod] = [:]
    private var byLabel: [String: [String: Set<Ref>]] = [:]

    subscript(_ ref: Ref) -> Pod? { pods[ref] }

    mutating func set(_ ref: Ref, _ pod: Pod?) {
        if let old = pods[ref] { index(ref, old.meta.labels, insert: false) }
        pods[ref] = pod
        if let pod { index(ref, pod.meta.labels, insert: true) }
    }

    private mutating func index(_ ref: Ref, _ labels: [String: String], insert: Bool) {
        for key in Array(byLabel.keys) {
            guard let value = labels[key] else { continue }
            if insert {
                byLabel[key, default: [:]][value, default: []].insert(ref)
            } else {
                byLabel[key]?[value]?.remove(ref)
                if byLabel[key]?[value]?.isEmpty == true { byLabel[key]?[value] = nil }
            }
        }
    }

    /// The Pods `selector` matches.
    mutating func matching(_ selector: LabelSelector) -> [Ref: Pod] {
        // Candidates from one label the selector requires: a matchLabels pair, else an `In`.
        var candidates: Set<Ref>?
        if let key = selector.matchLabels.keys.min(), let value = selector.matchLabels[key] {
            candidates = indexed(key)[value] ?? []
        } else if let r = selector.matchExpressions.first(where: { $0.op == "In" }) {
            let values = indexed(r.key)
            candidates = r.values.reduce(into: Set<Ref>()) { $0.formUnion(values[$1] ?? []) }
        }
        guard let candidates else { return pods.filter { selector.matches($0.value.meta.labels) } }
        var out: [Ref: Pod] = [:]
        for ref in candidates {
            if let pod = pods[ref], selector.matches(pod.meta.labels) { out[ref] = pod }
        }
        return out
    }

    private mutating func indexed(_ key: String) -> [String: Set<Ref>] {
        if let done = byLabel[key] { return done }
        var values: [String: Set<Ref>] = [:]
        for (ref, pod) in pods { if let v = pod.meta.labels[key] { values[v, default: []].insert(ref) } }
        byLabel[key] = values
        return values
    }
}
