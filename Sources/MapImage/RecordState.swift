#if canImport(Glibc)
import Glibc
#endif

// Record-level views of images for the loader's incremental path: one table of an image read in
// place (its records are sorted by key bytes, which the decoder checks), the records that change
// between two images (a sorted merge), and an image with a delta applied on top (what a
// generation holds after incremental loads). Nothing here knows of the kernel.

/// One table of an image, read in place. Needs only a header from `ImageDecoder.decodeLayout`
/// (every access stays inside the section); binary search also needs the strict key order
/// `ImageDecoder.verify` checks — on an unverified image it may miss a key, never crash.
public struct ImageTableView: Sendable {
    public let table: ImageTable
    public let keySize: Int
    public let valueSize: Int
    public let count: Int
    let offset: Int
    let bytes: [UInt8]

    public init(header: ImageHeader, bytes: [UInt8], table: ImageTable) {
        let s = header.sections.first { $0.kind == table.rawValue }
        self.table = table
        keySize = s?.keySize ?? ABI.keySize(table)
        valueSize = s?.valueSize ?? ABI.valueSize(table)
        count = s?.count ?? 0
        offset = s?.offset ?? 0
        self.bytes = bytes
    }

    var stride: Int { keySize + valueSize }
    func keyOffset(_ i: Int) -> Int { offset + i * stride }
    func valueOffset(_ i: Int) -> Int { offset + i * stride + keySize }

    public func key(at i: Int) -> [UInt8] { Array(bytes[keyOffset(i)..<(keyOffset(i) + keySize)]) }
    public func value(at i: Int) -> [UInt8] { Array(bytes[valueOffset(i)..<(valueOffset(i) + valueSize)]) }

    /// The section's bytes: `count` records of key then value, in key order.
    public var records: ArraySlice<UInt8> { bytes[offset..<(offset + count * stride)] }

    /// The index of the record with this key (binary search).
    public func index(of key: [UInt8]) -> Int? {
        guard key.count == keySize else { return nil }
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            let c = compareBytes(bytes, keyOffset(mid), key, 0, keySize)
            if c == 0 { return mid }
            if c < 0 { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    public func value(for key: [UInt8]) -> [UInt8]? { index(of: key).map { value(at: $0) } }

    /// Whether the record at `i` has exactly this value.
    func valueEquals(at i: Int, _ value: [UInt8]) -> Bool {
        value.count == valueSize && compareBytes(bytes, valueOffset(i), value, 0, valueSize) == 0
    }
}

/// memcmp of two byte ranges (sign only).
@inline(__always)
func compareBytes(_ a: [UInt8], _ ao: Int, _ b: [UInt8], _ bo: Int, _ n: Int) -> Int {
    a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in Int(memcmp(pa.baseAddress! + ao, pb.baseAddress! + bo, n)) }
    }
}

extension RecordDelta {
    /// What changes from `old` to `new`, table by table: a sorted merge of each section (both
    /// images' layouts decoded; keys in strict order, as verified images have them). Applied to
    /// `old`'s tables it gives `new`'s.
    public static func between(old: ImageHeader, _ oldBytes: [UInt8], new: ImageHeader, _ newBytes: [UInt8]) -> RecordDelta {
        let parts = concurrentMap(ImageTable.allCases.count) { i -> [([UInt8], [UInt8]?)] in
            let table = ImageTable.allCases[i]
            return mergeDifferences(ImageTableView(header: old, bytes: oldBytes, table: table),
                                    ImageTableView(header: new, bytes: newBytes, table: table))
        }
        var delta = RecordDelta()
        for (i, records) in parts.enumerated() {
            for (k, v) in records { delta.set(ImageTable.allCases[i], key: k, value: v) }
        }
        return delta
    }

    /// Records whose value differs between two sorted tables: (key, new value or nil).
    static func mergeDifferences(_ a: ImageTableView, _ b: ImageTableView) -> [([UInt8], [UInt8]?)] {
        guard a.keySize == b.keySize, a.valueSize == b.valueSize else { return [] }
        // Identical sections (the common case for most tables of a small change): one memcmp.
        if a.count == b.count, a.count == 0 || compareBytes(a.bytes, a.offset, b.bytes, b.offset, a.count * a.stride) == 0 {
            return []
        }
        var out: [([UInt8], [UInt8]?)] = []
        var i = 0, j = 0
        let n = a.keySize
        while i < a.count || j < b.count {
            if j == b.count {
                out.append((a.key(at: i), nil))
                i += 1
                continue
            }
            if i == a.count {
                out.append((b.key(at: j), b.value(at: j)))
                j += 1
                continue
            }
            let c = compareBytes(a.bytes, a.keyOffset(i), b.bytes, b.keyOffset(j), n)
            if c < 0 {
                out.append((a.key(at: i), nil))
                i += 1
            } else if c > 0 {
                out.append((b.key(at: j), b.value(at: j)))
                j += 1
            } else {
                if compareBytes(a.bytes, a.valueOffset(i), b.bytes, b.valueOffset(j), a.valueSize) != 0 {
                    out.append((b.key(at: j), b.value(at: j)))
                }
                i += 1
                j += 1
            }
        }
        return out
    }
}

/// An image's tables with a delta applied on top: what a generation holds after incremental
/// loads. `base` is an image (layout decoded and verified by the caller), `sinceBase` every
/// record changed since, merged (later changes win). Lookups go to `sinceBase` first, then by
/// binary search to the base image.
public struct RecordState: Sendable {
    public let baseHeader: ImageHeader
    public let baseBytes: [UInt8]
    public private(set) var sinceBase = RecordDelta()
    /// Records per table.
    public private(set) var counts: [ImageTable: Int] = [:]
    let views: [ImageTable: ImageTableView]

