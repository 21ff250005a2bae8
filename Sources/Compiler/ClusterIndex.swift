import Manifests
import MapImage

/// The clusters of a multi-cluster snapshot by id (1...255, in `--cluster` order), found from the
/// qualified names Clusters.merge gives every object. A single-cluster snapshot has none, and
/// every id is 0: its image is what it was before clusters existed.
struct ClusterIndex: Sendable {
    let names: [String]
    private let ids: [Substring: UInt8]

    init(_ names: [String]) {
        self.names = names
        var ids: [Substring: UInt8] = [:]
        for (i, n) in names.enumerated() where i < ABI.maxClusters { ids[n[...]] = UInt8(i + 1) }
        self.ids = ids
    }

    var isEmpty: Bool { names.isEmpty }

    /// The id of a qualified namespace's or name's cluster; 0 when unqualified, for the
    /// clusterset's services and for a cluster not given (an MCS slice's unknown source).
    func id(of qualified: String) -> UInt8 {
        guard !names.isEmpty, let c = Clusters.cluster(of: qualified) else { return 0 }
        return ids[c] ?? 0
    }

    func id(named name: String) -> UInt8 { ids[name[...]] ?? 0 }

    func name(_ id: UInt8) -> String? { id == 0 || Int(id) > names.count ? nil : names[Int(id) - 1] }

    /// The cluster name of a qualified string, when it is one of the clusters.
    func cluster(of qualified: String) -> String? { name(id(of: qualified)) }
}
