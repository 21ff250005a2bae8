import MapImage

/// Kubernetes' own validation rules for the fields the compiler reads (k8s.io/apimachinery
/// pkg/util/validation, pkg/apis/core/validation, pkg/apis/discovery/validation), applied where an
/// object is decoded. An object the API server would refuse can still arrive in a file: these
/// rules keep such input from reaching an image, where a name with a `/` or a newline could make
/// two objects collide into one id or forge a line of `inspect` output, and a special address
/// could capture a host's own traffic. docs/semantics.md cites each rule.
enum KubeValidation {
    /// Each returns nil when the value is valid, else the reason, worded as Kubernetes words it.

    // The checks run on UTF-8 bytes without allocating: a cluster dump has hundreds of thousands
    // of names and label keys.

    /// RFC 1123 label: namespaces, Service and EndpointSlice port names.
    static func dns1123Label(_ s: some StringProtocol) -> String? { dns1123Label(bytes: s.utf8) }

    static func dns1123Label(bytes u: some Collection<UInt8>) -> String? {
        if u.count > 63 { return "must be no more than 63 characters" }
        guard isLabel(u, firstIsLetter: false) else {
            return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        }
        return nil
    }

    /// RFC 1035 label: Service names (they become DNS names and environment variables).
    static func dns1035Label(_ s: some StringProtocol) -> String? {
        let u = s.utf8
        if u.count > 63 { return "must be no more than 63 characters" }
        guard isLabel(u, firstIsLetter: true) else {
            return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (regex '[a-z]([-a-z0-9]*[a-z0-9])?')"
        }
        return nil
    }

    /// RFC 1123 subdomain: names of EndpointSlices, Nodes, Pods and custom resources.
    static func dns1123Subdomain(_ s: some StringProtocol) -> String? { dns1123Subdomain(bytes: s.utf8) }

    static func dns1123Subdomain(bytes u: some Collection<UInt8>) -> String? {
        if u.count > 253 { return "must be no more than 253 characters" }
        var start = u.startIndex
        var valid = !u.isEmpty
        while valid {
            let end = u[start...].firstIndex(of: UInt8(ascii: ".")) ?? u.endIndex
            valid = isLabel(u[start..<end], firstIsLetter: false)
            if end == u.endIndex { break }
            start = u.index(after: end)
        }
        guard valid else {
            return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        }
        return nil
    }

    /// A label or annotation key: an optional DNS subdomain prefix and `/`, then a name of at
    /// most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric.
    static func qualifiedName(_ s: some StringProtocol) -> String? { qualifiedName(bytes: s.utf8) }

    static func qualifiedName(bytes u: some Collection<UInt8>) -> String? {
        var name = u[...]
        if let slash = u.firstIndex(of: UInt8(ascii: "/")) {
            let prefix = u[..<slash]
            name = u[u.index(after: slash)...]
            if name.contains(UInt8(ascii: "/")) {
                return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            }
            if prefix.isEmpty { return "prefix part must be non-empty" }
            if let why = dns1123Subdomain(bytes: prefix) { return "prefix part \(why)" }
        }
        if name.isEmpty { return "name part must be non-empty" }
        if name.count > 63 { return "name part must be no more than 63 characters" }
        guard isLabelValue(name) else {
            return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        }
        return nil
    }

    /// A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and ending
    /// with an alphanumeric.
    static func labelValue(_ s: some StringProtocol) -> String? { labelValue(bytes: s.utf8) }

    static func labelValue(bytes u: some Collection<UInt8>) -> String? {
        if u.count > 63 { return "must be no more than 63 characters" }
        guard u.isEmpty || isLabelValue(u) else {
            return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        }
        return nil
    }

