import Crypto
import Dispatch
import Synchronization

/// Section kinds: the datapath tables (the values of `enum bl_table`) and the metadata.
public enum ImageTable: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case frontends = 1
    case vips = 2
    case nodeAddresses = 3
    case nodes = 4
    case sets = 5
    case slots = 6
    case members = 7
    case backends = 8

    public var description: String {
        switch self {
        case .frontends: "frontends"
        case .vips: "vips"
        case .nodeAddresses: "node_addrs"
        case .nodes: "nodes"
        case .sets: "sets"
        case .slots: "slots"
        case .members: "members"
        case .backends: "backends"
        }
    }
}

/// The fixed layout of the container (docs/image-format.md).
public enum ImageLayout {
    public static let magic: [UInt8] = Array("BLIMAGE".utf8) + [0]
    public static let formatVersion: UInt16 = 1
    public static let headerSize = 64
    public static let sectionEntrySize = 32
    public static let metadataKind: UInt32 = 0x100
    static let digestOffset = 32
    static let alignment = 8
}

/// Why an image was refused. Every check of the decoder has its own message; `offset` is the byte
/// the problem was found at, when there is one.
public struct ImageError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public var offset: Int?

    public init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let offset { return "invalid image: \(message) (at byte \(offset))" }
        return "invalid image: \(message)"
    }
}

/// What the header of a verified image says.
public struct ImageHeader: Sendable, Equatable {
    public var formatVersion: UInt16
    public var abiVersion: UInt32
    public var totalSize: Int
    public var digest: [UInt8]
    public var sections: [SectionInfo]

    public var digestHex: String { digest.map { hexByte($0) }.joined() }
}

public struct SectionInfo: Sendable, Equatable {
    public var kind: UInt32
    public var keySize: Int
    public var valueSize: Int
    public var count: Int
    public var offset: Int
    public var length: Int

    public var name: String {
        if kind == ImageLayout.metadataKind { return "metadata" }
        return ImageTable(rawValue: kind)?.description ?? "unknown(\(kind))"
    }
}

/// An image whose container and tables are verified (ImageDecoder.verify) but not decoded into
/// the model: the loader writes `bytes`' record sections to the kernel as they are.
public struct VerifiedImage: Sendable {
    public var header: ImageHeader
    public var bytes: [UInt8]
    public var nodes: [NodeInfo]

    public func nodeID(named name: String) throws(ResolverError) -> UInt32 {
        try NodeInfo.id(named: name, in: nodes)
    }
}

/// A decoded, fully verified image.
public struct MapImage: Sendable {
    public var header: ImageHeader
    public var contents: ImageContents
    public var bytes: [UInt8]

    /// Verifies everything (see ImageDecoder) and decodes.
    public init(bytes: [UInt8]) throws(ImageError) {
        let (header, contents) = try ImageDecoder.decode(bytes)
        self.header = header
        self.contents = contents
        self.bytes = bytes
    }

    public init(contents: ImageContents) {
        let bytes = ImageEncoder.encode(contents)
        self.bytes = bytes
        self.contents = contents
        // The encoder's own output always decodes; a failure here is a bug in one of the two.
        if let (header, decoded) = try? ImageDecoder.decode(bytes) {
            self.header = header
            self.contents = decoded
        } else {
            self.header = ImageHeader(formatVersion: ImageLayout.formatVersion, abiVersion: ABI.version, totalSize: bytes.count,
                                      digest: [], sections: [])
        }
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

// MARK: - Little-endian byte helpers (container fields; records go through ABIRecords.swift)

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        var x = v.littleEndian
        for _ in 0..<MemoryLayout<T>.size {
            append(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
    }

    mutating func putLE<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        var x = v.littleEndian
        for i in 0..<MemoryLayout<T>.size {
            self[offset + i] = UInt8(truncatingIfNeeded: x)
            x >>= 8
        }
    }

    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var x: T = 0
        for i in (0..<MemoryLayout<T>.size).reversed() {
            x = x << 8 | T(self[offset + i])
        }
        return x
    }
}

