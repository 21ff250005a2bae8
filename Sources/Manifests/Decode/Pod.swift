import MapImage

/// The members of a JSON object worth keeping, and of them what: declared once per kind a watcher
/// keeps trimmed (`PodFields.kept`, `NodeFields.kept`), the kind's decoder reads nothing outside it
/// (KubeAPITests.TrimTests records every field the decoders look up), and the watcher keeps those
/// objects cut down to it (KubeAPI's trimmedJSON). Cut down, an update that changes nothing the
/// compiler reads (a kubelet's heartbeat, a status it rewrites) leaves the kept bytes as they were,
/// and the watcher drops it without compiling.
///
/// A struct of plain arrays rather than an indirect enum: a multi-payload enum keeps its case in
/// the spare bits of its payload pointer, and LeakSanitizer (the fuzzers') then takes the global
/// declaration's boxes for leaks.
public struct FieldSelection: Sendable {
    public enum Shape: Sendable { case whole, object, array }

    public let shape: Shape
    /// `.object`: the members kept, in this order, each reduced in turn.
    public let members: [(name: String, selection: FieldSelection)]
    /// `.array`: how each element is reduced (one selection).
    let elements: [FieldSelection]

    /// The value as it is, everything under it included.
    public static let whole = FieldSelection(shape: .whole, members: [], elements: [])

    /// An object reduced to `members`; anything but an object is dropped.
    public static func object(_ members: [(name: String, selection: FieldSelection)]) -> FieldSelection {
        FieldSelection(shape: .object, members: members, elements: [])
    }

    /// An array whose elements are each reduced by `element`; elements that reduce to nothing
    /// are dropped, and anything but an array is dropped.
    public static func array(_ element: FieldSelection) -> FieldSelection {
        FieldSelection(shape: .array, members: [], elements: [element])
    }

    /// `.array`: the selection of each element.
    public var element: FieldSelection { elements.first ?? .whole }
}

/// What of a Pod the compiler reads: metadata's identity, labels and deletion; the node, host
/// network and container ports; phase, Ready and addresses. A watcher keeps every Pod of the
/// cluster, and a Pod's managedFields, env and volumes are most of its bytes. uid, which the
/// decoder does not read, still says which object a kept Pod was; resourceVersion is not kept, as
/// it changes with every update, also those that change nothing kept.
public enum PodFields {
    static let container: FieldSelection = .object([("name", .whole), ("ports", .whole), ("restartPolicy", .whole)])

    public static let kept: FieldSelection = .object([
        ("kind", .whole),
        ("apiVersion", .whole),
        ("metadata", .object([("name", .whole), ("namespace", .whole), ("labels", .whole), ("annotations", .whole),
                              ("uid", .whole), ("creationTimestamp", .whole),
                              ("deletionTimestamp", .whole)])),
        ("spec", .object([("nodeName", .whole), ("hostNetwork", .whole),
                          ("containers", .array(container)), ("initContainers", .array(container))])),
        ("status", .object([("phase", .whole), ("podIP", .whole), ("podIPs", .whole),
                            ("conditions", .array(.object([("type", .whole), ("status", .whole)])))])),
    ])
}

// Pod (core/v1): what policies select backends by. Reads only what `PodFields.kept` keeps.
extension ObjectDecoder {
    mutating func pod(_ meta: ObjectMeta, _ source: ObjectSource) -> Pod {
        let spec = mapping(root, "spec")
        let status = mapping(root, "status")
        var ips: [IPAddress] = []
        if let status {
            for p in sequence(status, "podIPs") {
                if tree.kind(p) == .mapping, let n = field(p, "ip"), let ip = ip(n, rule: .destination), !ips.contains(ip) { ips.append(ip) }
            }
            if ips.isEmpty, let n = field(status, "podIP"), let ip = ip(n, rule: .destination) { ips.append(ip) }
        }
        var ready = false
        if let status {
            for c in sequence(status, "conditions") where tree.kind(c) == .mapping {
                if string(c, "type") == "Ready" { ready = string(c, "status") == "True" }
            }
        }
        var ports: [ContainerPort] = []
        if let spec {
            var containers = sequence(spec, "containers")
            // Sidecars (init containers that keep running) expose ports too.
            for c in sequence(spec, "initContainers") where tree.kind(c) == .mapping && string(c, "restartPolicy") == "Always" {
                containers.append(c)
            }
            for c in containers where tree.kind(c) == .mapping {
                for p in sequence(c, "ports") where tree.kind(p) == .mapping {
                    guard let port = port(p, "containerPort", required: true), let proto = proto(p) else { continue }
                    ports.append(ContainerPort(name: string(p, "name") ?? "", port: port, proto: proto))
                }
            }
        }
        let terminating = mapping(root, "metadata").flatMap { string($0, "deletionTimestamp") } != nil
        return Pod(meta: meta, source: source, nodeName: spec.flatMap { string($0, "nodeName") }, phase: status.flatMap { string($0, "phase") } ?? "",
                   podIPs: ips, ready: ready, terminating: terminating, hostNetwork: spec.flatMap { bool($0, "hostNetwork") } ?? false,
                   containerPorts: ports)
    }
}

/// The kinds a watcher keeps trimmed (each has `keptFields`).
public let trimmedKinds = ["Pod", "Node"]

/// The fields a watcher keeps of the kinds it keeps trimmed; nil: the object is kept whole.
public func keptFields(kind: String) -> FieldSelection? {
    switch kind {
    case "Pod": PodFields.kept
    case "Node": NodeFields.kept
    default: nil
    }
}
