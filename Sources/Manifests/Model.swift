import MapImage

// The Kubernetes and policy objects the compiler reads, reduced to the fields it uses. Values
// are validated while decoding (Decode.swift), so the semantics stage works on clean data.

/// Where an object came from, for messages.
public struct ObjectSource: Sendable, Hashable {
    public var file: String
    public var line: Int
    public var column: Int
}

public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var kind: String
    public var namespace: String
    public var name: String

    public static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        (a.kind, a.namespace, a.name) < (b.kind, b.namespace, b.name)
    }

    /// "Service default/web", or "Node kind-worker" for cluster-scoped objects.
    public var description: String { namespace.isEmpty ? "\(kind) \(name)" : "\(kind) \(namespace)/\(name)" }
}

public struct ObjectMeta: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var creationTimestamp: String
    /// The object's uid (the kubelet names a pod's cgroup by it: `balancer monitor`).
    public var uid: String = ""
}

public enum ServiceType: String, Sendable {
    case clusterIP = "ClusterIP"
    case nodePort = "NodePort"
    case loadBalancer = "LoadBalancer"
    case externalName = "ExternalName"
}

public enum PortProtocol: String, Sendable, Hashable, Comparable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"

    public var transport: TransportProtocol? {
        switch self {
        case .tcp: .tcp
        case .udp: .udp
        case .sctp: nil
        }
    }

    public static func < (a: PortProtocol, b: PortProtocol) -> Bool { a.rawValue < b.rawValue }
}

public enum TrafficPolicy: String, Sendable {
    case cluster = "Cluster"
    case local = "Local"
}

/// A Kubernetes int-or-string, typed by the schema that holds it.
public enum IntOrString: Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public var description: String {
        switch self {
        case .int(let v): "\(v)"
        case .string(let s): s
        }
    }
}

public struct ServicePort: Sendable, Hashable {
    public var name: String
    public var proto: PortProtocol
    public var port: UInt16
    public var targetPort: IntOrString?
    public var nodePort: UInt16?
}

public struct LoadBalancerIngress: Sendable, Hashable {
    public var ip: IPAddress?
    public var hostname: String?
    public var ipMode: String?
}

public struct Service: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var type: ServiceType
    /// "None" or "" (or absent): headless.
    public var headless: Bool
    /// No spec.clusterIP(s) at all: a manifest the API server has not seen (it allocates one),
    /// not a headless Service.
    public var clusterIPUnset = false
    public var clusterIPs: [IPAddress]
    public var ports: [ServicePort]
    public var externalIPs: [IPAddress]
    public var ingress: [LoadBalancerIngress]
    public var affinityTimeout: UInt32?
    public var externalTrafficPolicy: TrafficPolicy
    public var internalTrafficPolicy: TrafficPolicy
    public var publishNotReadyAddresses: Bool
    public var hasSelector: Bool
    /// spec.loadBalancerSourceRanges (type LoadBalancer): the client addresses its ingress IPs
    /// accept; empty: any.
    public var sourceRanges: [IPPrefix] = []
    /// Which cluster's endpoints a ServiceImport's clients prefer (docs/multicluster.md); only
    /// the Services a multi-cluster compile makes of ServiceImports have one.
    public var clusterAffinity: ClusterAffinity = .none
}

/// `balancing.elf.io/cluster-affinity` (Cilium's `service.cilium.io/affinity`).
public enum ClusterAffinity: String, Sendable, CaseIterable {
    case none, local, remote
}

public enum AddressType: String, Sendable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"
    case fqdn = "FQDN"
}

public struct Endpoint: Sendable, Hashable {
    /// addresses[0]; nil in FQDN slices.
    public var address: IPAddress?
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?
    public var nodeName: String?
    public var zone: String?
    public var forZones: [String]
    public var forNodes: [String]
}

public struct EndpointPort: Sendable, Hashable {
    public var name: String
    public var proto: PortProtocol
    public var port: UInt16?
}

public struct EndpointSlice: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var addressType: AddressType
    public var serviceName: String?
    public var endpoints: [Endpoint]
    public var ports: [EndpointPort]
    /// The cluster whose endpoints these are, when the slice is not its own namespace's cluster's
    /// (a ServiceImport's slices gather every exporting cluster's).
    public var sourceCluster: String? = nil
}

public struct NodeAddressEntry: Sendable, Hashable {
    public var type: String
    public var address: IPAddress
}

public struct Node: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var addresses: [NodeAddressEntry]
}

public struct ContainerPort: Sendable, Hashable {
    public var name: String
    public var port: UInt16
    public var proto: PortProtocol
}

