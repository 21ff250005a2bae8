import MapImage

// The policies (balancing.elf.io/v1beta1): LocalRedirectPolicy and BalancingPolicy.
extension ObjectDecoder {
    mutating func labelSelector(_ parent: NodeID, _ key: String) -> LabelSelector? {
        guard let m = mapping(parent, key) else { return nil }
        var exprs: [LabelSelector.Requirement] = []
        for e in sequence(m, "matchExpressions") where tree.kind(e) == .mapping {
            guard let k = requiredString(e, "key"), let op = requiredString(e, "operator") else { continue }
            let values = stringList(e, "values")
            switch op {
            case "In", "NotIn":
                if values.isEmpty { error(e, "operator \(op) needs values") }
            case "Exists", "DoesNotExist":
                if !values.isEmpty { error(e, "operator \(op) takes no values") }
            default:
                if let n = field(e, "operator") { error(n, "unsupported operator \(shown(op)) (In, NotIn, Exists, DoesNotExist)") }
                continue
            }
            exprs.append(.init(key: k, op: op, values: values))
        }
        return LabelSelector(matchLabels: stringMap(m, "matchLabels"), matchExpressions: exprs)
    }

    mutating func policyPorts(_ parent: NodeID, _ key: String, required: Bool) -> [PolicyPort] {
        let nodes = sequence(parent, key)
        if nodes.isEmpty && required {
            if field(parent, key) == nil { missing(parent, key) } else if let n = field(parent, key) { error(n, "must list at least one port") }
        }
        var out: [PolicyPort] = []
        var names: Set<String> = []
        for p in nodes {
            guard tree.kind(p) == .mapping else { error(p, "expected a mapping, found \(describe(p))"); continue }
            guard let v = field(p, "port") else { missing(p, "port"); continue }
            var port: Int?
            // The CRD types `port` as a string ("8080"); integers are accepted too.
            switch intOrString(p, "port") {
            case .int(let i)?: port = i
            case .string(let s)?:
                if let i = Int(s), !(s.count > 1 && s.hasPrefix("0")) { port = i } else { error(v, "invalid port \(shown(s)) (1–65535)") }
            case nil: break
            }
            guard let pn = port else { continue }
            guard (1...65535).contains(pn) else { error(v, "invalid port \(pn) (must be 1–65535)"); continue }
            guard field(p, "protocol") != nil else { missing(p, "protocol"); continue }
            guard let proto = proto(p, allowSCTP: false) else { continue }
            let name = string(p, "name") ?? ""
            if !name.isEmpty && !names.insert(name).inserted, let n = field(p, "name") { error(n, "duplicate port name \(shown(name))") }
            out.append(PolicyPort(port: UInt16(pn), proto: proto, name: name))
        }
        if out.count > 1 && out.contains(where: { $0.name.isEmpty }), let n = field(parent, key) {
            error(n, "when several ports are listed, every port must be named")
        }
        return out
    }

    mutating func policyConfig(_ spec: NodeID) -> PolicyConfig {
        guard let c = mapping(spec, "config") else { return PolicyConfig(nodeSelector: nil, enableOutCluster: true) }
        return PolicyConfig(nodeSelector: labelSelector(c, "nodeLabelSelector"), enableOutCluster: bool(c, "enableOutCluster") ?? true)
    }

    mutating func policyFrontend(_ spec: NodeID) -> PolicyFrontend? {
        guard let f = mapping(spec, "frontend") else { missing(spec, "frontend"); return nil }
        let a = mapping(f, "addressMatcher")
        let s = mapping(f, "serviceMatcher")
        switch (a, s) {
        case (let a?, nil):
            guard let ipNode = field(a, "ip") else { missing(a, "ip"); return nil }
            guard let ip = ip(ipNode, rule: .captured) else { return nil }
            let ports = policyPorts(a, "toPorts", required: true)
            return ports.isEmpty ? nil : .address(ip: ip, toPorts: ports)
        case (nil, let s?):
            guard let name = requiredString(s, "serviceName") else { return nil }
            let ns = string(s, "namespace").flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            var valid = true
            if !name.isEmpty, let why = KubeValidation.dns1035Label(name), let n = field(s, "serviceName") {
                error(n, "invalid Service name \(shown(name)): \(why)")
                valid = false
            }
            if let why = KubeValidation.dns1123Label(ns), let n = field(s, "namespace") {
                error(n, "invalid namespace \(shown(ns)): \(why)")
                valid = false
            }
            guard valid else { return nil }
            return .service(namespace: ns, name: name, toPorts: policyPorts(s, "toPorts", required: false))
        case (nil, nil):
            error(f, "exactly one of addressMatcher or serviceMatcher is required")
            return nil
        default:
            error(f, "addressMatcher and serviceMatcher are mutually exclusive")
            return nil
        }
    }

