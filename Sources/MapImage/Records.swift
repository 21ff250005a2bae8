import CBalancerABI

// The image's tables as Swift values. Each type mirrors one struct of bpf/include/balancer_abi.h;
// ABIRecords.swift turns them into exactly those structs' bytes.

public struct FrontendKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public var proto: TransportProtocol
    /// 0: every client finds it. k > 0: clients of cluster k find it first; a NodePort of cluster
    /// k answers on cluster k's node addresses (docs/multicluster.md).
    public var cluster: UInt8

    public init(address: IPAddress, port: UInt16, proto: TransportProtocol, cluster: UInt8 = 0) {
        self.address = address
        self.port = port
        self.proto = proto
        self.cluster = cluster
    }

    public var isNodePortWildcard: Bool { address.isUnspecified }

    /// The same key as every client finds it (cluster 0).
    public var unscoped: FrontendKey { FrontendKey(address: address, port: port, proto: proto) }

    /// Key-byte order: address bytes, port in network order, protocol, cluster.
    public static func < (a: FrontendKey, b: FrontendKey) -> Bool {
        (a.address, a.port, a.proto.rawValue, a.cluster) < (b.address, b.port, b.proto.rawValue, b.cluster)
    }

    /// "10.96.0.10:53/UDP", with " in cluster 2" for a cluster's own frontend (renderers name it).
    public var description: String {
        let host = isNodePortWildcard ? (address.isIPv4 ? "*" : "[*]") : (address.isIPv4 ? "\(address)" : "[\(address)]")
        return cluster == 0 ? "\(host):\(port)/\(proto)" : "\(host):\(port)/\(proto) in cluster \(cluster)"
    }
}

public enum RuleOrigin: UInt8, Sendable, Codable, CustomStringConvertible {
    case localRedirect = 1
    case balancing = 2
    case service = 3

    public var description: String {
        switch self {
        case .localRedirect: "local-redirect"
        case .balancing: "balancing"
        case .service: "service"
        }
    }
}

public enum FrontendKind: UInt8, Sendable, Codable, CustomStringConvertible {
    case clusterIP = 1
    case nodePort = 2
    case loadBalancer = 3
    case externalIP = 4
    case policyService = 5
    case policyAddress = 6
    case clusterSetIP = 7

    public var description: String {
        switch self {
        case .clusterIP: "ClusterIP"
        case .nodePort: "NodePort"
        case .loadBalancer: "LoadBalancer"
        case .externalIP: "ExternalIP"
        case .policyService: "PolicyService"
        case .policyAddress: "PolicyAddress"
        case .clusterSetIP: "ClusterSetIP"
        }
    }
}

public enum RuleAction: UInt8, Sendable, Codable, CustomStringConvertible {
    case translate = 1
    case reject = 2

    public var description: String { self == .translate ? "translate" : "reject" }
}

public struct RuleFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let localOnly = RuleFlags(rawValue: UInt16(BL_RULE_LOCAL_ONLY.rawValue))
    public static let topology = RuleFlags(rawValue: UInt16(BL_RULE_TOPOLOGY.rawValue))
    public static let affinity = RuleFlags(rawValue: UInt16(BL_RULE_AFFINITY.rawValue))
    public static let fallThrough = RuleFlags(rawValue: UInt16(BL_RULE_FALLTHROUGH.rawValue))
    public static let externalLocal = RuleFlags(rawValue: UInt16(BL_RULE_EXTERNAL_LOCAL.rawValue))
    public static let internalLocal = RuleFlags(rawValue: UInt16(BL_RULE_INTERNAL_LOCAL.rawValue))
    public static let skipFromBackend = RuleFlags(rawValue: UInt16(BL_RULE_SKIP_FROM_BACKEND.rawValue))
    public static let nodeGated = RuleFlags(rawValue: UInt16(BL_RULE_NODE_GATED.rawValue))
    public static let outCluster = RuleFlags(rawValue: UInt16(BL_RULE_OUT_CLUSTER.rawValue))
    public static let direct = RuleFlags(rawValue: UInt16(BL_RULE_DIRECT.rawValue))
    public static let sourceRanges = RuleFlags(rawValue: UInt16(BL_RULE_SOURCE_RANGES.rawValue))
    public static let clusterScoped = RuleFlags(rawValue: UInt16(BL_RULE_CLUSTER_SCOPED.rawValue))
    public static let preferLocalCluster = RuleFlags(rawValue: UInt16(BL_RULE_PREFER_LOCAL_CLUSTER.rawValue))
    public static let preferRemoteCluster = RuleFlags(rawValue: UInt16(BL_RULE_PREFER_REMOTE_CLUSTER.rawValue))

    static let names: [(RuleFlags, String)] = [
        (.localOnly, "local-only"), (.topology, "topology"), (.affinity, "affinity"),
        (.fallThrough, "fallthrough"), (.externalLocal, "etp-local"), (.internalLocal, "itp-local"),
        (.skipFromBackend, "skip-from-backend"), (.nodeGated, "node-gated"), (.outCluster, "out-cluster"),
        (.direct, "direct"), (.sourceRanges, "source-ranges"), (.clusterScoped, "cluster-scoped"),
        (.preferLocalCluster, "cluster-local"), (.preferRemoteCluster, "cluster-remote"),
    ]
    static let known: UInt16 = names.reduce(0) { $0 | $1.0.rawValue }

    public var names: [String] { RuleFlags.names.filter { contains($0.0) }.map(\.1) }
    public var description: String { names.isEmpty ? "-" : names.joined(separator: ",") }
}

