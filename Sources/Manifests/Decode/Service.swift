import MapImage

// Service (core/v1).
extension ObjectDecoder {
    mutating func service(_ meta: ObjectMeta, _ source: ObjectSource) -> Service? {
        let spec = mapping(root, "spec") ?? root
        let hasSpec = field(root, "spec") != nil
        if !hasSpec { missing(root, "spec") }
        let type = enumValue(spec, "type", ServiceType.self, default: .clusterIP)
        var clusterIPs: [IPAddress] = []
        var headless = false
        let single = string(spec, "clusterIP")
        let list = sequence(spec, "clusterIPs")
        if single == "None" || (single == nil && list.isEmpty) || single == "" {
            headless = true
        }
        if !list.isEmpty {
            for n in list {
                guard let s = stringValue(n) else { continue }
                if s == "None" { headless = true; continue }
                if let ip = ip(n, rule: .captured), !clusterIPs.contains(ip) { clusterIPs.append(ip) }
            }
            if clusterIPs.count > 2 { error(list[2], "at most two cluster IPs (one per family)") }
            if clusterIPs.count == 2 && clusterIPs[0].family == clusterIPs[1].family {
                error(list[1], "both cluster IPs are \(clusterIPs[0].family.rawValue); a dual-stack service has one per family")
            }
        } else if let s = single, s != "None", s != "", let v = field(spec, "clusterIP"), let ip = ip(v, rule: .captured) {
            clusterIPs = [ip]
        }
        if let s = single, s != "None", s != "", let first = clusterIPs.first, let parsed = IPAddress(s), parsed != first,
           let v = field(spec, "clusterIP") {
            error(v, "clusterIP \(s) differs from clusterIPs[0] \(first)")
        }
        if !headless && clusterIPs.isEmpty && type != .externalName { headless = true }

        var ports: [ServicePort] = []
        var seenPorts: Set<String> = []
        let portNodes = sequence(spec, "ports")
        for p in portNodes {
            guard tree.kind(p) == .mapping else { error(p, "expected a mapping, found \(describe(p))"); continue }
            let name = string(p, "name") ?? ""
            if !name.isEmpty, let why = KubeValidation.dns1123Label(name), let n = field(p, "name") {
                error(n, "invalid port name \(shown(name)): \(why)")
            }
            guard let proto = proto(p), let port = port(p, "port", required: true) else { continue }
            var target = intOrString(p, "targetPort")
            if case .int(let t)? = target, !(1...65535).contains(t) {
                if let n = field(p, "targetPort") { error(n, "invalid targetPort \(t) (must be 1–65535)") }
                target = nil
            }
            if case .string(let s)? = target, !isServicePortName(s) {
                if let n = field(p, "targetPort") {
                    error(n, "invalid targetPort \(shown(s)): a named port is 1–15 lowercase letters, digits and '-', with at least one letter")
                }
                target = nil
            }
            let nodePort = self.port(p, "nodePort", required: false, allowZero: true)
            let identity = "\(port)/\(proto.rawValue)"
            if !seenPorts.insert(identity).inserted { error(p, "duplicate port \(identity)") }
            if portNodes.count > 1 && name.isEmpty { error(p, "a service with several ports must name each port") }
            ports.append(ServicePort(name: name, proto: proto, port: port, targetPort: target, nodePort: nodePort == 0 ? nil : nodePort))
        }
        var externalIPs: [IPAddress] = []
        for n in sequence(spec, "externalIPs") {
            if let ip = ip(n, rule: .nonSpecial), !externalIPs.contains(ip) { externalIPs.append(ip) }
        }
        var ingress: [LoadBalancerIngress] = []
        if let status = mapping(root, "status"), let lb = mapping(status, "loadBalancer") {
            for i in sequence(lb, "ingress") {
                guard tree.kind(i) == .mapping else { error(i, "expected a mapping, found \(describe(i))"); continue }
                let ip = field(i, "ip").flatMap { self.ip($0, rule: .captured) }
                let mode = string(i, "ipMode")
                if let mode, mode != "VIP", mode != "Proxy", let n = field(i, "ipMode") {
                    error(n, "unsupported ipMode \(shown(mode)) (expected VIP or Proxy)")
                }
                ingress.append(LoadBalancerIngress(ip: ip, hostname: string(i, "hostname"), ipMode: mode))
            }
        }
        let affinity = sessionAffinity(spec)
        let etp = externalPolicy(spec)
        let itp = enumValue(spec, "internalTrafficPolicy", TrafficPolicy.self, default: .cluster)
        let pnr = bool(spec, "publishNotReadyAddresses") ?? false
        let hasSelector = !(mapping(spec, "selector").map { tree.count($0) == 0 } ?? true)
        // loadBalancerSourceRanges, as the API server validates them (a CIDR each, spaces around
        // allowed, host bits allowed and cleared: net.ParseCIDR) and only on a LoadBalancer.
        var ranges: [IPPrefix] = []
        let rangeNodes = sequence(spec, "loadBalancerSourceRanges")
        if !rangeNodes.isEmpty, type != .loadBalancer, let n = field(spec, "loadBalancerSourceRanges") {
            error(n, "may only be used when type is LoadBalancer")
        }
        for n in rangeNodes {
            guard let text = stringValue(n) else { continue }
            let start = text.firstIndex { !$0.isWhitespace } ?? text.endIndex
            let end = text.lastIndex { !$0.isWhitespace }.map { text.index(after: $0) } ?? start
            let trimmed = text[start..<max(start, end)]
            guard let slash = trimmed.firstIndex(of: "/"), let a = IPAddress(trimmed[..<slash]),
                  let len = Int(trimmed[trimmed.index(after: slash)...]), let r = IPPrefix.masking(a, prefixLength: len) else {
                error(n, "invalid CIDR \(shown(text)) (expected an address and a prefix length, such as 203.0.113.0/24)")
                continue
            }
            if !ranges.contains(r) { ranges.append(r) }
        }
        var service = Service(meta: meta, source: source, type: type, headless: headless, clusterIPs: clusterIPs, ports: ports,
                              externalIPs: externalIPs, ingress: ingress, affinityTimeout: affinity, externalTrafficPolicy: etp,
                              internalTrafficPolicy: itp, publishNotReadyAddresses: pnr, hasSelector: hasSelector)
        service.sourceRanges = ranges
        service.clusterIPUnset = single == nil && field(spec, "clusterIPs") == nil
        return service
    }

