import Manifests
import MapImage

/// Stable ids: derived from an object's identity (a name, an address), so an unrelated change does
/// not renumber the image and runtime state keyed by ids survives recompiles.
///
/// The id is FNV-1a-64 of the identity bytes folded to 32 bits (0 is reserved). Collisions are
/// settled deterministically: explicit ids (annotations) are placed first; then identities in
/// sorted order take their hash, or the next free value after it. So an id changes only when a
/// collision involves that identity.
enum StableID {
    static func hash(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        let folded = UInt32(truncatingIfNeeded: h) ^ UInt32(truncatingIfNeeded: h >> 32)
        return folded == 0 ? 1 : folded
    }

    static func hash(_ s: String) -> UInt32 { hash(s.utf8) }

    /// The hash of the parts' concatenation, without building it.
    static func hash(parts: String...) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for b in part.utf8 {
                h ^= UInt64(b)
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        let folded = UInt32(truncatingIfNeeded: h) ^ UInt32(truncatingIfNeeded: h >> 32)
        return folded == 0 ? 1 : folded
    }

    /// Ids by position, for identities with precomputed hashes: explicit ids first (in identity
    /// order; an explicit id asked for twice stays with the first, the other is reported through
    /// `conflict` and derived), then the others in order of hash, then identity, by the dense
    /// rule, never taking an explicit id or one of `reserved` (ids another kind already has).
    static func assignPositions<Identity: Comparable>(
        _ identities: [Identity], hashes: [UInt32], explicit: [Int: UInt32], reserved: Set<UInt32> = [],
        conflict: (Int, Int, UInt32) -> Void = { _, _, _ in }
    ) -> [UInt32] {
        var ids = [UInt32](repeating: 0, count: identities.count)
        var owner: [UInt32: Int] = [:]
        for i in explicit.keys.sorted(by: { identities[$0] < identities[$1] }) {
            guard let id = explicit[i], id != 0 else { continue }
            if let first = owner[id] { conflict(first, i, id); continue }
            owner[id] = i
            ids[i] = id
        }
        var packed = [UInt64]()
        packed.reserveCapacity(identities.count)
        for i in identities.indices where ids[i] == 0 { packed.append(UInt64(hashes[i]) << 32 | UInt64(i)) }
        packed.sort()
        var order = packed.map { Int($0 & 0xFFFF_FFFF) }
        var runStart = 0
        for k in stride(from: 1, through: order.count, by: 1) where k == order.count || hashes[order[k]] != hashes[order[runStart]] {
            if k - runStart > 1 { order[runStart..<k].sort { identities[$0] < identities[$1] } }
            runStart = k
        }
        var allocator = DenseIDAllocator(reserved: Set(owner.keys).union(reserved))
        for i in order { ids[i] = allocator.next(hashes[i]) }
        return ids
    }

