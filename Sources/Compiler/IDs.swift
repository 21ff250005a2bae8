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

    /// `assign` for identities already unique and in an array: ids by position, no dictionaries.
    static func assignDense<Identity: Comparable>(_ identities: [Identity], hash: (Identity) -> UInt32) -> [UInt32] {
        let order = identities.indices.sorted { identities[$0] < identities[$1] }
        var used = Set<UInt32>(minimumCapacity: identities.count)
        var ids = [UInt32](repeating: 0, count: identities.count)
        for i in order {
            var id = hash(identities[i])
            while id == 0 || !used.insert(id).inserted { id = id &+ 1 }
            ids[i] = id
        }
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
