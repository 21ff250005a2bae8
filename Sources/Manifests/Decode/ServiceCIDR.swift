import MapImage

// ServiceCIDR (networking.k8s.io/v1): spec.cidrs, validated as the API server validates them:
// one or two canonical CIDRs, at most one per IP family.
extension ObjectDecoder {
    mutating func serviceCIDR(_ meta: ObjectMeta, _ source: ObjectSource) -> ServiceCIDRObject? {
        guard let spec = mapping(root, "spec") else {
            missing(root, "spec")
            return nil
        }
        guard field(spec, "cidrs") != nil else {
            missing(spec, "cidrs")
            return nil
        }
        let items = sequence(spec, "cidrs")
        var cidrs: [IPPrefix] = []
        var families = Set<IPFamily>()
        for item in items {
            guard let text = stringValue(item) else { continue }
            guard let cidr = IPPrefix(text) else {
                error(item, "invalid CIDR \(shown(text)): expected a canonical network address and prefix length, such as 10.96.0.0/12 or fd00:10:96::/108")
                continue
            }
            guard families.insert(cidr.address.family).inserted else {
                error(item, "a second \(cidr.address.family.rawValue) CIDR \(cidr): at most one per IP family")
                continue
            }
            cidrs.append(cidr)
        }
        if let n = field(spec, "cidrs"), items.isEmpty || items.count > 2 {
            error(n, "\(items.count) CIDRs: one or two (one per IP family)")
            return nil
        }
        return ServiceCIDRObject(meta: meta, source: source, cidrs: cidrs)
    }
}