    /// spec.sessionAffinity(Config) of a Service or a ServiceImport: the ClientIP timeout in
    /// seconds (the API's default 10800), or nil for None.
    mutating func sessionAffinity(_ spec: NodeID) -> UInt32? {
        let value = string(spec, "sessionAffinity") ?? "None"
        switch value {
        case "ClientIP":
            var timeout = 10800
            if let c = mapping(spec, "sessionAffinityConfig"), let ci = mapping(c, "clientIP"), let t = int(ci, "timeoutSeconds") {
                if (1...86400).contains(t) {
                    timeout = t
                } else if let n = field(ci, "timeoutSeconds") {
                    error(n, "timeoutSeconds \(t) out of range (1–86400)")
                }
            }
            return UInt32(timeout)
        case "None":
            return nil
        default:
            if let n = field(spec, "sessionAffinity") { error(n, "unsupported value \(shown(value)) (expected ClientIP or None)") }
            return nil
        }
    }

    /// externalTrafficPolicy accepts the API's legacy spelling "Global" for Cluster.
    private mutating func externalPolicy(_ spec: NodeID) -> TrafficPolicy {
        guard let v = field(spec, "externalTrafficPolicy"), let s = stringValue(v) else { return .cluster }
        switch s {
        case "Cluster", "Global": return .cluster
        case "Local": return .local
        default:
            error(v, "unsupported value \(shown(s)) (expected Cluster or Local)")
            return .cluster
        }
    }
}
/// IANA service name rules Kubernetes applies to named ports.
func isServicePortName(_ s: String) -> Bool {
    guard (1...15).contains(s.count), !s.hasPrefix("-"), !s.hasSuffix("-"), !s.contains("--") else { return false }
    var letter = false
    for c in s.utf8 {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): letter = true
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): break
        default: return false
        }
    }
    return letter
}
