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
/// hash when it is above every id handed out so far, else the value after the largest. Ids only
/// grow, so no set of used values is needed — except after wrapping past UInt32.max, which then
/// probes for a free value.
struct DenseIDAllocator {
    private var last: UInt32 = 0
    private var assigned: [UInt32] = []
    private var wrapped: Set<UInt32>?

    mutating func next(_ hash: UInt32) -> UInt32 {
        let h = max(hash, 1)
        var id: UInt32
        if var taken = wrapped {
            id = h
            while id == 0 || taken.contains(id) { id = id &+ 1 }
            taken.insert(id)
            wrapped = taken
        } else if h > last {
            id = h
        } else if last < UInt32.max {
            id = last + 1
        } else {
            var taken = Set(assigned)
            id = h
            while id == 0 || taken.contains(id) { id = id &+ 1 }
            taken.insert(id)
            wrapped = taken
        }
        if wrapped == nil { assigned.append(id) }
        last = max(last, id)
        return id
    }
}
