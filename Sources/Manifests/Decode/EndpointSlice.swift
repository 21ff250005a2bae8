import MapImage

// EndpointSlice (discovery.k8s.io/v1).
extension ObjectDecoder {
    mutating func endpointSlice(_ meta: ObjectMeta, _ source: ObjectSource) -> EndpointSlice? {
        guard let atNode = field(root, "addressType") else {
            missing(root, "addressType")
            return nil
        }
        guard let ats = stringValue(atNode) else { return nil }
        guard let addressType = AddressType(rawValue: ats) else {
            error(atNode, "unsupported addressType \(shown(ats)) (expected IPv4, IPv6 or FQDN)")
            return nil
        }
        var endpoints: [Endpoint] = []
        let endpointNodes = sequence(root, "endpoints")
        // The API server's limits (pkg/apis/discovery/validation: maxEndpoints, maxAddresses,
        // maxPorts); the EndpointSlice controller fills slices with at most 100.
        if endpointNodes.count > 1000, let n = field(root, "endpoints") {
            error(n, "too many endpoints: \(endpointNodes.count) (an EndpointSlice holds at most 1000)")
            return nil
        }
        endpoints.reserveCapacity(endpointNodes.count)
        for e in endpointNodes {
            guard tree.kind(e) == .mapping else { error(e, "expected a mapping, found \(describe(e))"); continue }
            let addrs = sequence(e, "addresses")
            guard let first = addrs.first else {
                if field(e, "addresses") == nil { missing(e, "addresses") } else { error(e, "addresses must hold at least one address") }
                continue
            }
            if addrs.count > 100, let n = field(e, "addresses") { error(n, "too many addresses: \(addrs.count) (an endpoint holds at most 100)") }
            var address: IPAddress?
            if addressType == .fqdn {
                _ = stringValue(first)
            } else {
                // Only addresses[0] is used (as kube-proxy does), but every one must be valid.
                address = ip(first, family: addressType, rule: .nonSpecial)
                for other in addrs.dropFirst() { _ = ip(other, family: addressType, rule: .nonSpecial) }
                if address == nil { continue }
            }
            if let n = field(e, "nodeName"), tree.kind(n) == .scalar, let why = KubeValidation.dns1123Subdomain(bytes: tree.bytes(n)) {
                error(n, "invalid node name \(shown(tree.text(n))): \(why)")
            }
            var ready: Bool?, serving: Bool?, terminating: Bool?
            if let c = mapping(e, "conditions") {
                ready = bool(c, "ready")
                serving = bool(c, "serving")
                terminating = bool(c, "terminating")
            }
            var forZones: [String] = [], forNodes: [String] = []
            if let h = mapping(e, "hints") {
                for z in sequence(h, "forZones") { if let m = tree.kind(z) == .mapping ? z : nil, let n = requiredString(m, "name") { forZones.append(n) } }
                for z in sequence(h, "forNodes") { if let m = tree.kind(z) == .mapping ? z : nil, let n = requiredString(m, "name") { forNodes.append(n) } }
            }
            endpoints.append(Endpoint(address: address, ready: ready, serving: serving, terminating: terminating,
                                      nodeName: string(e, "nodeName"), zone: string(e, "zone"), forZones: forZones, forNodes: forNodes))
        }
        var ports: [EndpointPort] = []
        let portNodes = sequence(root, "ports")
        if portNodes.count > 100, let n = field(root, "ports") { error(n, "too many ports: \(portNodes.count) (an EndpointSlice holds at most 100)") }
        var portNames: Set<String> = []
        for p in portNodes {
            guard tree.kind(p) == .mapping else { error(p, "expected a mapping, found \(describe(p))"); continue }
            guard let proto = proto(p) else { continue }
            // Absent: the endpoints serve every port (a slice not made for a Service); 0 is no port.
            let port = self.port(p, "port", required: false)
            let name = string(p, "name") ?? ""
            if let n = field(p, "name") {
                if !name.isEmpty, let why = KubeValidation.dns1123Label(name) { error(n, "invalid port name \(shown(name)): \(why)") }
                if !portNames.insert(name).inserted { error(n, "duplicate port name \(shown(name))") }
            } else if !portNames.insert("").inserted {
                error(p, "duplicate port name \"\" (more than one unnamed port)")
            }
            ports.append(EndpointPort(name: name, proto: proto, port: port))
        }
        return EndpointSlice(meta: meta, source: source, addressType: addressType, serviceName: meta.labels["kubernetes.io/service-name"],
                             endpoints: endpoints, ports: ports)
    }
}
