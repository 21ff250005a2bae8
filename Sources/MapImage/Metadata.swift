import CBuildInfo
import FoundationEssentials

/// The version the compiler writes into every image's metadata.
public enum BalancerVersion {
    public static let string = "0.1.0"
    /// The git commit built (`-dirty` when the checkout differed from it; `unknown` outside a
    /// checkout). Not written into images: equal inputs give equal bytes whichever build compiled
    /// them.
    public static let commit = String(cString: bl_build_commit())
}

/// The image's metadata section: what reviewers and tools need to read the tables (names for ids)
/// and where the image came from. Serialised as canonical JSON (sorted keys, no whitespace), with
/// no timestamps, host names or paths, so equal inputs give equal bytes.
public struct ImageMetadata: Codable, Hashable, Sendable {
    public var compiler: String
    public var inputs: InputSummary
    /// Objects decoded per kind; skipped kinds under "skipped/<Kind>".
    public var counts: [String: Int]
    public var nodes: [NodeInfo]
    public var zones: [ZoneInfo]
    public var services: [ServiceInfo]
    public var groups: [GroupInfo]
    public var diagnostics: [DiagnosticInfo]
    /// The clusters of a multi-cluster image, by id (docs/multicluster.md); absent (empty) for
    /// an image of one unnamed cluster.
    public var clusters: [ClusterInfo]?

    public init(compiler: String = "balancer \(BalancerVersion.string)", inputs: InputSummary = InputSummary(),
                counts: [String: Int] = [:], nodes: [NodeInfo] = [], zones: [ZoneInfo] = [], services: [ServiceInfo] = [],
                groups: [GroupInfo] = [], diagnostics: [DiagnosticInfo] = []) {
        self.compiler = compiler
        self.inputs = inputs
        self.counts = counts
        self.nodes = nodes
        self.zones = zones
        self.services = services
        self.groups = groups
        self.diagnostics = diagnostics
    }

    /// The canonical JSON bytes (CanonicalJSON.swift): keys sorted, no whitespace.
    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalJSONWriter()
        writeCanonical(&w)
        return w.out
    }

    public static func decode(_ bytes: [UInt8]) throws -> ImageMetadata {
        try JSONDecoder().decode(ImageMetadata.self, from: Data(bytes))
    }

    /// Only the nodes and clusters: the loader's need, without decoding every service's names.
    public static func decodeNodes(_ bytes: [UInt8]) throws -> (nodes: [NodeInfo], clusters: [ClusterInfo]) {
        struct Nodes: Decodable { var nodes: [NodeInfo]; var clusters: [ClusterInfo]? }
        let n = try JSONDecoder().decode(Nodes.self, from: Data(bytes))
        return (n.nodes, n.clusters ?? [])
    }

    public func node(named name: String) -> NodeInfo? { nodes.first { $0.name == name } }
    public func cluster(id: UInt8) -> ClusterInfo? { clusters?.first { $0.id == id } }
    public func cluster(named name: String) -> ClusterInfo? { clusters?.first { $0.name == name } }
    /// "east", or "" for cluster 0.
    public func clusterName(_ id: UInt8) -> String { cluster(id: id)?.name ?? (id == 0 ? "" : "cluster \(id)") }
    public func node(id: UInt32) -> NodeInfo? { nodes.first { $0.id == id } }
}

public struct InputSummary: Codable, Hashable, Sendable {
    /// Objects the digest covers (every decoded object of a known kind).
    public var objects: Int
    /// SHA-256 (hex) over the sorted per-object digests: independent of file names, file order,
    /// document order and list order.
    public var digest: String

    public init(objects: Int = 0, digest: String = "") {
        self.objects = objects
        self.digest = digest
    }
}

