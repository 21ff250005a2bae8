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

    public static func vip(_ v: VIP) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v2: [UInt8] = []
        RecordEncoder.addrKey(v.address, &k)
        RecordEncoder.vipValue(v, &v2)
        return (k, v2)
    }

    public static func sourceRange(_ r: SourceRange) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.rangeKey(r, &k)
        RecordEncoder.rangeValue(&v)
        return (k, v)
    }

    public static func node(_ n: ImageNode) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.idKey(n.id, &k)
        RecordEncoder.nodeValue(n, &v)
        return (k, v)
    }

    public static func nodeAddress(_ a: NodeAddress) -> (key: [UInt8], value: [UInt8]) {
        var k: [UInt8] = [], v: [UInt8] = []
        RecordEncoder.addrKey(a.address, &k)
        RecordEncoder.nodeAddrValue(a, &v)
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
        for table in ImageTable.allCases {
            let view = ImageTableView(header: header, bytes: bytes, table: table)
            var records: RecordTable = [:]
            records.reserveCapacity(view.count)
            for i in 0..<view.count { records[view.key(at: i)] = view.value(at: i) }
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