// MARK: - Encoder

public enum ImageEncoder {
    /// Encodes contents into image bytes. Records are sorted by key bytes here, so callers may pass
    /// tables in any order; keys must be unique (the compiler guarantees it).
    ///
    /// The contents must fit the datapath (`ImageCapacity.check`); `encodeVerified` checks that
    /// and verifies the result, and is what anything that writes an image file uses.
    public static func encode(_ c: ImageContents) -> [UInt8] {
        layout(sections(c))
    }

    typealias Section = (kind: UInt32, keySize: Int, valueSize: Int, count: Int, data: [UInt8])

    /// Each section's records (or the metadata's bytes), in the fixed section order.
    static func sections(_ c: ImageContents) -> [Section] {
        @Sendable func table(_ t: ImageTable, count: Int, _ fill: (inout [UInt8]) -> Void) -> Section {
            var data: [UInt8] = []
            data.reserveCapacity(count * (ABI.keySize(t) + ABI.valueSize(t)))
            fill(&data)
            return (t.rawValue, ABI.keySize(t), ABI.valueSize(t), count, data)
        }

        let sets = c.sets.sorted { $0.key < $1.key }
        let slotCount = sets.reduce(0) { $0 + $1.backends.count }
        // Each table is independent: they are encoded side by side, then laid out in order.
        let jobs: [@Sendable () -> Section] = [
            {
                let frontends = c.frontends.sorted { $0.key < $1.key }
                return table(.frontends, count: frontends.count) { out in
                    for f in frontends {
                        RecordEncoder.frontendKey(f.key, &out)
                        RecordEncoder.frontendValue(f, &out)
                    }
                }
            },
            {
                let vips = c.vips.sorted { $0.address < $1.address }
                return table(.vips, count: vips.count) { out in
                    for v in vips {
                        RecordEncoder.addrKey(v.address, &out)
                        RecordEncoder.vipValue(v, &out)
                    }
                }
            },
            {
                let nodeAddrs = c.nodeAddresses.sorted { $0.address < $1.address }
                return table(.nodeAddresses, count: nodeAddrs.count) { out in
                    for a in nodeAddrs {
                        RecordEncoder.addrKey(a.address, &out)
                        RecordEncoder.nodeAddrValue(a, &out)
                    }
                }
            },
            {
                let nodes = c.nodes.sorted { $0.id.byteSwapped < $1.id.byteSwapped }
                return table(.nodes, count: nodes.count) { out in
                    for n in nodes {
                        RecordEncoder.idKey(n.id, &out)
                        RecordEncoder.nodeValue(n, &out)
                    }
                }
            },
            {
                table(.sets, count: sets.count) { out in
                    for s in sets {
                        RecordEncoder.setKey(s.key, &out)
                        RecordEncoder.setValue(s, &out)
                    }
                }
            },
            {
                table(.slots, count: slotCount) { out in
                    for s in sets {
                        // Slot keys end in a little-endian index: byte order is the byte-swapped order.
                        for i in (0..<UInt32(s.backends.count)).sorted(by: { $0.byteSwapped < $1.byteSwapped }) {
                            RecordEncoder.slotKey(s.key, index: i, &out)
                            RecordEncoder.slotValue(backendID: s.backends[Int(i)], &out)
                        }
                    }
                }
            },
            {
                table(.members, count: slotCount) { out in
                    for s in sets {
                        let order = s.backends.enumerated().sorted { $0.element.byteSwapped < $1.element.byteSwapped }
                        for (i, b) in order {
                            RecordEncoder.memberKey(s.key, backendID: b, &out)
                            RecordEncoder.memberValue(index: UInt32(i), &out)
                        }
                    }
                }
            },
            {
                // Key-byte order of a little-endian id is the byte-swapped order; sorting packed
                // words is far cheaper than sorting the records.
                var order = c.backends.enumerated().map { UInt64($0.element.id.byteSwapped) << 32 | UInt64($0.offset) }
                order.sort()
                return table(.backends, count: order.count) { out in
                    for k in order {
                        let b = c.backends[Int(k & 0xFFFF_FFFF)]
                        RecordEncoder.idKey(b.id, &out)
                        RecordEncoder.backendValue(b, &out)
                    }
                }
            },
            {
                let meta = c.metadata.canonicalJSON()
                return (ImageLayout.metadataKind, 0, 0, meta.count, meta)
            },
        ]
        return concurrentMap(jobs.count) { jobs[$0]() }
    }