    mutating func rateLimit(_ spec: NodeID) -> UInt32? {
        guard let v = field(spec, "redirectRateLimit") else { return nil }
        guard let i = intValue(v) else { return nil }
        guard (1...Int(UInt32.max)).contains(i) else { error(v, "redirectRateLimit must be a positive number of redirects per second"); return nil }
        return UInt32(i)
    }

    mutating func localRedirectPolicy(_ meta: ObjectMeta, _ source: ObjectSource) -> LocalRedirectPolicy? {
        guard let spec = mapping(root, "spec") else { missing(root, "spec"); return nil }
        let frontend = policyFrontend(spec)
        guard let backend = mapping(spec, "backend") else { missing(spec, "backend"); return nil }
        guard let selector = labelSelector(backend, "endpointSelector") else { missing(backend, "endpointSelector"); return nil }
        let toPorts = policyPorts(backend, "toPorts", required: true)
        let config = policyConfig(spec)
        let enabled = bool(spec, "enabled") ?? true
        let skip = bool(spec, "skipRedirectFromBackend") ?? false
        let limit = rateLimit(spec)
        guard let frontend, !toPorts.isEmpty else { return nil }
        return LocalRedirectPolicy(meta: meta, source: source, enabled: enabled, config: config, frontend: frontend, selector: selector,
                                   toPorts: toPorts, skipRedirectFromBackend: skip, rateLimit: limit)
    }

    mutating func balancingPolicy(_ meta: ObjectMeta, _ source: ObjectSource) -> BalancingPolicy? {
        guard let spec = mapping(root, "spec") else { missing(root, "spec"); return nil }
        let frontend = policyFrontend(spec)
        guard let b = mapping(spec, "backend") else { missing(spec, "backend"); return nil }
        let se = mapping(b, "serviceEndpoint")
        let ae = mapping(b, "addressEndpoint")
        var backend: BalancingBackend?
        switch (se, ae) {
        case (let se?, nil):
            guard let sel = labelSelector(se, "endpointSelector") else { missing(se, "endpointSelector"); return nil }
            let ports = policyPorts(se, "toPorts", required: true)
            let mode = enumValue(se, "redirectMode", RedirectMode.self, default: .podEndpoint)
            if !ports.isEmpty { backend = .serviceEndpoint(selector: sel, toPorts: ports, mode: mode) }
        case (nil, let ae?):
            let addrs = sequence(ae, "addresses")
            if addrs.isEmpty { if field(ae, "addresses") == nil { missing(ae, "addresses") } else { error(ae, "addresses must not be empty") } }
            let ips = addrs.compactMap { ip($0, rule: .destination) }
            let ports = policyPorts(ae, "toPorts", required: true)
            if !ips.isEmpty && !ports.isEmpty { backend = .addressEndpoint(addresses: ips, toPorts: ports) }
        case (nil, nil):
            error(b, "exactly one of serviceEndpoint or addressEndpoint is required")
        default:
            error(b, "serviceEndpoint and addressEndpoint are mutually exclusive")
        }
        let config = policyConfig(spec)
        let enabled = bool(spec, "enabled") ?? true
        let limit = rateLimit(spec)
        guard let frontend, let backend else { return nil }
        return BalancingPolicy(meta: meta, source: source, enabled: enabled, config: config, frontend: frontend, backend: backend, rateLimit: limit)
    }
}