public struct Rule: Hashable, Sendable {
    public var groupID: UInt32
    public var ownerID: UInt32
    public var affinityTimeout: UInt32
    public var rateLimit: UInt32
    public var origin: RuleOrigin
    public var kind: FrontendKind
    public var action: RuleAction
    public var flags: RuleFlags
    public var nodePort: UInt16
    /// The owner's cluster: whose clients a cluster-scoped rule serves, whose host mode applies.
    public var cluster: UInt8

    public init(groupID: UInt32, ownerID: UInt32, affinityTimeout: UInt32 = 0, rateLimit: UInt32 = 0,
                origin: RuleOrigin, kind: FrontendKind, action: RuleAction, flags: RuleFlags, nodePort: UInt16 = 0,
                cluster: UInt8 = 0) {
        self.cluster = cluster
        self.groupID = groupID
        self.ownerID = ownerID
        self.affinityTimeout = affinityTimeout
        self.rateLimit = rateLimit
        self.origin = origin
        self.kind = kind
        self.action = action
        self.flags = flags
        self.nodePort = nodePort
    }
}

public struct Frontend: Hashable, Sendable {
    public var key: FrontendKey
    public var id: UInt32
    public var rules: [Rule]

    public init(key: FrontendKey, id: UInt32, rules: [Rule]) {
        self.key = key
        self.id = id
        self.rules = rules
    }
}

public struct VIPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let rejectUnknownPort = VIPFlags(rawValue: UInt16(BL_VIP_REJECT_UNKNOWN_PORT.rawValue))
}

public struct VIP: Hashable, Sendable {
    public var address: IPAddress
    public var serviceID: UInt32
    public var flags: VIPFlags
    /// The ClusterIP's cluster: whose clients (and hosts outside every cluster) its refusal of
    /// unknown ports is for; 0: every client.
    public var cluster: UInt8

    public init(address: IPAddress, serviceID: UInt32, flags: VIPFlags, cluster: UInt8 = 0) {
        self.address = address
        self.serviceID = serviceID
        self.flags = flags
        self.cluster = cluster
    }

    /// Whether it refuses a port it lacks for a client of cluster `client`.
    public func refuses(forCluster client: UInt8) -> Bool {
        flags.contains(.rejectUnknownPort) && (cluster == 0 || client == 0 || cluster == client)
    }
}

public struct NodeAddress: Hashable, Sendable {
    public var address: IPAddress
    public var nodeID: UInt32
    /// The node's cluster: the NodePort frontends (of that cluster) its address answers.
    public var cluster: UInt8

    public init(address: IPAddress, nodeID: UInt32, cluster: UInt8 = 0) {
        self.address = address
        self.nodeID = nodeID
        self.cluster = cluster
    }
}

public struct NodeFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The node has a Node object in the snapshot (not only a name an endpoint mentions).
    public static let fromObject = NodeFlags(rawValue: BL_NODE_FROM_OBJECT.rawValue)
}

public struct ImageNode: Hashable, Sendable {
    public var id: UInt32
    public var zoneID: UInt32
    public var flags: NodeFlags
    /// Primary addresses used by the nodeport host mode; nil when the node has none of that family.
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?

