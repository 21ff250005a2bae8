import CBalancerABI
extension ImageDecoder {
    public static func decode(_ bytes: [UInt8]) throws(ImageError) -> (ImageHeader, ImageContents) {
        try decode(bytes, materialize: true)
    }

    /// Every check `decode` makes on the container and the tables, without building the model:
    /// what a loader needs before it writes the tables to the kernel. Of the metadata only the
    /// node list is decoded, when `nodes` (to map `--node` to an id); the rest is covered by the
    /// digest and is not written to the kernel.
    public static func verify(_ bytes: [UInt8], nodes: Bool = true) throws(ImageError) -> VerifiedImage {
        let (header, contents) = try decode(bytes, materialize: false, nodes: nodes)
        return VerifiedImage(header: header, bytes: bytes, nodes: contents.metadata.nodes, clusters: contents.metadata.clusters ?? [])
    }

    static func decode(_ bytes: [UInt8], materialize: Bool, nodes decodeNodes: Bool = true) throws(ImageError) -> (ImageHeader, ImageContents) {
        var tables = TableDecoder(bytes: bytes, header: try decodeHeader(bytes), materialize: materialize)
        // Nodes first: other tables refer to them.
        try tables.nodes()
        try tables.backends()
        try tables.sets()
        try tables.frontends()
        try tables.vips()
        try tables.nodeAddresses()
        try tables.serviceCIDRs()
        try tables.sourceRanges()

        let header = tables.header
        let meta = header.sections[ImageTable.allCases.count]
        if materialize {
            tables.contents.metadata = try metadata(bytes, meta)
        } else if decodeNodes {
            do {
                let named = try ImageMetadata.decodeNodes(Array(bytes[meta.offset..<(meta.offset + meta.length)]))
                tables.contents.metadata.nodes = named.nodes
                tables.contents.metadata.clusters = named.clusters
            } catch {
                throw ImageError("metadata is not valid: \(PrintableText.escape("\(error)"))", offset: meta.offset)
            }
        }
        return (header, tables.contents)
    }
}

/// The record sections of an image whose container is verified (`ImageDecoder.decodeHeader`),
/// checked table by table in the order `ImageDecoder.decode` calls them: each table's checks
/// use what the tables before it hold (the ids they define). With `materialize`, the model is
/// built as well.
struct TableDecoder {
    let bytes: [UInt8]
    let header: ImageHeader
    let materialize: Bool
    var contents = ImageContents()
    /// Ids the tables decoded so far define.
    var nodeIDs = Set<UInt32>()
    var backendIDs = Set<UInt32>()
    /// Groups with a backend set other than a gate: what a translating rule needs.
    var groupsWithSets = Set<UInt32>()

    init(bytes: [UInt8], header: ImageHeader, materialize: Bool) {
        self.bytes = bytes
        self.header = header
        self.materialize = materialize
    }

    func section(_ t: ImageTable) -> SectionInfo { header.sections[Int(t.rawValue) - 1] }

    /// Checks strict key order of a record section and hands each record's key and value
    /// offsets to `body`.
    static func records(_ bytes: [UInt8], _ t: ImageTable, _ s: SectionInfo,
                        _ body: (Int, Int) throws(ImageError) -> Void) throws(ImageError) {
        let stride = s.keySize + s.valueSize
        for i in 0..<s.count {
            let k = s.offset + i * stride
            if i > 0 && compareBytes(bytes, k - stride, bytes, k, s.keySize) >= 0 {
                throw ImageError("\(t): record \(i) is not in strictly ascending key order (unsorted or duplicate key)", offset: k)
            }
            try body(k, k + s.keySize)
        }
    }

    mutating func nodes() throws(ImageError) {
        try Self.records(bytes, .nodes, section(.nodes)) { (k, v) throws(ImageError) in
            let id = RecordDecoder.idKey(bytes, k)
            let n = RecordDecoder.nodeValue(bytes, v)
            guard id != 0 else { throw ImageError("nodes: node id 0 is reserved for hosts that are not nodes", offset: k) }
            guard n.flags & ~NodeFlags.fromObject.rawValue == 0 else { throw ImageError("nodes: unknown flags", offset: v) }
            let v4 = n.addr4 == [0, 0, 0, 0] ? nil : IPAddress(ipv4: n.addr4[0], n.addr4[1], n.addr4[2], n.addr4[3])
            let v6: IPAddress? = n.addr6 == IPAddress(high: 0, low: 0) ? nil : n.addr6
            if let v6, v6.isIPv4 { throw ImageError("nodes: IPv6 address field holds an IPv4 address", offset: v) }
            nodeIDs.insert(id)
            if materialize { contents.nodes.append(ImageNode(id: id, zoneID: n.zoneID, flags: NodeFlags(rawValue: n.flags), ipv4: v4, ipv6: v6)) }
        }
    }