    /// Header, section table and the sections, 8-aligned, sealed with the digest.
    static func layout(_ sections: [Section]) -> [UInt8] {
        // Lay out: header, section table, then each section 8-aligned.
        var offset = ImageLayout.headerSize + sections.count * ImageLayout.sectionEntrySize
        var placed: [(Int, Int)] = []
        for s in sections {
            offset = align(offset)
            placed.append((offset, s.data.count))
            offset += s.data.count
        }
        let total = align(offset)

        var out: [UInt8] = []
        out.reserveCapacity(total)
        out.append(contentsOf: ImageLayout.magic)
        out.appendLE(ImageLayout.formatVersion)
        out.appendLE(UInt16(ImageLayout.headerSize))
        out.appendLE(ABI.version)
        out.appendLE(UInt32(sections.count))
        out.appendLE(UInt32(0))
        out.appendLE(UInt64(total))
        out.append(contentsOf: [UInt8](repeating: 0, count: 32))
        for (s, p) in zip(sections, placed) {
            out.appendLE(s.kind)
            out.appendLE(UInt16(s.keySize))
            out.appendLE(UInt16(s.valueSize))
            out.appendLE(UInt32(s.count))
            out.appendLE(UInt32(0))
            out.appendLE(UInt64(p.0))
            out.appendLE(UInt64(p.1))
        }
        for (s, p) in zip(sections, placed) {
            out.append(contentsOf: [UInt8](repeating: 0, count: p.0 - out.count))
            out.append(contentsOf: s.data)
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: total - out.count))
        let digest = Array(SHA256.hash(data: out))
        out.replaceSubrange(ImageLayout.digestOffset..<(ImageLayout.digestOffset + 32), with: digest)
        return out
    }

    static func align(_ n: Int) -> Int { (n + ImageLayout.alignment - 1) / ImageLayout.alignment * ImageLayout.alignment }
}

// MARK: - Decoder

/// Decodes an image, verifying everything before returning: container (magic, versions, sizes,
/// digest, section table bounds and layout), records (sizes, counts, strict key order, padding,
/// enums and flags), and references between tables (rules → sets, slots → backends, members ↔
/// slots, node addresses → nodes). Any violation is an ImageError; no input makes it crash.
public enum ImageDecoder {
    public static func decodeHeader(_ bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        try decodeHeader(bytes, checkDigest: true)
    }

    /// The container's layout (versions, section table, record sizes, capacities) without the
    /// digest: enough to know where each table's records are. The loader starts filling fresh
    /// maps from it while `verify` (which checks the digest too) runs; nothing is published
    /// before `verify` has succeeded.
    public static func decodeLayout(_ bytes: [UInt8]) throws(ImageError) -> ImageHeader {
        try decodeHeader(bytes, checkDigest: false)
    }