    public init(header: ImageHeader, bytes: [UInt8]) {
        baseHeader = header
        baseBytes = bytes
        var views: [ImageTable: ImageTableView] = [:]
        for t in ImageTable.allCases {
            let v = ImageTableView(header: header, bytes: bytes, table: t)
            views[t] = v
            counts[t] = v.count
        }
        self.views = views
    }

    public func view(_ table: ImageTable) -> ImageTableView { views[table] ?? ImageTableView(header: baseHeader, bytes: baseBytes, table: table) }

    /// The record's value, nil when the table has no such key.
    public func value(_ table: ImageTable, key: [UInt8]) -> [UInt8]? {
        if let changed = sinceBase.changes[table]?[key] { return changed }
        return view(table).value(for: key)
    }

    /// `delta` without what would not change anything here (a value written again, a delete of
    /// a key that is absent).
    public func effective(_ delta: RecordDelta) -> RecordDelta {
        var out = RecordDelta()
        for (table, records) in delta.changes {
            for (key, value) in records where self.value(table, key: key) != value {
                out.set(table, key: key, value: value)
            }
        }
        return out
    }

    /// Records per table once `delta` (effective, see `effective`) is applied.
    public func counts(after delta: RecordDelta) -> [ImageTable: Int] {
        var out = counts
        for (table, records) in delta.changes {
            for (key, value) in records {
                let present = self.value(table, key: key) != nil
                if present && value == nil { out[table, default: 0] -= 1 }
                if !present && value != nil { out[table, default: 0] += 1 }
            }
        }
        return out
    }

    /// Applies `delta` (later than everything applied so far).
    public mutating func apply(_ delta: RecordDelta) {
        counts = counts(after: delta)
        sinceBase.merge(delta)
    }

    /// What changes from this state to the image's tables: the base's sections merged against
    /// the image's, then every key changed since the base looked up in the image.
    public func delta(to header: ImageHeader, _ bytes: [UInt8]) -> RecordDelta {
        let parts = concurrentMap(ImageTable.allCases.count) { i -> [([UInt8], [UInt8]?)] in
            let table = ImageTable.allCases[i]
            let target = ImageTableView(header: header, bytes: bytes, table: table)
            var records: [[UInt8]: [UInt8]?] = [:]
            for (k, v) in RecordDelta.mergeDifferences(view(table), target) { records[k] = v }
            for (key, current) in sinceBase.changes[table] ?? [:] {
                let wanted = target.value(for: key)
                if wanted != current { records[key] = .some(wanted) } else { records.removeValue(forKey: key) }
            }
            return records.map { ($0.key, $0.value) }
        }
        var delta = RecordDelta()
        for (i, records) in parts.enumerated() {
            for (k, v) in records { delta.set(ImageTable.allCases[i], key: k, value: v) }
        }
        return delta
    }

    /// Whether this state holds exactly the image's tables, record for record.
    public func matches(_ header: ImageHeader, _ bytes: [UInt8]) -> Bool {
        for t in ImageTable.allCases where counts[t] != ImageTableView(header: header, bytes: bytes, table: t).count { return false }
        return delta(to: header, bytes).isEmpty
    }

    /// One table's records as an image section lays them out (key then value, `count` of them;
    /// the base's order, then the records added since): what a fresh map is filled with.
    public func records(_ table: ImageTable) -> [UInt8] {
        let v = view(table)
        let changed = sinceBase.changes[table] ?? [:]
        if changed.isEmpty { return Array(v.records) }
        var out: [UInt8] = []
        out.reserveCapacity((counts[table] ?? 0) * v.stride)
        for i in 0..<v.count {
            let k = v.key(at: i)
            if changed[k] != nil { continue }
            out.append(contentsOf: v.bytes[v.keyOffset(i)..<(v.keyOffset(i) + v.stride)])
        }
        for (k, value) in changed {
            guard let value else { continue }
            out.append(contentsOf: k)
            out.append(contentsOf: value)
        }
        return out
    }

    /// Visits every record of a table: (record bytes, key offset, value offset).
    func forEach(_ table: ImageTable, _ body: ([UInt8], Int, Int) -> Void) {
        let v = view(table)
        let changed = sinceBase.changes[table] ?? [:]
        for i in 0..<v.count {
            if !changed.isEmpty && changed[v.key(at: i)] != nil { continue }
            body(v.bytes, v.keyOffset(i), v.valueOffset(i))
        }
        for (k, value) in changed {
            guard let value else { continue }
            body(k + value, 0, k.count)
        }
    }
}

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

/// What a frontend record says, for labels (the watcher's counters).
public struct FrontendRecord: Sendable {
    public var key: FrontendKey
    public var id: UInt32
    public var groupIDs: [UInt32]

    /// nil when the bytes are not a frontend record of this ABI.
    public init?(key: [UInt8], value: [UInt8]) {
        guard key.count == ABI.keySize(.frontends), value.count == ABI.valueSize(.frontends) else { return nil }
        let f = RecordDecoder.frontend(key + value, key: 0, value: key.count)
        guard let proto = TransportProtocol(rawValue: f.proto) else { return nil }
        self.key = FrontendKey(address: f.address, port: f.port, proto: proto)
        id = f.id
        groupIDs = f.rules.prefix(Int(f.ruleCount)).map(\.groupID)
    }
}