    mutating func backends() throws(ImageError) {
        backendIDs.reserveCapacity(section(.backends).count)
        try Self.records(bytes, .backends, section(.backends)) { (k, v) throws(ImageError) in
            let id = RecordDecoder.idKey(bytes, k)
            let b = RecordDecoder.backendValue(bytes, v)
            guard id != 0 else { throw ImageError("backends: backend id 0 is reserved", offset: k) }
            guard let proto = TransportProtocol(rawValue: b.proto) else { throw ImageError("backends: protocol \(b.proto) is not TCP or UDP", offset: v) }
            guard b.port != 0 else { throw ImageError("backends: port 0", offset: v) }
            guard !b.address.isUnspecified else { throw ImageError("backends: unspecified address", offset: v) }
            guard b.nodeID == 0 || nodeIDs.contains(b.nodeID) else {
                throw ImageError("backends: backend \(id) refers to node \(b.nodeID), which is not in the nodes table", offset: v)
            }
            backendIDs.insert(id)
            if materialize {
                contents.backends.append(Backend(id: id, address: SocketAddress(address: b.address, port: b.port), proto: proto, nodeID: b.nodeID,
                                                cluster: b.cluster))
            }
        }
    }

    /// Sets, then their slots and members, which must match one for one.
    mutating func sets() throws(ImageError) {
        // One entry per set: its flags and its slots, filled as the slots table is read.
        var slotsBySet: [SetKey: (flags: SetFlags, slots: [UInt32?])] = Dictionary(minimumCapacity: section(.sets).count)
        var setOrder: [SetKey] = []
        setOrder.reserveCapacity(section(.sets).count)
        var totalSlots = 0
        let slotCount = section(.slots).count
        try Self.records(bytes, .sets, section(.sets)) { (k, v) throws(ImageError) in
            let key = RecordDecoder.setKey(bytes, k)
            let value = RecordDecoder.setValue(bytes, v)
            guard let scope = SetScope(rawValue: key.scope) else { throw ImageError("sets: unknown scope \(key.scope)", offset: k) }
            guard key.pad == [0, 0, 0] else { throw ImageError("sets: padding not zero", offset: k) }
            guard key.groupID != 0 else { throw ImageError("sets: group id 0", offset: k) }
            switch scope {
            case .cluster, .serving:
                guard key.scopeID == 0 else { throw ImageError("sets: \(scope) set with scope id \(key.scopeID)", offset: k) }
            case .node, .local, .gate:
                guard nodeIDs.contains(key.scopeID) else { throw ImageError("sets: \(scope) set for node \(key.scopeID), which is not in the nodes table", offset: k) }
            case .zone:
                guard key.scopeID != 0 else { throw ImageError("sets: zone set with zone id 0", offset: k) }
            case .inCluster, .outOfCluster:
                guard (1...UInt32(ABI.maxClusters)).contains(key.scopeID) else {
                    throw ImageError("sets: \(scope) set for cluster \(key.scopeID) (1–\(ABI.maxClusters))", offset: k)
                }
            }
            guard value.flags & ~SetFlags.terminating.rawValue == 0 else { throw ImageError("sets: unknown flags", offset: v) }
            if scope == .gate {
                guard value.count == 0 else { throw ImageError("sets: a gate set holds no backends", offset: v) }
            } else {
                guard value.count > 0 else { throw ImageError("sets: empty \(scope) set (an empty set is encoded by its absence)", offset: v) }
            }
            totalSlots += Int(value.count)
            guard totalSlots <= slotCount else {
                throw ImageError("sets: counts add up to more than the \(slotCount) slots", offset: v)
            }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            slotsBySet[sk] = (SetFlags(rawValue: value.flags), [UInt32?](repeating: nil, count: Int(value.count)))
            setOrder.append(sk)
        }
        try Self.records(bytes, .slots, section(.slots)) { (k, v) throws(ImageError) in
            let key = RecordDecoder.slotKey(bytes, k)
            let backend = RecordDecoder.slotValue(bytes, v)
            guard key.pad == [0, 0, 0], let scope = SetScope(rawValue: key.scope) else { throw ImageError("slots: bad scope or padding", offset: k) }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            guard let at = slotsBySet.index(forKey: sk) else { throw ImageError("slots: slot of a set that does not exist", offset: k) }
            let count = slotsBySet.values[at].slots.count
            guard Int(key.index) < count else { throw ImageError("slots: index \(key.index) beyond the set's count \(count)", offset: k) }
            guard backendIDs.contains(backend) else { throw ImageError("slots: backend \(backend) is not in the backends table", offset: v) }
            // In place: copying the set's list out and back would cost its length per slot.
            slotsBySet.values[at].slots[Int(key.index)] = backend
        }
        var memberCount = 0
        try Self.records(bytes, .members, section(.members)) { (k, v) throws(ImageError) in
            let key = RecordDecoder.memberKey(bytes, k)
            let index = RecordDecoder.memberValue(bytes, v)
            guard key.pad == [0, 0, 0], let scope = SetScope(rawValue: key.scope) else { throw ImageError("members: bad scope or padding", offset: k) }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            guard let list = slotsBySet[sk]?.slots, Int(index) < list.count, list[Int(index)] == key.backendID else {
                throw ImageError("members: backend \(key.backendID) at index \(index) does not match the set's slots", offset: k)
            }
            memberCount += 1
        }
        var sets: [BackendSet] = []
        for sk in setOrder {
            guard let entry = slotsBySet[sk] else { continue }
            let list = entry.slots
            var backends: [UInt32] = []
            backends.reserveCapacity(list.count)
            for b in list {
                guard let b else { throw ImageError("slots: a set of group \(sk.groupID) is missing slots", offset: section(.slots).offset) }
                backends.append(b)
            }
            guard Set(backends).count == backends.count else {
                throw ImageError("slots: a set of group \(sk.groupID) lists a backend twice", offset: section(.slots).offset)
            }
            if materialize { sets.append(BackendSet(key: sk, flags: entry.flags, backends: backends)) }
            // Gate and serving sets are never chosen: a translate rule needs another.
            if sk.scope != .gate && sk.scope != .serving { groupsWithSets.insert(sk.groupID) }
        }
        guard memberCount == slotCount else {
            throw ImageError("members: \(memberCount) records for \(slotCount) slots", offset: section(.members).offset)
        }
        contents.sets = sets
    }

