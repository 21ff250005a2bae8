import MapImage

/// What of a Node the compiler reads: metadata's identity, labels (the zone) and annotations (an
/// explicit node id); the addresses. Kubelets rewrite every Node's status every few seconds
/// (heartbeats, images, allocatable): kept to this, those updates change nothing and cost no
/// compile.
public enum NodeFields {
    public static let kept: FieldSelection = .object([
        ("kind", .whole),
        ("apiVersion", .whole),
        ("metadata", .object([("name", .whole), ("labels", .whole), ("annotations", .whole), ("uid", .whole),
                              ("creationTimestamp", .whole)])),
        ("status", .object([("addresses", .whole)])),
    ])
}

// Node (core/v1): only its addresses. Reads only what `NodeFields.kept` keeps.
extension ObjectDecoder {
    mutating func node(_ meta: ObjectMeta, _ source: ObjectSource) -> Node {
        var addresses: [NodeAddressEntry] = []
        if let status = mapping(root, "status") {
            for a in sequence(status, "addresses") {
                guard tree.kind(a) == .mapping else { error(a, "expected a mapping, found \(describe(a))"); continue }
                let type = string(a, "type") ?? ""
                guard let addrNode = field(a, "address") else { missing(a, "address"); continue }
                // Host names and DNS names are not addresses the datapath can match.
                guard type == "InternalIP" || type == "ExternalIP" else { _ = stringValue(addrNode); continue }
                if let ip = ip(addrNode, rule: .destination) { addresses.append(NodeAddressEntry(type: type, address: ip)) }
            }
        }
        return Node(meta: meta, source: source, addresses: addresses)
    }
}
