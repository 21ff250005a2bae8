import MapImage

/// Decodes one object of a manifest tree by its schema. Scalars are typed by the field that holds
/// them, never guessed: a quoted "80" is a string, a plain 80 an integer, a plain `yes` in a
/// string field the string "yes". Every problem becomes a Diagnostic naming the field path, and
/// decoding goes on so that one run reports every error.
struct ObjectDecoder {
    let tree: ManifestTree
    let root: NodeID
    var object: String
    var diagnostics: [Diagnostic] = []

    init(tree: ManifestTree, root: NodeID, object: String) {
        self.tree = tree
        self.root = root
        self.object = object
    }

    // MARK: Diagnostics

    mutating func report(_ severity: Diagnostic.Severity, _ node: NodeID, _ message: String, field: String? = nil) {
        let m = tree.mark(node)
        var d = Diagnostic(severity, file: tree.file, line: m.line, column: m.column, object: object,
                           field: field ?? fieldPath(node), message: message)
        if m.line == 0 { d.treePath = tree.path(node) }
        diagnostics.append(d)
    }

    mutating func error(_ node: NodeID, _ message: String) { report(.error, node, message) }

    mutating func missing(_ parent: NodeID, _ key: String) {
        let p = fieldPath(parent)
        report(.error, parent, "required field is missing", field: p.isEmpty ? key : "\(p).\(key)")
    }

    /// "spec.ports[1].port", from the node up to the object root.
    func fieldPath(_ node: NodeID) -> String {
        var parts: [String] = []
        var cur = node
        while cur != root, let p = tree.parent(cur) {
            switch tree.kind(p) {
            case .mapping:
                if let e = tree.entries(p).first(where: { $0.value == cur || $0.key == cur }) {
                    let key = tree.text(e.key)
                    parts.append("." + (key.utf8.count > 100 ? String(key.prefix(100)) + "…" : key))
                }
            case .sequence:
                if let i = tree.items(p).firstIndex(of: cur) { parts.append("[\(i)]") }
            case .scalar:
                break
            }
            cur = p
        }
        var s = parts.reversed().joined()
        if s.hasPrefix(".") { s.removeFirst() }
        return s
    }

    // MARK: Typed access

    func isNull(_ n: NodeID) -> Bool {
        guard tree.kind(n) == .scalar else { return false }
        switch tree.style(n) {
        case .jsonNull: return true
        case .plain: return tree.textEquals(n, "") || tree.textEquals(n, "null") || tree.textEquals(n, "~")
            || tree.textEquals(n, "Null") || tree.textEquals(n, "NULL")
        default: return false
        }
    }

    /// The value under `key`, or nil when absent or null.
    func field(_ parent: NodeID, _ key: String) -> NodeID? {
        guard tree.kind(parent) == .mapping, let v = tree.value(parent, key), !isNull(v) else { return nil }
        return v
    }

    mutating func mapping(_ parent: NodeID, _ key: String) -> NodeID? {
        guard let v = field(parent, key) else { return nil }
        guard tree.kind(v) == .mapping else {
            error(v, "expected a mapping, found \(describe(v))")
            return nil
        }
        return v
    }

    mutating func sequence(_ parent: NodeID, _ key: String) -> [NodeID] {
        guard let v = field(parent, key) else { return [] }
        guard tree.kind(v) == .sequence else {
            error(v, "expected a list, found \(describe(v))")
            return []
        }
        return Array(tree.items(v))
    }

    mutating func string(_ parent: NodeID, _ key: String) -> String? {
        guard let v = field(parent, key) else { return nil }
        return stringValue(v)
    }

    mutating func stringValue(_ v: NodeID) -> String? {
        guard tree.kind(v) == .scalar else {
            error(v, "expected a string, found \(describe(v))")
            return nil
        }
        switch tree.style(v) {
        case .plain, .quoted, .jsonString: return tree.text(v)
        default:
            error(v, "expected a string, found \(describe(v))")
            return nil
        }
    }

