import MapImage

// metadata, as every kind carries it.
extension ObjectDecoder {
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
                          creationTimestamp: string(m, "creationTimestamp") ?? "", uid: string(m, "uid") ?? "")
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
}
