import CBalancerABI

// The one place where image records meet memory: every record is built as the C struct the
// datapath header declares, filled by field name, and its bytes are taken as they are. Swift lays
// out imported C structs exactly as C does, so a field added or moved in balancer_abi.h changes
// both sides at once. Multi-byte integers are stored little-endian and ports in network order,
// whatever the host.

@inline(__always)
private func appendRaw<T>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value) { out.append(contentsOf: $0) }
}

@inline(__always)
private func loadRaw<T>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
    bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
}

/// Writes an address into a 16-byte C array field.
@inline(__always)
private func store<Tuple>(_ address: IPAddress, into field: inout Tuple) {
    withUnsafeMutableBytes(of: &field) { raw in
        raw.storeBytes(of: address.high.bigEndian, toByteOffset: 0, as: UInt64.self)
        raw.storeBytes(of: address.low.bigEndian, toByteOffset: 8, as: UInt64.self)
    }
}

@inline(__always)
private func loadAddress<Tuple>(_ field: Tuple) -> IPAddress {
    withUnsafeBytes(of: field) { raw in
        IPAddress(high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                  low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }
}

@inline(__always)
private func rawBytes<Tuple>(_ field: Tuple) -> [UInt8] {
    withUnsafeBytes(of: field) { Array($0) }
}

/// The elements of a C array field (imported as a tuple), as many as the header declares.
@inline(__always)
private func loadArray<Element, Tuple>(_: Element.Type, _ field: Tuple) -> [Element] {
    withUnsafeBytes(of: field) { raw in
        let stride = MemoryLayout<Element>.stride
        return (0..<(raw.count / stride)).map { raw.loadUnaligned(fromByteOffset: $0 * stride, as: Element.self) }
    }
}

/// The keys that name a backend set (sets, slots, members) begin with the same three fields:
/// filled and read once for the three structs.
protocol SetKeyFields {
    var group_id: UInt32 { get set }
    var scope_id: UInt32 { get set }
    var scope: UInt8 { get set }
}

extension bl_set_key: SetKeyFields {}
extension bl_slot_key: SetKeyFields {}
extension bl_member_key: SetKeyFields {}

extension SetKeyFields {
    mutating func fill(_ k: SetKey) {
        group_id = k.groupID.littleEndian
        scope_id = k.scopeID.littleEndian
        scope = k.scope.rawValue
    }

    var groupID: UInt32 { UInt32(littleEndian: group_id) }
    var scopeID: UInt32 { UInt32(littleEndian: scope_id) }
}

/// Record sizes as the ABI header defines them, by table.
public enum ABI {
    public static let version: UInt32 = BL_ABI_VERSION
    public static let maxRules = Int(BL_MAX_RULES)
    public static let maxClusters = Int(BL_MAX_CLUSTERS)

    public static func keySize(_ table: ImageTable) -> Int { Int(bl_table_key_size(UInt32(table.rawValue))) }
    public static func valueSize(_ table: ImageTable) -> Int { Int(bl_table_value_size(UInt32(table.rawValue))) }
    public static func maxEntries(_ table: ImageTable) -> Int { Int(bl_table_max_entries(UInt32(table.rawValue))) }

    /// Swift's view of each struct's size, compared with the header's constants by a test.
    public static let swiftLayoutSizes: [String: (swift: Int, header: Int)] = [
        "bl_frontend_key": (MemoryLayout<bl_frontend_key>.size, Int(BL_FRONTEND_KEY_SIZE)),
        "bl_rule": (MemoryLayout<bl_rule>.size, Int(BL_RULE_SIZE)),
        "bl_frontend_value": (MemoryLayout<bl_frontend_value>.size, 8 + Int(BL_MAX_RULES) * Int(BL_RULE_SIZE)),
        "bl_addr_key": (MemoryLayout<bl_addr_key>.size, Int(BL_ADDR_KEY_SIZE)),
        "bl_vip_value": (MemoryLayout<bl_vip_value>.size, Int(BL_VIP_VALUE_SIZE)),
        "bl_node_addr_value": (MemoryLayout<bl_node_addr_value>.size, Int(BL_NODE_ADDR_VALUE_SIZE)),
        "bl_id_key": (MemoryLayout<bl_id_key>.size, Int(BL_ID_KEY_SIZE)),
        "bl_node_value": (MemoryLayout<bl_node_value>.size, Int(BL_NODE_VALUE_SIZE)),
        "bl_set_key": (MemoryLayout<bl_set_key>.size, Int(BL_SET_KEY_SIZE)),
        "bl_set_value": (MemoryLayout<bl_set_value>.size, Int(BL_SET_VALUE_SIZE)),
        "bl_slot_key": (MemoryLayout<bl_slot_key>.size, Int(BL_SLOT_KEY_SIZE)),
        "bl_slot_value": (MemoryLayout<bl_slot_value>.size, Int(BL_SLOT_VALUE_SIZE)),
        "bl_member_key": (MemoryLayout<bl_member_key>.size, Int(BL_MEMBER_KEY_SIZE)),
        "bl_member_value": (MemoryLayout<bl_member_value>.size, Int(BL_MEMBER_VALUE_SIZE)),
        "bl_backend_value": (MemoryLayout<bl_backend_value>.size, Int(BL_BACKEND_VALUE_SIZE)),
    ]
}

// MARK: - Encoding (record → bytes)

enum RecordEncoder {
    static func frontendKey(_ k: FrontendKey, _ out: inout [UInt8]) {
        var c = bl_frontend_key()
        store(k.address, into: &c.addr)
        c.port_be = k.port.bigEndian
        c.proto = k.proto.rawValue
        c.cluster_id = k.cluster
        appendRaw(c, to: &out)
    }

    static func frontendValue(_ f: Frontend, _ out: inout [UInt8]) {
        var c = bl_frontend_value()
        c.frontend_id = f.id.littleEndian
        c.rule_count = UInt8(truncatingIfNeeded: f.rules.count)
        func rule(_ r: Rule) -> bl_rule {
            var c = bl_rule()
            c.group_id = r.groupID.littleEndian
            c.owner_id = r.ownerID.littleEndian
            c.affinity_timeout = r.affinityTimeout.littleEndian
            c.rate_limit = r.rateLimit.littleEndian
            c.origin = r.origin.rawValue
            c.kind = r.kind.rawValue
            c.action = r.action.rawValue
            c.cluster_id = r.cluster
            c.flags = r.flags.rawValue.littleEndian
            c.node_port_be = r.nodePort.bigEndian
            return c
        }
        // `rules` is a C array of BL_MAX_RULES structs (a tuple in Swift): filled by index, so
        // the header's count is the only one. More rules than that are refused before encoding
        // (ImageCapacity.check).
        withUnsafeMutableBytes(of: &c.rules) { raw in
            for (i, r) in f.rules.prefix(raw.count / MemoryLayout<bl_rule>.stride).enumerated() {
                raw.storeBytes(of: rule(r), toByteOffset: i * MemoryLayout<bl_rule>.stride, as: bl_rule.self)
            }
        }
        appendRaw(c, to: &out)
    }

    static func addrKey(_ a: IPAddress, _ out: inout [UInt8]) {
        var c = bl_addr_key()
        store(a, into: &c.addr)
        appendRaw(c, to: &out)
    }

    static func cidrKey(_ c: IPPrefix, _ out: inout [UInt8]) {
        var k = bl_cidr_key()
        k.prefixlen = UInt32(c.storedLength).littleEndian
        store(c.address, into: &k.addr)
        appendRaw(k, to: &out)
    }

    static func cidrValue(_ out: inout [UInt8]) {
        var v = bl_cidr_value()
        v.flags = UInt32(BL_CIDR_REJECT.rawValue).littleEndian
        appendRaw(v, to: &out)
    }

    static func rangeKey(_ r: SourceRange, _ out: inout [UInt8]) {
        var k = bl_range_key()
        k.prefixlen = UInt32(32 + r.prefix.storedLength).littleEndian
        k.owner_id = r.ownerID.littleEndian
        store(r.prefix.address, into: &k.addr)
        appendRaw(k, to: &out)
    }

    static func rangeValue(_ out: inout [UInt8]) {
        appendRaw(bl_range_value(), to: &out)
    }

    static func vipValue(_ v: VIP, _ out: inout [UInt8]) {
        var c = bl_vip_value()
        c.service_id = v.serviceID.littleEndian
        c.flags = v.flags.rawValue.littleEndian
        c.cluster_id = v.cluster
        appendRaw(c, to: &out)
    }

    static func nodeAddrValue(_ v: NodeAddress, _ out: inout [UInt8]) {
        var c = bl_node_addr_value()
        c.node_id = v.nodeID.littleEndian
        c.cluster_id = v.cluster
        appendRaw(c, to: &out)
    }

    static func idKey(_ id: UInt32, _ out: inout [UInt8]) {
        var c = bl_id_key()
        c.id = id.littleEndian
        appendRaw(c, to: &out)
    }

    static func nodeValue(_ n: ImageNode, _ out: inout [UInt8]) {
        var c = bl_node_value()
        c.zone_id = n.zoneID.littleEndian
        c.flags = n.flags.rawValue.littleEndian
        if let v4 = n.ipv4 {
            let b = v4.ipv4Bytes
            c.addr4 = (b[0], b[1], b[2], b[3])
        }
        if let v6 = n.ipv6 { store(v6, into: &c.addr6) }
        appendRaw(c, to: &out)
    }

    static func setKey(_ k: SetKey, _ out: inout [UInt8]) {
        var c = bl_set_key()
        c.fill(k)
        appendRaw(c, to: &out)
    }

    static func setValue(_ s: BackendSet, _ out: inout [UInt8]) {
        var c = bl_set_value()
        c.count = UInt32(s.backends.count).littleEndian
        c.flags = s.flags.rawValue.littleEndian
        appendRaw(c, to: &out)
    }

    static func slotKey(_ k: SetKey, index: UInt32, _ out: inout [UInt8]) {
        var c = bl_slot_key()
        c.fill(k)
        c.index = index.littleEndian
        appendRaw(c, to: &out)
    }

    static func slotValue(backendID: UInt32, _ out: inout [UInt8]) {
        var c = bl_slot_value()
        c.backend_id = backendID.littleEndian
        appendRaw(c, to: &out)
    }

    static func memberKey(_ k: SetKey, backendID: UInt32, _ out: inout [UInt8]) {
        var c = bl_member_key()
        c.fill(k)
        c.backend_id = backendID.littleEndian
        appendRaw(c, to: &out)
    }

    static func memberValue(index: UInt32, _ out: inout [UInt8]) {
        var c = bl_member_value()
        c.index = index.littleEndian
        appendRaw(c, to: &out)
    }

    static func backendValue(_ b: Backend, _ out: inout [UInt8]) {
        var c = bl_backend_value()
        store(b.address.address, into: &c.addr)
        c.port_be = b.address.port.bigEndian
        c.proto = b.proto.rawValue
        c.cluster_id = b.cluster
        c.node_id = b.nodeID.littleEndian
        appendRaw(c, to: &out)
    }
}

// MARK: - Decoding (bytes → raw fields; validation happens in ImageDecoder)

struct RawFrontend {
    var address: IPAddress
    var port: UInt16
    var proto: UInt8
    var cluster: UInt8
    var id: UInt32
    var ruleCount: UInt8
    var valuePad: [UInt8]
    var rules: [RawRule]
}

struct RawRule {
    var groupID, ownerID, affinityTimeout, rateLimit: UInt32
    var origin, kind, action, cluster: UInt8
    var flags: UInt16
    var nodePort: UInt16
}

enum RecordDecoder {
    static func frontend(_ bytes: [UInt8], key k: Int, value v: Int) -> RawFrontend {
        let key = loadRaw(bl_frontend_key.self, bytes, k)
        let value = loadRaw(bl_frontend_value.self, bytes, v)
        func rule(_ r: bl_rule) -> RawRule {
            RawRule(groupID: UInt32(littleEndian: r.group_id), ownerID: UInt32(littleEndian: r.owner_id),
                    affinityTimeout: UInt32(littleEndian: r.affinity_timeout), rateLimit: UInt32(littleEndian: r.rate_limit),
                    origin: r.origin, kind: r.kind, action: r.action, cluster: r.cluster_id,
                    flags: UInt16(littleEndian: r.flags), nodePort: UInt16(bigEndian: r.node_port_be))
        }
        return RawFrontend(address: loadAddress(key.addr), port: UInt16(bigEndian: key.port_be), proto: key.proto, cluster: key.cluster_id,
                           id: UInt32(littleEndian: value.frontend_id), ruleCount: value.rule_count,
                           valuePad: rawBytes(value.pad),
                           rules: loadArray(bl_rule.self, value.rules).map(rule))
    }

    static func addrKey(_ bytes: [UInt8], _ o: Int) -> IPAddress {
        loadAddress(loadRaw(bl_addr_key.self, bytes, o).addr)
    }

    static func cidrKey(_ bytes: [UInt8], _ o: Int) -> (storedLength: UInt32, address: IPAddress) {
        let c = loadRaw(bl_cidr_key.self, bytes, o)
        return (UInt32(littleEndian: c.prefixlen), loadAddress(c.addr))
    }

    static func cidrValue(_ bytes: [UInt8], _ o: Int) -> UInt32 {
        UInt32(littleEndian: loadRaw(bl_cidr_value.self, bytes, o).flags)
    }

    static func rangeKey(_ bytes: [UInt8], _ o: Int) -> (storedLength: UInt32, ownerID: UInt32, address: IPAddress) {
        let c = loadRaw(bl_range_key.self, bytes, o)
        return (UInt32(littleEndian: c.prefixlen), UInt32(littleEndian: c.owner_id), loadAddress(c.addr))
    }

    static func rangeValue(_ bytes: [UInt8], _ o: Int) -> UInt32 {
        UInt32(littleEndian: loadRaw(bl_range_value.self, bytes, o).flags)
    }

    static func vipValue(_ bytes: [UInt8], _ o: Int) -> (serviceID: UInt32, flags: UInt16, cluster: UInt8, pad: UInt8) {
        let c = loadRaw(bl_vip_value.self, bytes, o)
        return (UInt32(littleEndian: c.service_id), UInt16(littleEndian: c.flags), c.cluster_id, c.pad)
    }

    static func nodeAddrValue(_ bytes: [UInt8], _ o: Int) -> (nodeID: UInt32, cluster: UInt8, pad: [UInt8]) {
        let c = loadRaw(bl_node_addr_value.self, bytes, o)
        return (UInt32(littleEndian: c.node_id), c.cluster_id, rawBytes(c.pad))
    }

    static func idKey(_ bytes: [UInt8], _ o: Int) -> UInt32 {
        UInt32(littleEndian: loadRaw(bl_id_key.self, bytes, o).id)
    }

    static func nodeValue(_ bytes: [UInt8], _ o: Int) -> (zoneID: UInt32, flags: UInt32, addr4: [UInt8], addr6: IPAddress) {
        let c = loadRaw(bl_node_value.self, bytes, o)
        return (UInt32(littleEndian: c.zone_id), UInt32(littleEndian: c.flags), rawBytes(c.addr4), loadAddress(c.addr6))
    }

    static func setKey(_ bytes: [UInt8], _ o: Int) -> (groupID: UInt32, scopeID: UInt32, scope: UInt8, pad: [UInt8]) {
        let c = loadRaw(bl_set_key.self, bytes, o)
        return (c.groupID, c.scopeID, c.scope, rawBytes(c.pad))
    }

    static func setValue(_ bytes: [UInt8], _ o: Int) -> (count: UInt32, flags: UInt32) {
        let c = loadRaw(bl_set_value.self, bytes, o)
        return (UInt32(littleEndian: c.count), UInt32(littleEndian: c.flags))
    }

    static func slotKey(_ bytes: [UInt8], _ o: Int) -> (groupID: UInt32, scopeID: UInt32, scope: UInt8, pad: [UInt8], index: UInt32) {
        let c = loadRaw(bl_slot_key.self, bytes, o)
        return (c.groupID, c.scopeID, c.scope, rawBytes(c.pad), UInt32(littleEndian: c.index))
    }

    static func slotValue(_ bytes: [UInt8], _ o: Int) -> UInt32 {
        UInt32(littleEndian: loadRaw(bl_slot_value.self, bytes, o).backend_id)
    }

    static func memberKey(_ bytes: [UInt8], _ o: Int) -> (groupID: UInt32, scopeID: UInt32, scope: UInt8, pad: [UInt8], backendID: UInt32) {
        let c = loadRaw(bl_member_key.self, bytes, o)
        return (c.groupID, c.scopeID, c.scope, rawBytes(c.pad), UInt32(littleEndian: c.backend_id))
    }

    static func memberValue(_ bytes: [UInt8], _ o: Int) -> UInt32 {
        UInt32(littleEndian: loadRaw(bl_member_value.self, bytes, o).index)
    }

    static func backendValue(_ bytes: [UInt8], _ o: Int) -> (address: IPAddress, port: UInt16, proto: UInt8, cluster: UInt8, nodeID: UInt32) {
        let c = loadRaw(bl_backend_value.self, bytes, o)
        return (loadAddress(c.addr), UInt16(bigEndian: c.port_be), c.proto, c.cluster_id, UInt32(littleEndian: c.node_id))
    }
}