    public init(id: UInt32, zoneID: UInt32, flags: NodeFlags, ipv4: IPAddress?, ipv6: IPAddress?) {
        self.id = id
        self.zoneID = zoneID
        self.flags = flags
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

public enum SetScope: UInt8, Sendable, Codable, Comparable, CustomStringConvertible {
    case cluster = 0
    case zone = 1
    case node = 2
    case local = 3
    case gate = 4
    /// Endpoints still serving that the cluster set leaves out (terminating while ready ones
    /// exist): never chosen, but a socket translated to one is not terminated (it drains).
    case serving = 5
    /// scope id = cluster id: the cluster set's endpoints of that cluster (cluster affinity local).
    case inCluster = 6
    /// scope id = cluster id: the cluster set's endpoints of every other cluster (affinity remote).
    case outOfCluster = 7

    public var description: String {
        switch self {
        case .cluster: "cluster"
        case .zone: "zone"
        case .node: "node"
        case .local: "local"
        case .gate: "gate"
        case .serving: "serving"
        case .inCluster: "in-cluster"
        case .outOfCluster: "out-of-cluster"
        }
    }

    public static func < (a: SetScope, b: SetScope) -> Bool { a.rawValue < b.rawValue }
}

public struct SetKey: Hashable, Comparable, Sendable {
    public var groupID: UInt32
    public var scopeID: UInt32
    public var scope: SetScope

    public init(groupID: UInt32, scope: SetScope, scopeID: UInt32) {
        self.groupID = groupID
        self.scope = scope
        self.scopeID = scopeID
    }

    /// Key-byte order: group id and scope id little-endian, then scope.
    public static func < (a: SetKey, b: SetKey) -> Bool {
        (a.groupID.byteSwapped, a.scopeID.byteSwapped, a.scope.rawValue) < (b.groupID.byteSwapped, b.scopeID.byteSwapped, b.scope.rawValue)
    }
}

public struct SetFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let terminating = SetFlags(rawValue: BL_SET_TERMINATING.rawValue)
}

/// A backend set: the ordered backends one scope of a group may reach. Encoded as a SETS record
/// plus one SLOTS and one MEMBERS record per backend.
public struct BackendSet: Hashable, Sendable {
    public var key: SetKey
    public var flags: SetFlags
    public var backends: [UInt32]

    public init(key: SetKey, flags: SetFlags, backends: [UInt32]) {
        self.key = key
        self.flags = flags
        self.backends = backends
    }
}

public struct Backend: Hashable, Sendable {
    public var id: UInt32
    public var address: SocketAddress
    public var proto: TransportProtocol
    public var nodeID: UInt32
    /// The endpoint's cluster (whose host mode reaches it); 0: none.
    public var cluster: UInt8

    public init(id: UInt32, address: SocketAddress, proto: TransportProtocol, nodeID: UInt32, cluster: UInt8 = 0) {
        self.cluster = cluster
        self.id = id
        self.address = address
        self.proto = proto
        self.nodeID = nodeID
    }
}

/// One allowed source range of a LoadBalancer service (spec.loadBalancerSourceRanges): its
/// LoadBalancer frontends of the range's family accept clients inside one of their owner's ranges.
public struct SourceRange: Hashable, Comparable, Sendable {
    public var ownerID: UInt32
    public var prefix: IPPrefix

    public init(ownerID: UInt32, prefix: IPPrefix) {
        self.ownerID = ownerID
        self.prefix = prefix
    }

    public static func < (a: SourceRange, b: SourceRange) -> Bool { (a.ownerID, a.prefix) < (b.ownerID, b.prefix) }
}

/// The compiled contents of every datapath table plus the metadata that names them.
/// Arrays are kept sorted by key (the encoder sorts by key bytes; the decoder verifies it).
public struct ImageContents: Hashable, Sendable {
    public var frontends: [Frontend]
    public var vips: [VIP]
    public var nodeAddresses: [NodeAddress]
    public var nodes: [ImageNode]
    public var sets: [BackendSet]
    public var backends: [Backend]
    public var serviceCIDRs: [IPPrefix]
    public var sourceRanges: [SourceRange]
    public var metadata: ImageMetadata

    public init(frontends: [Frontend] = [], vips: [VIP] = [], nodeAddresses: [NodeAddress] = [], nodes: [ImageNode] = [],
                sets: [BackendSet] = [], backends: [Backend] = [], serviceCIDRs: [IPPrefix] = [], sourceRanges: [SourceRange] = [],
                metadata: ImageMetadata = ImageMetadata()) {
        self.serviceCIDRs = serviceCIDRs
        self.sourceRanges = sourceRanges
        self.frontends = frontends
        self.vips = vips
        self.nodeAddresses = nodeAddresses
        self.nodes = nodes
        self.sets = sets
        self.backends = backends
        self.metadata = metadata
    }
}
