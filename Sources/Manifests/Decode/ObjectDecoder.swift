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
    /// Tests only: every field looked up, by path. The Pod decoder must read nothing that
    /// `PodFields.kept` drops (watched Pods are kept trimmed to it).
    var lookups: FieldLookups?

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
        lookups?.record(fieldPath(parent), key)
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
}

/// The fields an ObjectDecoder looked up: "spec.containers[].ports", list positions as `[]`.
final class FieldLookups {
    private(set) var paths: Set<String> = []

    func record(_ parent: String, _ key: String) {
        let path = parent.isEmpty ? key : parent + "." + key
        var out = ""
        var inIndex = false
        for c in path {
            if c == "[" { inIndex = true; out.append("[") } else if c == "]" { inIndex = false; out.append("]") } else if !inIndex { out.append(c) }
        }
        paths.insert(out)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
