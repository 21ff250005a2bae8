import Crypto

/// The image's bytes from the model: each record as the ABI header's struct (RecordEncoder,
/// ABIRecords.swift), the container's fields at ImageLayout's offsets, sealed with the digest.
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

        // The LPM tables hold few records: sorted by their key bytes directly (a little-endian
        // prefix length first), each key once, every value the same.
        @Sendable func lpmTable(_ t: ImageTable, keys: [[UInt8]], value: (inout [UInt8]) -> Void) -> Section {
            let unique = Array(Set(keys)).sorted { $0.lexicographicallyPrecedes($1) }
            return table(t, count: unique.count) { out in
                for k in unique {
                    out.append(contentsOf: k)
                    value(&out)
                }
            }
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
                lpmTable(.serviceCIDRs, keys: c.serviceCIDRs.map { cidr in
                    var k: [UInt8] = []
                    RecordEncoder.cidrKey(cidr, &k)
                    return k
                }, value: RecordEncoder.cidrValue)
            },
            {
                lpmTable(.sourceRanges, keys: c.sourceRanges.map { r in
                    var k: [UInt8] = []
                    RecordEncoder.rangeKey(r, &k)
                    return k
                }, value: RecordEncoder.rangeValue)
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

        typealias H = ImageLayout.Header
        typealias E = ImageLayout.Entry
        var out: [UInt8] = []
        out.reserveCapacity(total)
        // Header and section table, zero where no field is written (flags, reserved, digest).
        out.append(contentsOf: repeatElement(0, count: ImageLayout.headerSize + sections.count * ImageLayout.sectionEntrySize))
        out.replaceSubrange(H.magic..<(H.magic + ImageLayout.magic.count), with: ImageLayout.magic)
        out.storeLittleEndian(ImageLayout.formatVersion, at: H.formatVersion)
        out.storeLittleEndian(UInt16(ImageLayout.headerSize), at: H.headerSize)
        out.storeLittleEndian(ABI.version, at: H.abiVersion)
        out.storeLittleEndian(UInt32(sections.count), at: H.sectionCount)
        out.storeLittleEndian(UInt64(total), at: H.totalSize)
        for (i, (s, p)) in zip(sections, placed).enumerated() {
            let e = ImageLayout.headerSize + i * ImageLayout.sectionEntrySize
            out.storeLittleEndian(s.kind, at: e + E.kind)
            out.storeLittleEndian(UInt16(s.keySize), at: e + E.keySize)
            out.storeLittleEndian(UInt16(s.valueSize), at: e + E.valueSize)
            out.storeLittleEndian(UInt32(s.count), at: e + E.count)
            out.storeLittleEndian(UInt64(p.0), at: e + E.offset)
            out.storeLittleEndian(UInt64(p.1), at: e + E.length)
        }
        for (s, p) in zip(sections, placed) {
            out.append(contentsOf: [UInt8](repeating: 0, count: p.0 - out.count))
            out.append(contentsOf: s.data)
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: total - out.count))
        let digest = Array(SHA256.hash(data: out))
        out.replaceSubrange(H.digest..<(H.digest + H.digestSize), with: digest)
        return out
    }

    static func align(_ n: Int) -> Int { (n + ImageLayout.alignment - 1) / ImageLayout.alignment * ImageLayout.alignment }
}