public struct Pod: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var nodeName: String?
    public var phase: String
    public var podIPs: [IPAddress]
    public var ready: Bool
    public var terminating: Bool
    public var hostNetwork: Bool
    public var containerPorts: [ContainerPort]
}

public struct LabelSelector: Sendable, Hashable {
    public struct Requirement: Sendable, Hashable {
        public var key: String
        public var op: String
        public var values: [String]
    }

    public var matchLabels: [String: String]
    public var matchExpressions: [Requirement]

    /// Kubernetes LabelSelector semantics: every matchLabels pair and every expression must hold;
    /// an empty selector matches everything.
    public func matches(_ labels: [String: String]) -> Bool {
        for (k, v) in matchLabels where labels[k] != v { return false }
        for r in matchExpressions {
            switch r.op {
            case "In": guard let v = labels[r.key], r.values.contains(v) else { return false }
            case "NotIn": if let v = labels[r.key], r.values.contains(v) { return false }
            case "Exists": guard labels[r.key] != nil else { return false }
            case "DoesNotExist": guard labels[r.key] == nil else { return false }
            default: return false
            }
        }
        return true
    }
}

/// A policy port (`PortInfo` of the seed system's CRDs).
public struct PolicyPort: Sendable, Hashable {
    public var port: UInt16
    public var proto: PortProtocol
    public var name: String
}

public enum PolicyFrontend: Sendable, Hashable {
    case address(ip: IPAddress, toPorts: [PolicyPort])
    case service(namespace: String, name: String, toPorts: [PolicyPort])
}

public struct PolicyConfig: Sendable, Hashable {
    public var nodeSelector: LabelSelector?
    public var enableOutCluster: Bool
}

public enum RedirectMode: String, Sendable {
    case podEndpoint
    case hostPort
    case nodeProxy
}

public enum BalancingBackend: Sendable, Hashable {
    case serviceEndpoint(selector: LabelSelector, toPorts: [PolicyPort], mode: RedirectMode)
    case addressEndpoint(addresses: [IPAddress], toPorts: [PolicyPort])
}

public struct LocalRedirectPolicy: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var enabled: Bool
    public var config: PolicyConfig
    public var frontend: PolicyFrontend
    public var selector: LabelSelector
    public var toPorts: [PolicyPort]
    public var skipRedirectFromBackend: Bool
    public var rateLimit: UInt32?
}

public struct BalancingPolicy: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var enabled: Bool
    public var config: PolicyConfig
    public var frontend: PolicyFrontend
    public var backend: BalancingBackend
    public var rateLimit: UInt32?
}

/// A ServiceCIDR (networking.k8s.io/v1): ranges the API server allocates ClusterIPs from.
public struct ServiceCIDRObject: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
    public var cidrs: [IPPrefix]
}

/// A ServiceImport (multicluster.x-k8s.io/v1alpha1, KEP-1645): a service of the clusterset.
public struct ServiceImport: Sendable {
    public enum ImportType: String, Sendable {
        case clusterSetIP = "ClusterSetIP"
        case headless = "Headless"
    }

    public var meta: ObjectMeta
    public var source: ObjectSource
    public var type: ImportType
    public var ips: [IPAddress]
    public var ports: [ServicePort]
    public var affinityTimeout: UInt32?
}

/// A ServiceExport (multicluster.x-k8s.io/v1alpha1): its cluster's Service of the same
/// namespace and name joins the clusterset.
public struct ServiceExport: Sendable {
    public var meta: ObjectMeta
    public var source: ObjectSource
}

/// Every object of one compile, decoded and validated.
public struct Snapshot: Sendable {
    public var services: [Service] = []
    public var endpointSlices: [EndpointSlice] = []
    public var nodes: [Node] = []
    public var pods: [Pod] = []
    public var localRedirectPolicies: [LocalRedirectPolicy] = []
    public var balancingPolicies: [BalancingPolicy] = []
    public var serviceCIDRs: [ServiceCIDRObject] = []
    public var serviceImports: [ServiceImport] = []
    public var serviceExports: [ServiceExport] = []
    /// The clusters of a multi-cluster snapshot, in `--cluster` order (cluster id = index + 1);
    /// their objects' namespaces and node names are qualified "<cluster>/…" (Clusters.swift).
    /// Empty: one unnamed cluster.
    public var clusters: [String] = []
    /// Decoded objects per kind and skipped kinds ("skipped/ConfigMap").
    public var counts: [String: Int] = [:]
    /// SHA-256 of each decoded object's canonical form.
    public var objectDigests: [[UInt8]] = []

    public init() {}
}