    static func decodeHeader(_ bytes: [UInt8], checkDigest: Bool) throws(ImageError) -> ImageHeader {
        let h = ImageLayout.headerSize
        guard bytes.count >= h else {
            throw ImageError("truncated: \(bytes.count) bytes, a header needs \(h)")
        }
        guard Array(bytes[0..<8]) == ImageLayout.magic else {
            throw ImageError("not a balancer image (bad magic)", offset: 0)
        }
        let format = bytes.readLE(UInt16.self, at: 8)
        guard format == ImageLayout.formatVersion else {
            throw ImageError("unsupported image format version \(format); this balancer reads version \(ImageLayout.formatVersion)", offset: 8)
        }
        let headerSize = Int(bytes.readLE(UInt16.self, at: 10))
        guard headerSize == h else { throw ImageError("header size \(headerSize), expected \(h)", offset: 10) }
        let abi = bytes.readLE(UInt32.self, at: 12)
        guard abi == ABI.version else {
            throw ImageError("image built for datapath ABI \(abi); this balancer speaks ABI \(ABI.version) — recompile the image with a matching balancer", offset: 12)
        }
        let sectionCount = Int(bytes.readLE(UInt32.self, at: 16))
        let flags = bytes.readLE(UInt32.self, at: 20)
        guard flags == 0 else { throw ImageError("unknown header flags 0x\(String(flags, radix: 16))", offset: 20) }
        let total = bytes.readLE(UInt64.self, at: 24)
        guard total == UInt64(bytes.count) else {
            throw ImageError(total > UInt64(bytes.count)
                ? "truncated: header says \(total) bytes, file has \(bytes.count)"
                : "trailing data: header says \(total) bytes, file has \(bytes.count)", offset: 24)
        }
        let stored = Array(bytes[ImageLayout.digestOffset..<(ImageLayout.digestOffset + 32)])
        if checkDigest {
            // The digest covers the file with its own field zeroed.
            var hasher = SHA256()
            hasher.update(data: bytes[0..<ImageLayout.digestOffset])
            hasher.update(data: [UInt8](repeating: 0, count: 32))
            hasher.update(data: bytes[(ImageLayout.digestOffset + 32)...])
            let actual = Array(hasher.finalize())
            guard actual == stored else {
                throw ImageError("digest mismatch: header says \(stored.map(hexByte).joined()), content hashes to \(actual.map(hexByte).joined()) (corrupted or forged)", offset: ImageLayout.digestOffset)
            }
        }
        let expected = ImageTable.allCases.count + 1
        guard sectionCount == expected else {
            throw ImageError("\(sectionCount) sections, expected \(expected)", offset: 16)
        }
        let tableEnd = h + sectionCount * ImageLayout.sectionEntrySize
        guard tableEnd <= bytes.count else { throw ImageError("section table runs past the end of the file", offset: h) }

        var sections: [SectionInfo] = []
        var cursor = tableEnd
        for i in 0..<sectionCount {
            let e = h + i * ImageLayout.sectionEntrySize
            let kind = bytes.readLE(UInt32.self, at: e)
            let keySize = Int(bytes.readLE(UInt16.self, at: e + 4))
            let valueSize = Int(bytes.readLE(UInt16.self, at: e + 6))
            let count = Int(bytes.readLE(UInt32.self, at: e + 8))
            let reserved = bytes.readLE(UInt32.self, at: e + 12)
            let offset64 = bytes.readLE(UInt64.self, at: e + 16)
            let length64 = bytes.readLE(UInt64.self, at: e + 24)
            let expectedKind = i < ImageTable.allCases.count ? ImageTable.allCases[i].rawValue : ImageLayout.metadataKind
            guard kind == expectedKind else {
                throw ImageError("section \(i) has kind \(kind), expected \(expectedKind) (sections are in a fixed order)", offset: e)
            }
            guard reserved == 0 else { throw ImageError("section \(i): reserved field not zero", offset: e + 12) }
            guard offset64 <= UInt64(bytes.count), length64 <= UInt64(bytes.count) - offset64 else {
                throw ImageError("section \(i) (\(kind)) runs past the end of the file", offset: e + 16)
            }
            let offset = Int(offset64), length = Int(length64)
            guard offset % ImageLayout.alignment == 0, offset >= cursor, offset - cursor < ImageLayout.alignment else {
                throw ImageError("section \(i) is misplaced (offset \(offset), previous data ends at \(cursor))", offset: e + 16)
            }
            guard bytes[cursor..<offset].allSatisfy({ $0 == 0 }) else {
                throw ImageError("non-zero padding before section \(i)", offset: cursor)
            }
            if let table = ImageTable(rawValue: kind) {
                guard keySize == ABI.keySize(table), valueSize == ABI.valueSize(table) else {
                    throw ImageError("\(table) records are \(keySize)+\(valueSize) bytes, this ABI's are \(ABI.keySize(table))+\(ABI.valueSize(table))", offset: e + 4)
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: keySize + valueSize)
                guard !overflow, product == length else {
                    throw ImageError("\(table): \(count) records of \(keySize + valueSize) bytes do not fill \(length) bytes", offset: e + 8)
                }
                guard count <= ABI.maxEntries(table) else {
                    let problem = CapacityProblem(subject: .table(table), count: count, limit: ABI.maxEntries(table),
                                                  constant: ImageCapacity.constant(table))
                    throw ImageError(problem.description, offset: e + 8)
                }
            } else {
                guard keySize == 0, valueSize == 0, count == length else {
                    throw ImageError("metadata section header is inconsistent", offset: e)
                }
            }
            sections.append(SectionInfo(kind: kind, keySize: keySize, valueSize: valueSize, count: count, offset: offset, length: length))
            cursor = offset + length
        }
        let end = ImageEncoder.align(cursor)
        guard end == bytes.count, bytes[cursor..<bytes.count].allSatisfy({ $0 == 0 }) else {
            throw ImageError("unexpected bytes after the last section", offset: cursor)
        }
        return ImageHeader(formatVersion: format, abiVersion: abi, totalSize: bytes.count, digest: stored, sections: sections)
    }

