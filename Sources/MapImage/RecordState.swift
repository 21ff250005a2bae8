// An image with a delta applied on top (what a generation holds after incremental loads), for the
// loader's incremental path. Nothing here knows of the kernel.

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
        RecordDelta.perTable { table in
            let target = ImageTableView(header: header, bytes: bytes, table: table)
            var records: [[UInt8]: [UInt8]?] = [:]
            for (k, v) in RecordDelta.mergeDifferences(view(table), target) { records[k] = v }
            for (key, current) in sinceBase.changes[table] ?? [:] {
                let wanted = target.value(for: key)
                if wanted != current { records[key] = .some(wanted) } else { records.removeValue(forKey: key) }
            }
            return records.map { ($0.key, $0.value) }
        }
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
