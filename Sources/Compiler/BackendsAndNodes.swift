import Manifests
import MapImage

/// A backend's identity: address, port and protocol, and its cluster in a multi-cluster image
/// (two clusters may both have 10.244.1.5:8080, two different pods).
struct BackendIdentity: Hashable, Comparable {
    var address: SocketAddress
    var proto: TransportProtocol
    var cluster: UInt8 = 0

    /// One word into the hasher instead of four: this type is hashed once per endpoint.
    func hash(into h: inout Hasher) {
        let tail: UInt64 = UInt64(cluster) << 24 | UInt64(address.port) << 8 | UInt64(proto.rawValue)
        let low: UInt64 = address.address.low
        let mixed: UInt64 = address.address.high ^ (low << 17 | low >> 47) ^ (tail << 41)
        h.combine(mixed)
    }

    /// Dictionaries call this instead of `hash(into:)`: a multiply-xorshift mix of the fields and
    /// the seed, much cheaper than a full SipHash round for a type hashed once per endpoint.
    func _rawHashValue(seed: Int) -> Int {
        let tail: UInt64 = UInt64(cluster) << 24 | UInt64(address.port) << 8 | UInt64(proto.rawValue)
        var x: UInt64 = address.address.high &* 0x9E37_79B9_7F4A_7C15
        x ^= address.address.low &+ UInt64(bitPattern: Int64(seed))
        x = (x ^ (x >> 29)) &* 0xBF58_476D_1CE4_E5B9
        x ^= tail &* 0x94D0_49BB_1331_11EB
        x ^= x >> 32
        return Int(bitPattern: UInt(truncatingIfNeeded: x))
    }

    static func == (a: BackendIdentity, b: BackendIdentity) -> Bool {
        a.address == b.address && a.proto == b.proto && a.cluster == b.cluster
    }

    static func < (a: BackendIdentity, b: BackendIdentity) -> Bool {
        (a.address, a.proto, a.cluster) < (b.address, b.proto, b.cluster)
    }

    /// Cluster 0 hashes as before clusters existed, so single-cluster images keep their ids.
    var stableHash: UInt32 {
        cluster == 0
            ? StableID.hash(words: address.address.high, address.address.low, UInt64(address.port) << 8 | UInt64(proto.rawValue))
            : StableID.hash(words: address.address.high, address.address.low, UInt64(address.port) << 8 | UInt64(proto.rawValue),
                            UInt64(cluster))
    }
}

/// Nodes known to the image: Node objects, plus names that endpoints or hints mention (a node
/// can load the image before its Node object is in the snapshot).
struct NodeCatalogue {
    struct Entry {
        var name: String
        var zone: String?
        var addresses: [NodeAddressEntry]
        var fromObject: Bool
        var explicitID: UInt32?
    }

    var entries: [String: Entry] = [:]
    var ownerOfAddress: [IPAddress: String] = [:]

    init(snapshot: Snapshot, diagnostics: inout [Diagnostic]) {
        for n in snapshot.nodes.sorted(by: { $0.meta.name < $1.meta.name }) {
            let zone = Self.zone(n)
            var explicit: UInt32?
            if let s = n.meta.annotations["balancing.elf.io/nodeId"] {
                if let v = UInt32(s), v != 0 {
                    explicit = v
                } else {
                    diagnostics.append(Diagnostic(.warning, file: n.source.file, line: n.source.line, column: n.source.column,
                                                  object: "Node \(n.meta.name)", field: "metadata.annotations",
                                                  message: "balancing.elf.io/nodeId \(shown(s)) is not a non-zero 32-bit number; a derived id is used"))
                }
            }
            entries[n.meta.name] = Entry(name: n.meta.name, zone: zone, addresses: n.addresses, fromObject: true, explicitID: explicit)
            for a in n.addresses {
                if let other = ownerOfAddress[a.address], other != n.meta.name {
                    diagnostics.append(Diagnostic(.warning, file: n.source.file, line: n.source.line, column: n.source.column,
                                                  object: "Node \(n.meta.name)", field: "status.addresses",
                                                  message: "address \(a.address) is also an address of Node \(other), which keeps it"))
                    continue
                }
                ownerOfAddress[a.address] = n.meta.name
            }
        }
    }

    var zoneNames: Set<String> { Set(entries.values.compactMap(\.zone)) }

    static func zone(_ n: Node) -> String? {
        n.meta.labels["topology.kubernetes.io/zone"] ?? n.meta.labels["failure-domain.beta.kubernetes.io/zone"]
    }
}

extension NodeCatalogue.Entry {
    /// Its record: the first InternalIP of each family, else the first address of it.
    func imageNode(id: UInt32, zoneIDs: [String: UInt32]) -> ImageNode {
        let v4 = addresses.first { $0.type == "InternalIP" && $0.address.isIPv4 } ?? addresses.first { $0.address.isIPv4 }
        let v6 = addresses.first { $0.type == "InternalIP" && !$0.address.isIPv4 } ?? addresses.first { !$0.address.isIPv4 }
        return ImageNode(id: id, zoneID: zone.flatMap { zoneIDs[$0] } ?? 0, flags: fromObject ? .fromObject : [], ipv4: v4?.address, ipv6: v6?.address)
    }
}
