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