    public static func decode(_ bytes: [UInt8]) throws(ImageError) -> (ImageHeader, ImageContents) {
        try decode(bytes, materialize: true)
    }

    /// Every check `decode` makes on the container and the tables, without building the model:
    /// what a loader needs before it writes the tables to the kernel. Of the metadata only the
    /// node list is decoded, when `nodes` (to map `--node` to an id); the rest is covered by the
    /// digest and is not written to the kernel.
    public static func verify(_ bytes: [UInt8], nodes: Bool = true) throws(ImageError) -> VerifiedImage {
        let (header, contents) = try decode(bytes, materialize: false, nodes: nodes)
        return VerifiedImage(header: header, bytes: bytes, nodes: contents.metadata.nodes)
    }

    static func decode(_ bytes: [UInt8], materialize: Bool, nodes decodeNodes: Bool = true) throws(ImageError) -> (ImageHeader, ImageContents) {
        let header = try decodeHeader(bytes)
        func section(_ t: ImageTable) -> SectionInfo { header.sections[Int(t.rawValue) - 1] }

        /// Checks strict key order of a record section and hands each record's offsets to `body`.
        func records(_ t: ImageTable, _ body: (Int, Int, Int) throws(ImageError) -> Void) throws(ImageError) {
            let s = section(t)
            let stride = s.keySize + s.valueSize
            for i in 0..<s.count {
                let k = s.offset + i * stride
                if i > 0 {
                    let prev = k - stride
                    if !lexicographicallyLess(bytes, prev, k, s.keySize) {
                        throw ImageError("\(t): record \(i) is not in strictly ascending key order (unsorted or duplicate key)", offset: k)
                    }
                }
                try body(i, k, k + s.keySize)
            }
        }

        var contents = ImageContents()

        // Nodes first: other tables refer to them.
        var nodeIDs = Set<UInt32>()
        try records(.nodes) { (_, k, v) throws(ImageError) in
            let id = RecordDecoder.idKey(bytes, k)
            let n = RecordDecoder.nodeValue(bytes, v)
            guard id != 0 else { throw ImageError("nodes: node id 0 is reserved for hosts that are not nodes", offset: k) }
            guard n.flags & ~NodeFlags.fromObject.rawValue == 0 else { throw ImageError("nodes: unknown flags", offset: v) }
            let v4 = n.addr4 == [0, 0, 0, 0] ? nil : IPAddress(ipv4: n.addr4[0], n.addr4[1], n.addr4[2], n.addr4[3])
            let v6: IPAddress? = n.addr6 == IPAddress(high: 0, low: 0) ? nil : n.addr6
            if let v6, v6.isIPv4 { throw ImageError("nodes: IPv6 address field holds an IPv4 address", offset: v) }
            nodeIDs.insert(id)
            if materialize { contents.nodes.append(ImageNode(id: id, zoneID: n.zoneID, flags: NodeFlags(rawValue: n.flags), ipv4: v4, ipv6: v6)) }
        }

        var backendIDs = Set<UInt32>(minimumCapacity: section(.backends).count)
        try records(.backends) { (_, k, v) throws(ImageError) in
            let id = RecordDecoder.idKey(bytes, k)
            let b = RecordDecoder.backendValue(bytes, v)
            guard id != 0 else { throw ImageError("backends: backend id 0 is reserved", offset: k) }
            guard let proto = TransportProtocol(rawValue: b.proto) else { throw ImageError("backends: protocol \(b.proto) is not TCP or UDP", offset: v) }
            guard b.reserved == 0 else { throw ImageError("backends: reserved byte not zero", offset: v) }
            guard b.port != 0 else { throw ImageError("backends: port 0", offset: v) }
            guard !b.address.isUnspecified else { throw ImageError("backends: unspecified address", offset: v) }
            guard b.nodeID == 0 || nodeIDs.contains(b.nodeID) else {
                throw ImageError("backends: backend \(id) refers to node \(b.nodeID), which is not in the nodes table", offset: v)
            }
            backendIDs.insert(id)
            if materialize {
                contents.backends.append(Backend(id: id, address: SocketAddress(address: b.address, port: b.port), proto: proto, nodeID: b.nodeID))
            }
        }

        // Sets, then their slots and members, which must match one for one.
        var setCounts: [SetKey: (count: Int, flags: SetFlags)] = Dictionary(minimumCapacity: section(.sets).count)
        var setOrder: [SetKey] = []
        setOrder.reserveCapacity(section(.sets).count)
        var totalSlots = 0
        try records(.sets) { (_, k, v) throws(ImageError) in
            let key = RecordDecoder.setKey(bytes, k)
            let value = RecordDecoder.setValue(bytes, v)
            guard let scope = SetScope(rawValue: key.scope) else { throw ImageError("sets: unknown scope \(key.scope)", offset: k) }
            guard key.pad == [0, 0, 0] else { throw ImageError("sets: padding not zero", offset: k) }
            guard key.groupID != 0 else { throw ImageError("sets: group id 0", offset: k) }
            switch scope {
            case .cluster:
                guard key.scopeID == 0 else { throw ImageError("sets: cluster set with scope id \(key.scopeID)", offset: k) }
            case .node, .local, .gate:
                guard nodeIDs.contains(key.scopeID) else { throw ImageError("sets: \(scope) set for node \(key.scopeID), which is not in the nodes table", offset: k) }
            case .zone:
                guard key.scopeID != 0 else { throw ImageError("sets: zone set with zone id 0", offset: k) }
            }
            guard value.flags & ~SetFlags.terminating.rawValue == 0 else { throw ImageError("sets: unknown flags", offset: v) }
            if scope == .gate {
                guard value.count == 0 else { throw ImageError("sets: a gate set holds no backends", offset: v) }
            } else {
                guard value.count > 0 else { throw ImageError("sets: empty \(scope) set (an empty set is encoded by its absence)", offset: v) }
            }
            totalSlots += Int(value.count)
            guard totalSlots <= section(.slots).count else {
                throw ImageError("sets: counts add up to more than the \(section(.slots).count) slots", offset: v)
            }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            setCounts[sk] = (Int(value.count), SetFlags(rawValue: value.flags))
            setOrder.append(sk)
        }
        var slotsBySet: [SetKey: [UInt32?]] = Dictionary(minimumCapacity: setCounts.count)
        for (k, v) in setCounts { slotsBySet[k] = [UInt32?](repeating: nil, count: v.count) }
        try records(.slots) { (_, k, v) throws(ImageError) in
            let key = RecordDecoder.slotKey(bytes, k)
            let backend = RecordDecoder.slotValue(bytes, v)
            guard key.pad == [0, 0, 0], let scope = SetScope(rawValue: key.scope) else { throw ImageError("slots: bad scope or padding", offset: k) }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            guard let at = slotsBySet.index(forKey: sk) else { throw ImageError("slots: slot of a set that does not exist", offset: k) }
            let count = slotsBySet.values[at].count
            guard Int(key.index) < count else { throw ImageError("slots: index \(key.index) beyond the set's count \(count)", offset: k) }
            guard backendIDs.contains(backend) else { throw ImageError("slots: backend \(backend) is not in the backends table", offset: v) }
            // In place: copying the set's list out and back would cost its length per slot.
            slotsBySet.values[at][Int(key.index)] = backend
        }
        var memberCount = 0
        try records(.members) { (_, k, v) throws(ImageError) in
            let key = RecordDecoder.memberKey(bytes, k)
            let index = RecordDecoder.memberValue(bytes, v)
            guard key.pad == [0, 0, 0], let scope = SetScope(rawValue: key.scope) else { throw ImageError("members: bad scope or padding", offset: k) }
            let sk = SetKey(groupID: key.groupID, scope: scope, scopeID: key.scopeID)
            guard let list = slotsBySet[sk], Int(index) < list.count, list[Int(index)] == key.backendID else {
                throw ImageError("members: backend \(key.backendID) at index \(index) does not match the set's slots", offset: k)
            }
            memberCount += 1
        }
        var sets: [BackendSet] = []
        var groupsWithSets = Set<UInt32>()
        for sk in setOrder {
            guard let list = slotsBySet[sk], let info = setCounts[sk] else { continue }
            var backends: [UInt32] = []
            backends.reserveCapacity(list.count)
            for b in list {
                guard let b else { throw ImageError("slots: a set of group \(sk.groupID) is missing slots", offset: section(.slots).offset) }
                backends.append(b)
            }
            guard Set(backends).count == backends.count else {
                throw ImageError("slots: a set of group \(sk.groupID) lists a backend twice", offset: section(.slots).offset)
            }
            if materialize { sets.append(BackendSet(key: sk, flags: info.flags, backends: backends)) }
            if sk.scope != .gate { groupsWithSets.insert(sk.groupID) }
        }
        guard memberCount == section(.slots).count else {
            throw ImageError("members: \(memberCount) records for \(section(.slots).count) slots", offset: section(.members).offset)
        }
        contents.sets = sets

        try records(.frontends) { (_, k, v) throws(ImageError) in
            let f = RecordDecoder.frontend(bytes, key: k, value: v)
            guard let proto = TransportProtocol(rawValue: f.proto) else { throw ImageError("frontends: protocol \(f.proto) is not TCP or UDP", offset: k) }
            guard f.pad == 0, f.valuePad == [0, 0, 0] else { throw ImageError("frontends: padding not zero", offset: k) }
            guard f.port != 0 else { throw ImageError("frontends: port 0", offset: k) }
            guard f.id != 0 else { throw ImageError("frontends: frontend id 0 is reserved", offset: v) }
            guard (1...ABI.maxRules).contains(Int(f.ruleCount)) else { throw ImageError("frontends: \(f.ruleCount) rules (1–\(ABI.maxRules) allowed)", offset: v) }
            let key = FrontendKey(address: f.address, port: f.port, proto: proto)
            var rules: [Rule] = []
            if materialize { rules.reserveCapacity(Int(f.ruleCount)) }
            for (i, r) in f.rules.enumerated() {
                if i >= Int(f.ruleCount) {
                    guard r.groupID == 0, r.ownerID == 0, r.affinityTimeout == 0, r.rateLimit == 0, r.origin == 0, r.kind == 0,
                          r.action == 0, r.pad == 0, r.flags == 0, r.nodePort == 0 else {
                        throw ImageError("frontends: unused rule \(i) of \(key) is not zero", offset: v)
                    }
                    continue
                }
                guard let origin = RuleOrigin(rawValue: r.origin), let kind = FrontendKind(rawValue: r.kind),
                      let action = RuleAction(rawValue: r.action) else {
                    throw ImageError("frontends: rule \(i) of \(key) has an unknown origin, kind or action", offset: v)
                }
                guard r.pad == 0, r.flags & ~RuleFlags.known == 0 else { throw ImageError("frontends: rule \(i) of \(key) has unknown flags", offset: v) }
                guard r.groupID != 0, r.ownerID != 0 else { throw ImageError("frontends: rule \(i) of \(key) has a zero group or owner id", offset: v) }
                if action == .translate && !groupsWithSets.contains(r.groupID) {
                    throw ImageError("frontends: rule \(i) of \(key) translates to group \(r.groupID), which has no backend set", offset: v)
                }
                if key.isNodePortWildcard && kind != .nodePort {
                    throw ImageError("frontends: wildcard frontend \(key) has a \(kind) rule", offset: v)
                }
                if materialize {
                    rules.append(Rule(groupID: r.groupID, ownerID: r.ownerID, affinityTimeout: r.affinityTimeout, rateLimit: r.rateLimit,
                                      origin: origin, kind: kind, action: action, flags: RuleFlags(rawValue: r.flags), nodePort: r.nodePort))
                }
            }
            if materialize { contents.frontends.append(Frontend(key: key, id: f.id, rules: rules)) }
        }

        try records(.vips) { (_, k, v) throws(ImageError) in
            let addr = RecordDecoder.addrKey(bytes, k)
            let value = RecordDecoder.vipValue(bytes, v)
            guard value.serviceID != 0 else { throw ImageError("vips: service id 0", offset: v) }
            guard value.flags & ~VIPFlags.rejectUnknownPort.rawValue == 0 else { throw ImageError("vips: unknown flags", offset: v) }
            if materialize { contents.vips.append(VIP(address: addr, serviceID: value.serviceID, flags: VIPFlags(rawValue: value.flags))) }
        }
        try records(.nodeAddresses) { (_, k, v) throws(ImageError) in
            let addr = RecordDecoder.addrKey(bytes, k)
            let value = RecordDecoder.nodeAddrValue(bytes, v)
            guard nodeIDs.contains(value.nodeID) else { throw ImageError("node_addrs: \(addr) refers to node \(value.nodeID), which is not in the nodes table", offset: v) }
            guard value.flags == 0 else { throw ImageError("node_addrs: unknown flags", offset: v) }
            if materialize { contents.nodeAddresses.append(NodeAddress(address: addr, nodeID: value.nodeID)) }
        }

        let meta = header.sections[ImageTable.allCases.count]
        if materialize {
            contents.metadata = try metadata(bytes, meta)
        } else if decodeNodes {
            do {
                contents.metadata.nodes = try ImageMetadata.decodeNodes(Array(bytes[meta.offset..<(meta.offset + meta.length)]))
            } catch {
                throw ImageError("metadata is not valid: \(PrintableText.escape("\(error)"))", offset: meta.offset)
            }
        }
        return (header, contents)
    }

