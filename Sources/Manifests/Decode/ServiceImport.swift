import MapImage

// ServiceImport (multicluster.x-k8s.io/v1alpha1, KEP-1645): spec.type, spec.ips, spec.ports,
// spec.sessionAffinity(Config), validated as the CRD's schema does.
extension ObjectDecoder {
    mutating func serviceImport(_ meta: ObjectMeta, _ source: ObjectSource) -> ServiceImport? {
        guard let spec = mapping(root, "spec") else {
            missing(root, "spec")
            return nil
        }
        let type = enumValue(spec, "type", ServiceImport.ImportType.self, default: .clusterSetIP)
        var ips: [IPAddress] = []
        for n in sequence(spec, "ips") {
            if let ip = ip(n, rule: .captured), !ips.contains(ip) { ips.append(ip) }
        }
        if ips.count == 2 && ips[0].family == ips[1].family, let n = field(spec, "ips") {
            error(n, "both ips are \(ips[0].family.rawValue); a dual-stack import has one per family")
        } else if ips.count > 2, let n = field(spec, "ips") {
            error(n, "at most two ips (one per family)")
        }
        var ports: [ServicePort] = []
        var seen: Set<String> = []
        for p in sequence(spec, "ports") {
            guard tree.kind(p) == .mapping else { error(p, "expected a mapping, found \(describe(p))"); continue }
            let name = string(p, "name") ?? ""
            if !name.isEmpty, let why = KubeValidation.dns1123Label(name), let n = field(p, "name") {
                error(n, "invalid port name \(shown(name)): \(why)")
            }
            guard let proto = proto(p), let port = port(p, "port", required: true) else { continue }
            if !seen.insert("\(port)/\(proto.rawValue)").inserted { error(p, "duplicate port \(port)/\(proto.rawValue)") }
            ports.append(ServicePort(name: name, proto: proto, port: port, targetPort: nil, nodePort: nil))
        }
        let affinity = sessionAffinity(spec)
        return ServiceImport(meta: meta, source: source, type: type, ips: ips, ports: ports, affinityTimeout: affinity)
    }
}
