/// Changes to an image's tables, record by record: what an incremental compile emits, and what the
/// loader writes into a generation instead of refilling it. Keys and values are the records' bytes
/// exactly as an image holds them (ABIRecords.swift), so a delta applied to an image's tables gives
/// the tables of the image a full compile would write.
public struct RecordDelta: Sendable, Equatable {
    /// Per table: key bytes → the record's new value bytes, or nil when the record is deleted.
    public private(set) var changes: [ImageTable: [[UInt8]: [UInt8]?]] = [:]

    public init() {}

    public var isEmpty: Bool { changes.values.allSatisfy(\.isEmpty) }

    /// Records written or deleted, over all tables.
    public var count: Int { changes.values.reduce(0) { $0 + $1.count } }

    /// Records this delta writes (`value` non-nil) or deletes (nil).
    public mutating func set(_ table: ImageTable, key: [UInt8], value: [UInt8]?) {
        changes[table, default: [:]].updateValue(value, forKey: key)
    }

    /// `other` applied after this one: where both touch a key, `other` wins.
    public mutating func merge(_ other: RecordDelta) {
        for (table, records) in other.changes {
            changes[table, default: [:]].merge(records) { _, new in new }
        }
    }

    /// Records written and deleted per table (for logs and reports).
    public var summary: [String: (written: Int, deleted: Int)] {
        var out: [String: (written: Int, deleted: Int)] = [:]
        for (table, records) in changes where !records.isEmpty {
            let deleted = records.values.reduce(0) { $0 + ($1 == nil ? 1 : 0) }
            out[table.description] = (records.count - deleted, deleted)
        }
        return out
    }
}

extension RecordDelta {
    /// What changes from `old` to `new`, table by table: a sorted merge of each section (both
    /// images' layouts decoded; keys in strict order, as verified images have them). Applied to
    /// `old`'s tables it gives `new`'s.
    public static func between(old: ImageHeader, _ oldBytes: [UInt8], new: ImageHeader, _ newBytes: [UInt8]) -> RecordDelta {
        perTable { table in
            mergeDifferences(ImageTableView(header: old, bytes: oldBytes, table: table),
                             ImageTableView(header: new, bytes: newBytes, table: table))
        }
    }

    /// The delta of `records(table)` for every table, computed side by side (tables are
    /// independent): (key, new value or nil) per changed record.
    static func perTable(_ records: @Sendable (ImageTable) -> [([UInt8], [UInt8]?)]) -> RecordDelta {
        let parts = concurrentMap(ImageTable.allCases.count) { records(ImageTable.allCases[$0]) }
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

extension RecordDelta {
    /// `tables` with this delta applied.
    public func applied(to tables: [ImageTable: RecordTable]) -> [ImageTable: RecordTable] {
        var out = tables
        for (table, records) in changes {
            for (k, v) in records { out[table, default: [:]][k] = v }
        }
        return out
    }
}
