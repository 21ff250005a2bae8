import KubeAPI

/// `balancer snapshot`: the cluster's objects the compiler reads, listed once and written as one
/// YAML file that `balancer compile` reads — the bridge to air-gapped hosts and GitOps
/// repositories. The file is a `kind: List` whose items are flow mappings (each item's JSON, which
/// YAML reads as is), one per line so that a diff of two snapshots shows changed objects; Pods and
/// Nodes are trimmed as the watcher trims them (so a kubelet's heartbeat does not show in a diff). Every page is checked as the watcher checks it (KubeClient):
/// a wrong or oversize response fails the snapshot, naming the kind, the path and what was wrong.
public enum ClusterSnapshot {
    public static func take(client: KubeClient, resources: [KubeResource] = KubeResource.all) async throws -> (yaml: [UInt8], counts: [String: Int]) {
        var out = Array("apiVersion: v1\nkind: List\nitems:\n".utf8)
        var counts: [String: Int] = [:]
        for r in resources {
            var items: [RawListPage.Item] = []
            do {
                items = try await client.list(r).items
            } catch {
                // Not served: for a CustomResourceDefinition's kind (the policies), it is not
                // installed and there are none; for a built-in kind it is an error, as is any
                // response that is not a list of that kind (a snapshot never leaves a kind out).
                guard r.custom, error.reason == .http, error.status == 404 || (r.forbiddenMeansAbsent && error.status == 403) else { throw error }
            }
            counts[r.kind] = items.count
            for item in items.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
                out += Array("- ".utf8) + item.object + [UInt8(ascii: "\n")]
            }
        }
        if counts.values.allSatisfy({ $0 == 0 }) { out = Array("apiVersion: v1\nkind: List\nitems: []\n".utf8) }
        return (out, counts)
    }
}
