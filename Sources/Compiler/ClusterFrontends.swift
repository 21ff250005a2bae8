import Manifests
import MapImage

/// Frontends across clusters (docs/multicluster.md, "Two clusters on one address"). Every
/// cluster's frontends are planned under their cluster's key (FrontendKey.cluster); this places
/// them so that the datapath's lookup (the client's cluster's key, then key 0) gives:
///  - a client of a cluster that offers the address: its own cluster's rules;
///  - anyone else: the first offer, the clusterset's service first, then clusters in `--cluster`
///    order (a cluster's ClusterIPs and policies are cluster-scoped: they serve a client of
///    another cluster nothing, and it passes).
/// An address one cluster offers is moved to key 0. NodePorts stay under their cluster's key:
/// the destination node's cluster picks them.
///
/// Two clusters on one address are reported naming both clusters and both owners: a warning
/// when every rule involved is cluster-scoped (every cluster has 10.96.0.1; each cluster's
/// clients still reach their own, only hosts outside every cluster get the first), an error
/// otherwise (a LoadBalancer IP or external IP two clusters claim: clients of third clusters
/// would reach the first without anyone having chosen it).
enum ClusterFrontends {
    static func fold(_ frontends: [Frontend], clusters: ClusterIndex, owners: [UInt32: String],
                     diagnostics: inout [Diagnostic]) -> [Frontend] {
        guard !clusters.isEmpty else { return frontends }
        var out: [Frontend] = []
        out.reserveCapacity(frontends.count)
        var byAddress: [FrontendKey: [Frontend]] = [:]
        for f in frontends {
            if f.key.isNodePortWildcard { out.append(f) } else { byAddress[f.key.unscoped, default: []].append(f) }
        }
        for (base, offers) in byAddress.sorted(by: { $0.key < $1.key }) {
            let ordered = offers.sorted { $0.key.cluster < $1.key.cluster }
            var first = ordered[0]
            first.key = base
            out.append(first)
            out += ordered.dropFirst()
            guard ordered.count > 1 else { continue }
            let scoped = ordered.allSatisfy { $0.rules.allSatisfy { $0.flags.contains(.clusterScoped) } }
            func who(_ f: Frontend) -> String {
                let name = clusters.name(f.key.cluster) ?? Clusters.clusterSet
                let objects = f.rules.map { owners[$0.groupID] ?? "group \($0.groupID)" }
                return "\(name) (\(objects.joined(separator: ", ")))"
            }
            let firstName = clusters.name(ordered[0].key.cluster) ?? Clusters.clusterSet
            let list = ordered.map(who).joined(separator: " and ")
            if scoped {
                diagnostics.append(Diagnostic(.warning, file: nil, object: "frontend \(base)", field: "",
                                              message: "offered by clusters \(list): each cluster's clients reach their own; hosts outside every cluster reach \(firstName)'s (the first in --cluster order)"))
            } else {
                diagnostics.append(Diagnostic(.error, file: nil, object: "frontend \(base)", field: "",
                                              message: "offered by clusters \(list): each cluster's clients reach their own; every other client reaches \(firstName)'s (the first in --cluster order; --keep-going writes the image so)"))
            }
        }
        return out
    }
}