    /// FNV-1a over the big-endian bytes of the words, without building a byte array.
    static func hash(words: UInt64...) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for w in words {
            for shift in stride(from: 56, through: 0, by: -8) {
                h ^= (w >> UInt64(shift)) & 0xFF
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        let folded = UInt32(truncatingIfNeeded: h) ^ UInt32(truncatingIfNeeded: h >> 32)
        return folded == 0 ? 1 : folded
    }

    /// `assign` for many identities already unique and in an array (backends): ids by position.
    /// Identities are placed in order of hash, then identity, so only colliding identities are
    /// ever compared; the result is as deterministic as `assign`'s, and an id still changes only
    /// when a collision involves its identity.
    static func assignDense<Identity: Comparable>(_ identities: [Identity], hash: (Identity) -> UInt32) -> [UInt32] {
        if identities.isEmpty { return [] }
        let hashes = identities.map(hash)
        // Sort (hash, position) packed in one word; then order runs of equal hashes by identity.
        var packed = hashes.enumerated().map { UInt64($0.element) << 32 | UInt64($0.offset) }
        packed.sort()
        var order = packed.map { Int32(truncatingIfNeeded: $0 & 0xFFFF_FFFF) }
        var runStart = 0
        for k in 1...order.count {
            if k == order.count || packed[k] >> 32 != packed[runStart] >> 32 {
                if k - runStart > 1 {
                    order[runStart..<k].sort { identities[Int($0)] < identities[Int($1)] }
                }
                runStart = k
            }
        }
        var ids = [UInt32](repeating: 0, count: identities.count)
        var allocator = DenseIDAllocator()
        for i in order { ids[Int(i)] = allocator.next(hashes[Int(i)]) }
        return ids
    }

    /// Assigns ids to `identities`. `explicit` ids are honoured first; two identities asking for
    /// the same explicit id are reported through `conflict` (the first in sorted order keeps it,
    /// the other gets a derived id).
    static func assign<Identity: Hashable & Comparable>(
        _ identities: [Identity],
        explicit: [Identity: UInt32] = [:],
        hash: (Identity) -> UInt32,
        conflict: (Identity, Identity, UInt32) -> Void = { _, _, _ in }
    ) -> [Identity: UInt32] {
        var ids: [Identity: UInt32] = [:]
        ids.reserveCapacity(identities.count)
        var owner: [UInt32: Identity] = [:]
        owner.reserveCapacity(identities.count)
        let sorted = identities.sorted()
        for identity in sorted {
            guard let id = explicit[identity], id != 0 else { continue }
            if let other = owner[id] {
                conflict(other, identity, id)
                continue
            }
            owner[id] = identity
            ids[identity] = id
        }
        for identity in sorted where ids[identity] == nil {
            var id = hash(identity)
            while id == 0 || owner[id] != nil { id = id &+ 1 }
            owner[id] = identity
            ids[identity] = id
        }
        return ids
    }
}

/// The dense collision rule, for identities visited in order of hash then identity: take the
/// hash when it is above every id handed out so far, else the value after the largest; step over
/// reserved (explicit) ids. Ids only grow, so no set of used values is needed — except after
/// wrapping past UInt32.max, which then probes for a free value.
struct DenseIDAllocator {
    private var last: UInt32 = 0
    private var assigned: [UInt32] = []
    private var taken: Set<UInt32>?  // set once ids have wrapped
    /// Ids given out elsewhere (explicit ones) that this allocator must step over.
    private let reserved: Set<UInt32>

    init(reserved: Set<UInt32> = []) {
        self.reserved = reserved
    }

    mutating func next(_ hash: UInt32) -> UInt32 {
        let h = max(hash, 1)
        if taken == nil {
            var id = h > last ? h : (last < UInt32.max ? last + 1 : 0)
            while id != 0 && reserved.contains(id) { id = id < UInt32.max ? id + 1 : 0 }
            if id != 0 {
                assigned.append(id)
                last = id
                return id
            }
            taken = Set(assigned).union(reserved)
        }
        var set = taken ?? []
        var id = h
        while id == 0 || set.contains(id) { id = id &+ 1 }
        set.insert(id)
        taken = set
        return id
    }
}

extension FrontendKey {
    /// The hash its id derives from.
    var stableHash: UInt32 { StableID.hash(words: address.high, address.low, UInt64(port) << 8 | UInt64(proto.rawValue)) }
}

extension SetKey {
    /// The key of a set whose scope is named: a zone's or a node's set takes that zone's or node's
    /// id, the cluster set 0. Full and incremental compiles both key sets here, so their records
    /// cannot disagree.
    init(groupID: UInt32, scope: SetScope, scopeName: String, zoneIDs: [String: UInt32], nodeIDs: [String: UInt32]) {
        let scopeID: UInt32
        switch scope {
        case .cluster, .serving: scopeID = 0
        case .zone: scopeID = zoneIDs[scopeName] ?? 0
        case .node, .local, .gate: scopeID = nodeIDs[scopeName] ?? 0
        case .inCluster, .outOfCluster: scopeID = UInt32(scopeName) ?? 0
        }
        self.init(groupID: groupID, scope: scope, scopeID: scopeID)
    }
}
