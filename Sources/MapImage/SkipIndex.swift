/// skipRedirectFromBackend on one node: (policy id, backend address) of every rule that skips
/// its own backends, over that rule's local set on the node; and what those targets depend on,
/// so that a delta that cannot change them is recognised without a scan.
public struct SkipIndex: Sendable {
    public var targets: [(owner: UInt32, address: IPAddress)] = []
    /// Groups of rules that skip their backends.
    var groups = Set<UInt32>()
    /// Backends of those groups' local sets on the node.
    var backendIDs = Set<UInt32>()
    public let nodeID: UInt32

    /// `each(table, body)` hands every record of `table` to `body` as (bytes, key offset, value
    /// offset).
    public static func compute(nodeID: UInt32, each: (ImageTable, ([UInt8], Int, Int) -> Void) -> Void) -> SkipIndex {
        var index = SkipIndex(nodeID: nodeID)
        guard nodeID != 0 else { return index }
        var owners: [UInt32: Set<UInt32>] = [:]  // group → policy ids
        each(.frontends) { bytes, k, v in
            let f = RecordDecoder.frontend(bytes, key: k, value: v)
            for r in f.rules.prefix(Int(f.ruleCount)) where RuleFlags(rawValue: r.flags).contains(.skipFromBackend) {
                owners[r.groupID, default: []].insert(r.ownerID)
            }
        }
        index.groups = Set(owners.keys)
        guard !owners.isEmpty else { return index }
        var backendIDs: [UInt32: [UInt32]] = [:]  // group → backend ids of its local set here
        each(.slots) { bytes, k, v in
            let key = RecordDecoder.slotKey(bytes, k)
            guard key.scope == SetScope.local.rawValue, key.scopeID == nodeID, owners[key.groupID] != nil else { return }
            backendIDs[key.groupID, default: []].append(RecordDecoder.slotValue(bytes, v))
        }
        var addresses: [UInt32: IPAddress] = [:]
        let wanted = Set(backendIDs.values.joined())
        index.backendIDs = wanted
        each(.backends) { bytes, k, v in
            let id = RecordDecoder.idKey(bytes, k)
            if wanted.contains(id) { addresses[id] = RecordDecoder.backendValue(bytes, v).address }
        }
        for (group, ids) in backendIDs.sorted(by: { $0.key < $1.key }) {
            for owner in (owners[group] ?? []).sorted() {
                for id in ids { if let a = addresses[id] { index.targets.append((owner, a)) } }
            }
        }
        return index
    }

    /// The targets of a state's tables.
    public static func compute(nodeID: UInt32, state: RecordState) -> SkipIndex {
        compute(nodeID: nodeID) { table, body in state.forEach(table, body) }
    }

    /// Whether applying `delta` to `state` (which these targets were computed from) may change
    /// them: a frontend record with a skipping rule before or after, a slot of a skipping group's
    /// local set on this node, or one of their backends.
    public func affected(by delta: RecordDelta, in state: RecordState) -> Bool {
        guard nodeID != 0 else { return false }
        func skips(_ key: [UInt8], _ value: [UInt8]?) -> Bool {
            guard let value, value.count == ABI.valueSize(.frontends), key.count == ABI.keySize(.frontends) else { return false }
            let f = RecordDecoder.frontend(key + value, key: 0, value: key.count)
            return f.rules.prefix(Int(f.ruleCount)).contains { RuleFlags(rawValue: $0.flags).contains(.skipFromBackend) }
        }
        for (key, value) in delta.changes[.frontends] ?? [:] {
            if skips(key, value) || skips(key, state.value(.frontends, key: key)) { return true }
        }
        guard !groups.isEmpty else { return false }
        for key in (delta.changes[.slots] ?? [:]).keys where key.count == ABI.keySize(.slots) {
            let k = RecordDecoder.slotKey(key, 0)
            if k.scope == SetScope.local.rawValue && k.scopeID == nodeID && groups.contains(k.groupID) { return true }
        }
        for key in (delta.changes[.backends] ?? [:]).keys where key.count == ABI.keySize(.backends) {
            if backendIDs.contains(RecordDecoder.idKey(key, 0)) { return true }
        }
        return false
    }
}
extension VerifiedImage {
    /// For skipRedirectFromBackend: (policy id, backend address) of every rule that skips its own
    /// backends, over that rule's local set on node `nodeID`. Read from the record sections
    /// directly (the image is verified), so a loader need not build the model.
    public func skipTargets(nodeID: UInt32) -> [(owner: UInt32, address: IPAddress)] {
        SkipIndex.compute(nodeID: nodeID) { t, body in
            let view = ImageTableView(header: header, bytes: bytes, table: t)
            for i in 0..<view.count { body(bytes, view.keyOffset(i), view.valueOffset(i)) }
        }.targets
    }
}

