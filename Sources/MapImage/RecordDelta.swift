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

/// One table's records as a dictionary, key bytes → value bytes.
public typealias RecordTable = [[UInt8]: [UInt8]]

/// The records an image holds for values of the model, as bytes: what an incremental compile
/// compares and writes. The encoder (ImageEncoder) and these produce the same bytes, because both
/// go through RecordEncoder.
public enum ImageRecords {
    public static func frontend(_ f: Frontend) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.frontendKey(f.key, &k)
        RecordEncoder.frontendValue(f, &v)
        return (k, v)
    }

    public static func backend(_ b: Backend) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.idKey(b.id, &k)
        RecordEncoder.backendValue(b, &v)
        return (k, v)
    }

    /// A set's records: its `sets` entry, a slot per index and a member per backend.
    public static func set(_ s: BackendSet, into tables: inout [ImageTable: RecordTable]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.setKey(s.key, &k)
        RecordEncoder.setValue(s, &v)
        tables[.sets, default: [:]][k] = v
        for (i, b) in s.backends.enumerated() {
            k.removeAll(keepingCapacity: true)
            v.removeAll(keepingCapacity: true)
            RecordEncoder.slotKey(s.key, index: UInt32(i), &k)
            RecordEncoder.slotValue(backendID: b, &v)
            tables[.slots, default: [:]][k] = v
            k.removeAll(keepingCapacity: true)
            v.removeAll(keepingCapacity: true)
            RecordEncoder.memberKey(s.key, backendID: b, &k)
            RecordEncoder.memberValue(index: UInt32(i), &v)
            tables[.members, default: [:]][k] = v
        }
    }

    /// An image's eight tables as dictionaries (checks and tests; the layout is verified).
    public static func tables(of bytes: [UInt8]) throws(ImageError) -> [ImageTable: RecordTable] {
        let header = try ImageDecoder.decodeLayout(bytes)
        var out: [ImageTable: RecordTable] = [:]
        for t in ImageTable.allCases { out[t] = [:] }
        for section in header.sections {
            guard let table = ImageTable(rawValue: section.kind) else { continue }
            var records: RecordTable = [:]
            records.reserveCapacity(section.count)
            let stride = section.keySize + section.valueSize
            for i in 0..<section.count {
                let at = section.offset + i * stride
                records[Array(bytes[at..<(at + section.keySize)])] = Array(bytes[(at + section.keySize)..<(at + stride)])
            }
            out[table] = records
        }
        return out
    }

    /// What must be written to turn `old` into `new`, table by table.
    public static func delta(from old: [ImageTable: RecordTable], to new: [ImageTable: RecordTable]) -> RecordDelta {
        var d = RecordDelta()
        for table in ImageTable.allCases {
            let o = old[table] ?? [:], n = new[table] ?? [:]
            for (k, v) in n where o[k] != v { d.set(table, key: k, value: v) }
            for k in o.keys where n[k] == nil { d.set(table, key: k, value: nil) }
        }
        return d
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