public struct NodeInfo: Codable, Hashable, Sendable {
    /// The id of the node named `name`; the error lists the names the image knows.
    static func id(named name: String, in nodes: [NodeInfo]) throws(ResolverError) -> UInt32 {
        if let n = nodes.first(where: { $0.name == name }) { return n.id }
        let known = nodes.map { PrintableText.escape($0.name) }.sorted()
        let list = known.prefix(10).joined(separator: ", ") + (known.count > 10 ? ", …" : "")
        throw ResolverError(message: "node \"\(PrintableText.escape(name))\" is not in this image (known: \(known.isEmpty ? "none" : list))")
    }

    public var id: UInt32
    public var name: String
    public var zone: String?
    public var addresses: [String]
    /// False when only an endpoint's nodeName mentions the node.
    public var object: Bool
    /// Its cluster in a multi-cluster image (then `name` is "<cluster>/<node>").
    public var cluster: String?

    public init(id: UInt32, name: String, zone: String?, addresses: [String], object: Bool) {
        self.id = id
        self.name = name
        self.zone = zone
        self.addresses = addresses
        self.object = object
    }
}

/// One cluster of a multi-cluster image: the id its frontends, rules, node addresses and backends
/// carry, and the name `--cluster` gave it.
public struct ClusterInfo: Codable, Hashable, Sendable {
    public var id: UInt8
    public var name: String

    public init(id: UInt8, name: String) {
        self.id = id
        self.name = name
    }
}

public struct ZoneInfo: Codable, Hashable, Sendable {
    public var id: UInt32
    public var name: String

    public init(id: UInt32, name: String) {
        self.id = id
        self.name = name
    }
}

public struct ServiceInfo: Codable, Hashable, Sendable {
    public var id: UInt32
    public var namespace: String
    public var name: String
    public var type: String
    public var internalTrafficPolicy: String
    public var externalTrafficPolicy: String
    public var affinityTimeout: UInt32?
    /// Its cluster in a multi-cluster image ("clusterset" for a ServiceImport's service).
    public var cluster: String?
    /// A clusterset service's cluster affinity (local or remote); nil: none.
    public var clusterAffinity: String?

    public init(id: UInt32, namespace: String, name: String, type: String, internalTrafficPolicy: String,
                externalTrafficPolicy: String, affinityTimeout: UInt32?) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.type = type
        self.internalTrafficPolicy = internalTrafficPolicy
        self.externalTrafficPolicy = externalTrafficPolicy
        self.affinityTimeout = affinityTimeout
    }

    /// "default/web", or "east/default/web" in a multi-cluster image.
    public var qualifiedName: String { cluster.map { "\($0)/\(namespace)/\(name)" } ?? "\(namespace)/\(name)" }
}

/// A backend group: one port of one service (or policy) for one IP family.
public struct GroupInfo: Codable, Hashable, Sendable {
    public var id: UInt32
    public var owner: UInt32
    /// "namespace/name" of the service, or the policy's name.
    public var ownerName: String
    public var portName: String
    public var port: UInt16
    public var proto: String
    public var family: String
    public var nodePort: UInt16?

    public init(id: UInt32, owner: UInt32, ownerName: String, portName: String, port: UInt16, proto: String, family: String, nodePort: UInt16?) {
        self.id = id
        self.owner = owner
        self.ownerName = ownerName
        self.portName = portName
        self.port = port
        self.proto = proto
        self.family = family
        self.nodePort = nodePort
    }

    enum CodingKeys: String, CodingKey {
        case id, owner, ownerName, portName, port, proto = "protocol", family, nodePort
    }

    /// `namespace/name:port/PROTO` (with the port's name when it has one), e.g. `kube-system/kube-dns:dns/UDP`.
    public var label: String {
        let p = portName.isEmpty ? "\(port)" : portName
        return "\(ownerName):\(p)/\(proto)"
    }
}

public struct DiagnosticInfo: Codable, Hashable, Sendable {
    public var severity: String
    public var object: String
    public var field: String
    public var message: String

    public init(severity: String, object: String, field: String, message: String) {
        self.severity = severity
        self.object = object
        self.field = field
        self.message = message
    }
}
