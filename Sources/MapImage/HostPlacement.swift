/// Where the host that loads an image stands, as `load`, `watch` and `resolve` are told it:
/// its node, its cluster, and how it reaches backends (docs/multicluster.md). Names are turned
/// into the image's ids by `place`, so a name the image does not have is an error naming the
/// ones it has, before anything is written.
public struct HostSettings: Sendable, Equatable {
    /// `--node`: a node name ("worker-1" with `cluster`, or the qualified "east/worker-1").
    public var node: String?
    /// `--cluster`: the host's cluster; nil outside every cluster (or the node's cluster).
    public var cluster: String?
    /// `--host-mode`: for backends of no cluster, and of clusters `clusterModes` does not name.
    public var hostMode: HostMode
    /// `--cluster-mode NAME=MODE`.
    public var clusterModes: [String: HostMode]

    public init(node: String? = nil, cluster: String? = nil, hostMode: HostMode = .pod, clusterModes: [String: HostMode] = [:]) {
        self.node = node
        self.cluster = cluster
        self.hostMode = hostMode
        self.clusterModes = clusterModes
    }

    /// Whether `place` needs the image's node and cluster names (host mode nodeport: every
    /// cluster of the image takes it, so the clusters must be known).
    public var needsNames: Bool { node != nil || cluster != nil || !clusterModes.isEmpty || hostMode == .nodeport }

    /// The ids of these settings in an image with these nodes and clusters.
    public func place(nodes: [NodeInfo], clusters: [ClusterInfo]) throws(ResolverError) -> HostPlacement {
        func clusterID(_ name: String, _ what: String) throws(ResolverError) -> UInt8 {
            if let c = clusters.first(where: { $0.name == name }) { return c.id }
            let known = clusters.map { PrintableText.escape($0.name) }
            throw ResolverError(message: known.isEmpty
                ? "\(what) \"\(PrintableText.escape(name))\": this image names no clusters (it was compiled without --cluster)"
                : "\(what) \"\(PrintableText.escape(name))\" is not a cluster of this image (known: \(known.joined(separator: ", ")))")
        }
        var p = HostPlacement(hostMode: hostMode)
        if let cluster { p.clusterID = try clusterID(cluster, "cluster") }
        if let node {
            let qualified = cluster != nil && !node.contains("/") ? "\(cluster ?? "")/\(node)" : node
            p.nodeID = try NodeInfo.id(named: qualified, in: nodes)
            if let of = nodes.first(where: { $0.id == p.nodeID })?.cluster {
                let id = try clusterID(of, "the node's cluster")
                if cluster != nil && id != p.clusterID {
                    throw ResolverError(message: "node \"\(PrintableText.escape(qualified))\" is of cluster \(PrintableText.escape(of)), not \(PrintableText.escape(cluster ?? ""))")
                }
                p.clusterID = id
            }
        }
        var explicit: [UInt8: HostMode] = [:]
        for (name, mode) in clusterModes.sorted(by: { $0.key < $1.key }) { explicit[try clusterID(name, "--cluster-mode")] = mode }
        for c in clusters { p.clusterModes[c.id] = explicit[c.id] ?? hostMode }
        return p
    }
}

/// HostSettings in one image's ids: what the datapath's config holds.
public struct HostPlacement: Sendable, Equatable {
    public var nodeID: UInt32 = 0
    public var clusterID: UInt8 = 0
    public var hostMode: HostMode
    /// The mode of every cluster of the image (theirs, or `hostMode`).
    public var clusterModes: [UInt8: HostMode] = [:]

    public init(nodeID: UInt32 = 0, clusterID: UInt8 = 0, hostMode: HostMode = .pod, clusterModes: [UInt8: HostMode] = [:]) {
        self.nodeID = nodeID
        self.clusterID = clusterID
        self.hostMode = hostMode
        self.clusterModes = clusterModes
    }

    /// bl_config.nodeport_clusters: bit k of the 256 set when cluster k is in mode nodeport.
    public var nodeportWords: [UInt64] {
        var words = [UInt64](repeating: 0, count: 4)
        for (id, mode) in clusterModes where mode == .nodeport && id != 0 { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
        return words
    }
}