    @inline(__always) private static func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
    @inline(__always) private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    @inline(__always) private static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }

    private static func isLabel(_ u: some Collection<UInt8>, firstIsLetter: Bool) -> Bool {
        guard let first = u.first else { return false }
        if firstIsLetter ? !isLower(first) : !(isLower(first) || isDigit(first)) { return false }
        var last = first
        for c in u {
            guard isLower(c) || isDigit(c) || c == UInt8(ascii: "-") else { return false }
            last = c
        }
        return isLower(last) || isDigit(last)
    }

    private static func isLabelValue(_ u: some Collection<UInt8>) -> Bool {
        guard let first = u.first, isLower(first) || isUpper(first) || isDigit(first) else { return false }
        var last = first
        for c in u {
            guard isLower(c) || isUpper(c) || isDigit(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") else { return false }
            last = c
        }
        return isLower(last) || isUpper(last) || isDigit(last)
    }

    // MARK: Addresses

    /// Which special addresses a field refuses.
    enum AddressRule {
        /// Kubernetes' ValidateNonSpecialIP (EndpointSlice addresses, externalIPs): unspecified,
        /// loopback, link-local unicast and link-local multicast.
        case nonSpecial
        /// Addresses the datapath captures (clusterIPs, LoadBalancer ingress, a policy's
        /// frontend): unspecified (the NodePort wildcard's key), loopback (every host's own
        /// 127.0.0.1 or ::1) and multicast. Link-local stays allowed: node-local DNS listens on
        /// 169.254.20.10.
        case captured
        /// Addresses connects are sent to (Node addresses, Pod IPs, a policy's address
        /// backends): unspecified and multicast are never a host.
        case destination
    }

    static func addressProblem(_ ip: IPAddress, _ rule: AddressRule) -> String? {
        let c = AddressClass(ip)
        if c.isUnspecified { return "may not be unspecified (\(ip))" }
        switch rule {
        case .nonSpecial:
            if c.isLoopback { return "may not be in the loopback range (127.0.0.0/8, ::1/128)" }
            if c.isLinkLocalUnicast { return "may not be in the link-local range (169.254.0.0/16, fe80::/10)" }
            if c.isLinkLocalMulticast { return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/16)" }
        case .captured:
            if c.isLoopback { return "may not be in the loopback range (127.0.0.0/8, ::1/128): it would capture every host's own connections to that port" }
            if c.isMulticast { return "may not be a multicast address (224.0.0.0/4, ff00::/8)" }
        case .destination:
            if c.isMulticast { return "may not be a multicast address (224.0.0.0/4, ff00::/8)" }
        }
        return nil
    }
}

/// The special ranges, as Go's net.IP classifies them (IPv4-mapped IPv6 as IPv4).
struct AddressClass {
    var isUnspecified = false, isLoopback = false, isLinkLocalUnicast = false
    var isLinkLocalMulticast = false, isMulticast = false

    init(_ ip: IPAddress) {
        if ip.isIPv4 {
            let b = ip.ipv4Bytes
            isUnspecified = b == [0, 0, 0, 0]
            isLoopback = b[0] == 127
            isLinkLocalUnicast = b[0] == 169 && b[1] == 254
            isMulticast = b[0] & 0xF0 == 0xE0
            isLinkLocalMulticast = b[0] == 224 && b[1] == 0 && b[2] == 0
        } else {
            isUnspecified = ip.high == 0 && ip.low == 0
            isLoopback = ip.high == 0 && ip.low == 1
            isLinkLocalUnicast = ip.high >> 54 == 0x3FA  // fe80::/10
            isMulticast = ip.high >> 56 == 0xFF
            isLinkLocalMulticast = ip.high >> 56 == 0xFF && (ip.high >> 48) & 0x0F == 0x02  // ffX2::/16, any flags
        }
    }
}

/// Values quoted in messages: control characters escaped (no value can forge a line of output)
/// and long values shortened (every error line stays readable).
public func shown(_ s: some StringProtocol, limit: Int = 200) -> String {
    var out = "\""
    var count = 0
    for scalar in s.unicodeScalars {
        if count == limit {
            out += "…\" (\(s.utf8.count) bytes)"
            return out
        }
        out += escapedScalar(scalar)
        count += 1
    }
    return out + "\""
}

/// One scalar as it may appear in a one-line message: C0, DEL, C1 and the line/paragraph
/// separators escaped; a backslash doubled so an escape cannot be forged.
func escapedScalar(_ u: Unicode.Scalar) -> String {
    switch u.value {
    case 0x0A: return "\\n"
    case 0x0D: return "\\r"
    case 0x09: return "\\t"
    case 0x5C: return "\\\\"
    case 0x22: return "\\\""
    case 0x00..<0x20, 0x7F..<0xA0, 0x2028, 0x2029, 0xFEFF:
        return "\\u{" + String(u.value, radix: 16) + "}"
    default: return String(u)
    }
}

/// A whole message line with control characters escaped (quotes and backslashes left alone: the
/// values in it were quoted by `shown` already).
func escapedLine(_ s: String) -> String {
    var needs = false
    for u in s.unicodeScalars where u.value < 0x20 || (0x7F..<0xA0).contains(u.value) || u.value == 0x2028 || u.value == 0x2029 {
        needs = true
        break
    }
    guard needs else { return s }
    var out = ""
    for u in s.unicodeScalars {
        switch u.value {
        case 0x00..<0x20, 0x7F..<0xA0, 0x2028, 0x2029:
            out += u.value == 0x0A ? "\\n" : u.value == 0x09 ? "\\t" : u.value == 0x0D ? "\\r" : "\\u{" + String(u.value, radix: 16) + "}"
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}
