import MapImage

// Node (core/v1): only its addresses.
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