    /// `kind` and `apiVersion`: a string in every reading. Decoded without a schema (as
    /// `kubectl apply` and the API server decode them), a plain `5` or `true` is a number or a
    /// boolean, and the object is refused there, so it is refused here rather than skipped as an
    /// unknown kind "5". nil when absent or null.
    mutating func typeString(_ parent: NodeID, _ key: String) -> String? {
        guard let v = field(parent, key) else { return nil }
        if tree.kind(v) == .scalar, tree.style(v) == .plain {
            let b = tree.bytes(v)
            let t = Array(b)
            if ManifestTree.boolValue(t, 0, t.count) != nil || ManifestTree.numberShape(t, 0, t.count) != .none {
                error(v, "expected a string, found \(describe(v)) (unquoted, YAML reads it as a \(ManifestTree.boolValue(t, 0, t.count) != nil ? "boolean" : "number"))")
                return nil
            }
        }
        return stringValue(v)
    }

    mutating func requiredString(_ parent: NodeID, _ key: String) -> String? {
        guard let s = string(parent, key) else {
            if field(parent, key) == nil { missing(parent, key) }
            return nil
        }
        if s.isEmpty, let v = field(parent, key) { error(v, "must not be empty") }
        return s
    }

    mutating func int(_ parent: NodeID, _ key: String) -> Int? {
        guard let v = field(parent, key) else { return nil }
        return intValue(v)
    }

    mutating func intValue(_ v: NodeID) -> Int? {
        guard tree.kind(v) == .scalar else {
            error(v, "expected an integer, found \(describe(v))")
            return nil
        }
        switch tree.style(v) {
        case .jsonInteger:
            guard let i = Int(tree.text(v)) else { error(v, "integer out of range"); return nil }
            return i
        case .plain:
            let t = tree.text(v)
            return plainInteger(t, v)
        default:
            error(v, "expected an integer, found \(describe(v))")
            return nil
        }
    }