    private static func lexicographicallyLess(_ bytes: [UInt8], _ a: Int, _ b: Int, _ n: Int) -> Bool {
        for i in 0..<n where bytes[a + i] != bytes[b + i] {
            return bytes[a + i] < bytes[b + i]
        }
        return false
    }
}

/// Runs `body` for 0..<count on every core; results in index order.
func concurrentMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    let slots = Mutex<[T?]>([T?](repeating: nil, count: count))
    DispatchQueue.concurrentPerform(iterations: count) { i in
        let v = body(i)
        slots.withLock { $0[i] = v }
    }
    return slots.withLock { $0.compactMap { $0 } }
}

extension VerifiedImage {
    /// For skipRedirectFromBackend: (policy id, backend address) of every rule that skips its own
    /// backends, over that rule's local set on node `nodeID`. Read from the record sections
    /// directly (the image is verified), so a loader need not build the model.
    public func skipTargets(nodeID: UInt32) -> [(owner: UInt32, address: IPAddress)] {
        SkipIndex.compute(nodeID: nodeID) { t, body in
            let s = header.sections[Int(t.rawValue) - 1]
            let stride = s.keySize + s.valueSize
            for i in 0..<s.count { body(bytes, s.offset + i * stride, s.offset + i * stride + s.keySize) }
        }.targets
    }
}