    mutating func frontends() throws(ImageError) {
        try Self.records(bytes, .frontends, section(.frontends)) { (k, v) throws(ImageError) in
            let f = RecordDecoder.frontend(bytes, key: k, value: v)
            guard let proto = TransportProtocol(rawValue: f.proto) else { throw ImageError("frontends: protocol \(f.proto) is not TCP or UDP", offset: k) }
            guard f.valuePad == [0, 0, 0] else { throw ImageError("frontends: padding not zero", offset: k) }
            guard f.port != 0 else { throw ImageError("frontends: port 0", offset: k) }
            guard f.id != 0 else { throw ImageError("frontends: frontend id 0 is reserved", offset: v) }
            guard (1...ABI.maxRules).contains(Int(f.ruleCount)) else { throw ImageError("frontends: \(f.ruleCount) rules (1–\(ABI.maxRules) allowed)", offset: v) }
            let key = FrontendKey(address: f.address, port: f.port, proto: proto, cluster: f.cluster)
            var rules: [Rule] = []
            if materialize { rules.reserveCapacity(Int(f.ruleCount)) }
            for (i, r) in f.rules.enumerated() {
                if i >= Int(f.ruleCount) {
                    guard r.groupID == 0, r.ownerID == 0, r.affinityTimeout == 0, r.rateLimit == 0, r.origin == 0, r.kind == 0,
                          r.action == 0, r.cluster == 0, r.flags == 0, r.nodePort == 0 else {
                        throw ImageError("frontends: unused rule \(i) of \(key) is not zero", offset: v)
                    }
                    continue
                }
                guard let origin = RuleOrigin(rawValue: r.origin), let kind = FrontendKind(rawValue: r.kind),
                      let action = RuleAction(rawValue: r.action) else {
                    throw ImageError("frontends: rule \(i) of \(key) has an unknown origin, kind or action", offset: v)
                }
                guard r.flags & ~RuleFlags.known == 0 else { throw ImageError("frontends: rule \(i) of \(key) has unknown flags", offset: v) }
                guard r.groupID != 0, r.ownerID != 0 else { throw ImageError("frontends: rule \(i) of \(key) has a zero group or owner id", offset: v) }
                if action == .translate && !groupsWithSets.contains(r.groupID) {
                    throw ImageError("frontends: rule \(i) of \(key) translates to group \(r.groupID), which has no backend set", offset: v)
                }
                if key.isNodePortWildcard && kind != .nodePort {
                    throw ImageError("frontends: wildcard frontend \(key) has a \(kind) rule", offset: v)
                }
                if materialize {
                    rules.append(Rule(groupID: r.groupID, ownerID: r.ownerID, affinityTimeout: r.affinityTimeout, rateLimit: r.rateLimit,
                                      origin: origin, kind: kind, action: action, flags: RuleFlags(rawValue: r.flags), nodePort: r.nodePort,
                                      cluster: r.cluster))
                }
            }
            if materialize { contents.frontends.append(Frontend(key: key, id: f.id, rules: rules)) }
        }
    }

