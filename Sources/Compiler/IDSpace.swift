/// The ids of one kind of identity as a full compile's dense rule placed them (StableID), kept so
/// that an identity can come or go without a full compile, and the answer is still the full
/// compile's.
///
/// The dense rule visits identities in order of hash and gives each its hash, or the value after
/// the previous id when that is not above it. So a new identity takes its hash exactly when no id
/// is its hash and no identity was displaced over it; and a removed identity's id can be freed
/// exactly when no identity was displaced over that id (it would have taken it). Anything else
/// renumbers others: only a full compile gives those ids, and the callers then ask for one.
struct IDSpace<Identity: Hashable & Sendable>: Sendable {
    private(set) var ids: [Identity: UInt32] = [:]
    /// The ids given (what another kind's placement must not take: policy groups avoid service
    /// groups'), kept rather than gathered from `ids` for every policy compile.
    private(set) var used: Set<UInt32> = []
    private var owner: [UInt32: Identity] = [:]
    /// Identities whose id is not their hash: [from, to] is the range their placement passed over.
    private var displaced: [Identity: (from: UInt32, to: UInt32)] = [:]

    /// Nil when an id is below its hash (ids wrapped around the 32-bit space): not followed.
    /// `explicit`: ids given by annotation, which are nobody's hash.
    init?(_ placed: some Sequence<(Identity, UInt32)>, explicit: Set<Identity> = [], hash: (Identity) -> UInt32) {
        for (identity, id) in placed {
            ids[identity] = id
            owner[id] = identity
            used.insert(id)
            guard !explicit.contains(identity) else { continue }
            let h = max(hash(identity), 1)
            if id < h { return nil }
            if id != h { displaced[identity] = (h, id) }
        }
    }

    subscript(_ identity: Identity) -> UInt32? { ids[identity] }

    /// The id a new identity gets; nil when only a full compile knows it.
    mutating func add(_ identity: Identity, hash: UInt32) -> UInt32? {
        if let id = ids[identity] { return id }
        let h = max(hash, 1)
        guard owner[h] == nil, !displaced.values.contains(where: { $0.from <= h && h <= $0.to }) else { return nil }
        ids[identity] = h
        owner[h] = identity
        used.insert(h)
        return h
    }

    /// Frees an identity's id; false when another id was placed past it (a full compile would
    /// renumber that one).
    mutating func remove(_ identity: Identity) -> Bool {
        guard let id = ids[identity] else { return true }
        if displaced.contains(where: { $0.key != identity && $0.value.from <= id && id < $0.value.to }) { return false }
        ids[identity] = nil
        owner[id] = nil
        used.remove(id)
        displaced[identity] = nil
        return true
    }
}