    /// A plain YAML scalar read as a decimal integer. Forms whose meaning differs between YAML
    /// 1.1 (what kubectl's YAML path uses) and YAML 1.2 are refused rather than guessed.
    private mutating func plainInteger(_ t: String, _ v: NodeID) -> Int? {
        var digits = Substring(t)
        if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            if t.hasPrefix("0x") || t.hasPrefix("0o") || t.contains("_") {
                error(v, "integer \(shown(t)) must be written in plain decimal")
            } else {
                error(v, "expected an integer, found \(describe(v))")
            }
            return nil
        }
        if digits.count > 1 && digits.first == "0" {
            error(v, "ambiguous integer \(shown(t)): YAML 1.1 reads a leading zero as octal, YAML 1.2 as decimal; write it without leading zeros")
            return nil
        }
        guard let i = Int(t) else { error(v, "integer \(shown(t)) out of range"); return nil }
        return i
    }

    mutating func bool(_ parent: NodeID, _ key: String) -> Bool? {
        guard let v = field(parent, key) else { return nil }
        guard tree.kind(v) == .scalar else {
            error(v, "expected a boolean, found \(describe(v))")
            return nil
        }
        switch tree.style(v) {
        case .jsonTrue: return true
        case .jsonFalse: return false
        case .plain:
            // The common spellings first, without building a String.
            if tree.textEquals(v, "true") { return true }
            if tree.textEquals(v, "false") { return false }
            let t = tree.text(v)
            switch t {
            case "True", "TRUE": return true
            case "False", "FALSE": return false
            case "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N":
                error(v, "ambiguous boolean \(shown(t)): YAML 1.1 reads it as a boolean, YAML 1.2 as a string; write true or false")
                return nil
            default:
                error(v, "expected a boolean, found \(describe(v))")
                return nil
            }
        default:
            error(v, "expected a boolean, found \(describe(v))")
            return nil
        }
    }

    mutating func intOrString(_ parent: NodeID, _ key: String) -> IntOrString? {
        guard let v = field(parent, key) else { return nil }
        guard tree.kind(v) == .scalar else {
            error(v, "expected an integer or a string, found \(describe(v))")
            return nil
        }
        switch tree.style(v) {
        case .jsonInteger:
            return intValue(v).map(IntOrString.int)
        case .quoted, .jsonString:
            return .string(tree.text(v))
        case .plain:
            let t = tree.text(v)
            if let c = t.first, c.isNumber || c == "-" || c == "+" {
                return plainInteger(t, v).map(IntOrString.int)
            }
            return .string(t)
        default:
            error(v, "expected an integer or a string, found \(describe(v))")
            return nil
        }
    }

    mutating func stringMap(_ parent: NodeID, _ key: String) -> [String: String] {
        guard let m = mapping(parent, key) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in tree.entries(m) {
            if isNull(v) { out[tree.text(k)] = ""; continue }
            if let s = stringValue(v) { out[tree.text(k)] = s }
        }
        return out
    }

    mutating func stringList(_ parent: NodeID, _ key: String) -> [String] {
        sequence(parent, key).compactMap { stringValue($0) }
    }

    /// An IP address field. Text is read exactly as Kubernetes' parser reads it (no spaces
    /// around it; IPv4 with leading zeros is accepted as the API's legacy fields accept it), and
    /// `rule` refuses the special addresses the field may not hold.
    mutating func ip(_ node: NodeID, family: AddressType? = nil, rule: KubeValidation.AddressRule) -> IPAddress? {
        var parsed: IPAddress?
        if tree.kind(node) == .scalar, [.plain, .quoted, .jsonString].contains(tree.style(node)) {
            parsed = IPAddress(utf8: tree.bytes(node))
        }
        if parsed == nil {
            guard let s = stringValue(node) else { return nil }
            if s.trimmingSpaces != s, IPAddress(s.trimmingSpaces) != nil {
                error(node, "invalid IP address \(shown(s)): leading or trailing whitespace")
            } else {
                error(node, "invalid IP address \(shown(s))")
            }
            return nil
        }
        guard let ip = parsed else { return nil }
        if let family, family != .fqdn, (family == .ipv4) != ip.isIPv4 {
            error(node, "\(shown(tree.text(node))) is not an \(family.rawValue) address")
            return nil
        }
        if let why = KubeValidation.addressProblem(ip, rule) {
            error(node, "\(shown(tree.text(node))): \(why)")
            return nil
        }
        return ip
    }

    mutating func port(_ parent: NodeID, _ key: String, required: Bool, allowZero: Bool = false) -> UInt16? {
        guard let v = field(parent, key) else {
            if required { missing(parent, key) }
            return nil
        }
        guard let i = intValue(v) else { return nil }
        if i == 0 && allowZero { return 0 }
        guard (1...65535).contains(i) else {
            error(v, "invalid port \(i) (must be 1–65535)")
            return nil
        }
        return UInt16(i)
    }

    mutating func proto(_ parent: NodeID, _ key: String = "protocol", allowSCTP: Bool = true) -> PortProtocol? {
        guard let v = field(parent, key) else { return .tcp }
        guard let s = stringValue(v) else { return nil }
        guard let p = PortProtocol(rawValue: s), allowSCTP || p != .sctp else {
            error(v, "unsupported protocol \(shown(s)) (expected \(allowSCTP ? "TCP, UDP or SCTP" : "TCP or UDP"))")
            return nil
        }
        return p
    }

    mutating func enumValue<E: RawRepresentable>(_ parent: NodeID, _ key: String, _: E.Type, default d: E) -> E where E.RawValue == String {
        guard let v = field(parent, key), let s = stringValue(v) else { return d }
        guard let e = E(rawValue: s) else {
            error(v, "unsupported value \(shown(s))")
            return d
        }
        return e
    }

    func describe(_ n: NodeID) -> String {
        switch tree.kind(n) {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar:
            let t = tree.text(n)
            let quoted = shown(t, limit: 40)
            switch tree.style(n) {
            case .quoted, .jsonString: return "string \(quoted)"
            case .jsonInteger, .jsonReal: return "number \(t)"
            case .jsonTrue, .jsonFalse: return "boolean \(t)"
            case .jsonNull: return "null"
            case .plain: return quoted
            }
        }
    }

    // MARK: Objects

    /// How a kind's names are validated (ValidateObjectMeta with the kind's name function).
    enum NameRule {
        case dns1035Label, dns1123Subdomain

        func problem(_ s: String) -> String? {
            switch self {
            case .dns1035Label: KubeValidation.dns1035Label(s)
            case .dns1123Subdomain: KubeValidation.dns1123Subdomain(s)
            }
        }
    }

    /// metadata, validated as the API server validates it: the name by the kind's rule, the
    /// namespace as a DNS-1123 label, label keys and values, annotation keys.
    mutating func meta(namespaced: Bool, nameRule: NameRule) -> ObjectMeta? {
        guard let m = mapping(root, "metadata") else {
            missing(root, "metadata")
            return nil
        }
        guard let name = requiredString(m, "name") else { return nil }
        var valid = true
        if !name.isEmpty, let why = nameRule.problem(name), let n = field(m, "name") {
            error(n, "invalid name \(shown(name)): \(why)")
            valid = false
        }
        var ns = ""
        if namespaced {
            ns = string(m, "namespace").flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            if let why = KubeValidation.dns1123Label(ns), let n = field(m, "namespace") {
                error(n, "invalid namespace \(shown(ns)): \(why)")
                valid = false
            }
        }
        let labels = stringMap(m, "labels")
        let annotations = stringMap(m, "annotations")
        if let l = field(m, "labels") { valid = checkKeys(l, values: true) && valid }
        if let a = field(m, "annotations") { valid = checkKeys(a, values: false) && valid }
        guard valid, !name.isEmpty else { return nil }
        return ObjectMeta(namespace: ns, name: name, labels: labels, annotations: annotations,
                          creationTimestamp: string(m, "creationTimestamp") ?? "")
    }

    /// Label (or annotation) keys as qualified names, and label values.
    private mutating func checkKeys(_ map: NodeID, values: Bool) -> Bool {
        guard tree.kind(map) == .mapping else { return false }
        var valid = true
        for (k, v) in tree.entries(map) {
            if let why = KubeValidation.qualifiedName(bytes: tree.bytes(k)) {
                report(.error, k, "invalid key \(shown(tree.text(k))): \(why)", field: fieldPath(k))
                valid = false
            }
            if values, tree.kind(v) == .scalar, !isNull(v), let why = KubeValidation.labelValue(bytes: tree.bytes(v)) {
                error(v, "invalid label value \(shown(tree.text(v))): \(why)")
                valid = false
            }
        }
        return valid
    }

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
        var affinity: UInt32?
        let sessionAffinity = string(spec, "sessionAffinity") ?? "None"
        switch sessionAffinity {
        case "ClientIP":
            var timeout = 10800
            if let c = mapping(spec, "sessionAffinityConfig"), let ci = mapping(c, "clientIP"), let t = int(ci, "timeoutSeconds") {
                if (1...86400).contains(t) {
                    timeout = t
                } else if let n = field(ci, "timeoutSeconds") {
                    error(n, "timeoutSeconds \(t) out of range (1–86400)")
                }
            }
            affinity = UInt32(timeout)
        case "None": break
        default:
            if let n = field(spec, "sessionAffinity") { error(n, "unsupported value \(shown(sessionAffinity)) (expected ClientIP or None)") }
        }
        let etp = externalPolicy(spec)
        let itp = enumValue(spec, "internalTrafficPolicy", TrafficPolicy.self, default: .cluster)
        let pnr = bool(spec, "publishNotReadyAddresses") ?? false
        let hasSelector = !(mapping(spec, "selector").map { tree.count($0) == 0 } ?? true)
        return Service(meta: meta, source: source, type: type, headless: headless, clusterIPs: clusterIPs, ports: ports,
                       externalIPs: externalIPs, ingress: ingress, affinityTimeout: affinity, externalTrafficPolicy: etp,
                       internalTrafficPolicy: itp, publishNotReadyAddresses: pnr, hasSelector: hasSelector)
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

    // MARK: Policies (balancing.elf.io/v1beta1)

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

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