    mutating func vips() throws(ImageError) {
        try Self.records(bytes, .vips, section(.vips)) { (k, v) throws(ImageError) in
            let addr = RecordDecoder.addrKey(bytes, k)
            let value = RecordDecoder.vipValue(bytes, v)
            guard value.serviceID != 0 else { throw ImageError("vips: service id 0", offset: v) }
            guard value.flags & ~VIPFlags.rejectUnknownPort.rawValue == 0 else { throw ImageError("vips: unknown flags", offset: v) }
            guard value.pad == 0 else { throw ImageError("vips: padding not zero", offset: v) }
            if materialize {
                contents.vips.append(VIP(address: addr, serviceID: value.serviceID, flags: VIPFlags(rawValue: value.flags), cluster: value.cluster))
            }
        }
    }

    mutating func serviceCIDRs() throws(ImageError) {
        try Self.records(bytes, .serviceCIDRs, section(.serviceCIDRs)) { (k, v) throws(ImageError) in
            let (stored, addr) = RecordDecoder.cidrKey(bytes, k)
            let v4 = addr.isIPv4
            guard stored <= 128, !v4 || stored >= 96,
                  let cidr = IPPrefix(address: addr, prefixLength: Int(stored) - (v4 ? 96 : 0)) else {
                throw ImageError("service_cidrs: \(addr) with prefix length \(stored) (of 128) is not a canonical CIDR", offset: k)
            }
            guard RecordDecoder.cidrValue(bytes, v) == UInt32(BL_CIDR_REJECT.rawValue) else { throw ImageError("service_cidrs: unknown flags", offset: v) }
            if materialize { contents.serviceCIDRs.append(cidr) }
        }
    }

    mutating func sourceRanges() throws(ImageError) {
        try Self.records(bytes, .sourceRanges, section(.sourceRanges)) { (k, v) throws(ImageError) in
            let (stored, owner, addr) = RecordDecoder.rangeKey(bytes, k)
            let v4 = addr.isIPv4
            guard stored >= 32, stored <= 160, !v4 || stored >= 32 + 96,
                  let prefix = IPPrefix(address: addr, prefixLength: Int(stored) - 32 - (v4 ? 96 : 0)) else {
                throw ImageError("source_ranges: \(addr) with prefix length \(stored) (of 160, owner included) is not a canonical range", offset: k)
            }
            guard owner != 0 else { throw ImageError("source_ranges: owner id 0", offset: k) }
            guard RecordDecoder.rangeValue(bytes, v) == 0 else { throw ImageError("source_ranges: unknown flags", offset: v) }
            if materialize { contents.sourceRanges.append(SourceRange(ownerID: owner, prefix: prefix)) }
        }
    }

    mutating func nodeAddresses() throws(ImageError) {
        try Self.records(bytes, .nodeAddresses, section(.nodeAddresses)) { (k, v) throws(ImageError) in
            let addr = RecordDecoder.addrKey(bytes, k)
            let value = RecordDecoder.nodeAddrValue(bytes, v)
            guard nodeIDs.contains(value.nodeID) else { throw ImageError("node_addrs: \(addr) refers to node \(value.nodeID), which is not in the nodes table", offset: v) }
            guard value.pad == [0, 0, 0] else { throw ImageError("node_addrs: padding not zero", offset: v) }
            if materialize { contents.nodeAddresses.append(NodeAddress(address: addr, nodeID: value.nodeID, cluster: value.cluster)) }
        }
    }
}
