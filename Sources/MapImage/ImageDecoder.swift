import Crypto

/// Decodes an image, verifying everything before returning: container (magic, versions, sizes,
/// digest, section table bounds and layout), records (sizes, counts, strict key order, padding,
/// enums and flags), and references between tables (rules → sets, slots → backends, members ↔
/// slots, node addresses → nodes). Any violation is an ImageError; no input makes it crash.
///
/// Here the container; the records and their references are TableDecoder's (TableDecoder.swift).
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
        typealias H = ImageLayout.Header
        typealias E = ImageLayout.Entry
        let h = ImageLayout.headerSize
        guard bytes.count >= h else {
            throw ImageError("truncated: \(bytes.count) bytes, a header needs \(h)")
        }
        guard Array(bytes[H.magic..<(H.magic + ImageLayout.magic.count)]) == ImageLayout.magic else {
            throw ImageError("not a balancer image (bad magic)", offset: H.magic)
        }
        let format = bytes.readLittleEndian(UInt16.self, at: H.formatVersion)
        guard format == ImageLayout.formatVersion else {
            throw ImageError("unsupported image format version \(format); this balancer reads version \(ImageLayout.formatVersion)", offset: H.formatVersion)
        }
        let headerSize = Int(bytes.readLittleEndian(UInt16.self, at: H.headerSize))
        guard headerSize == h else { throw ImageError("header size \(headerSize), expected \(h)", offset: H.headerSize) }
        let abi = bytes.readLittleEndian(UInt32.self, at: H.abiVersion)
        guard abi == ABI.version else {
            throw ImageError("image built for datapath ABI \(abi); this balancer speaks ABI \(ABI.version) — recompile the image with a matching balancer", offset: H.abiVersion)
        }
        let sectionCount = Int(bytes.readLittleEndian(UInt32.self, at: H.sectionCount))
        let flags = bytes.readLittleEndian(UInt32.self, at: H.flags)
        guard flags == 0 else { throw ImageError("unknown header flags 0x\(String(flags, radix: 16))", offset: H.flags) }
        let total = bytes.readLittleEndian(UInt64.self, at: H.totalSize)
        guard total == UInt64(bytes.count) else {
            throw ImageError(total > UInt64(bytes.count)
                ? "truncated: header says \(total) bytes, file has \(bytes.count)"
                : "trailing data: header says \(total) bytes, file has \(bytes.count)", offset: H.totalSize)
        }
        let stored = Array(bytes[H.digest..<(H.digest + H.digestSize)])
        if checkDigest {
            // The digest covers the file with its own field zeroed.
            var hasher = SHA256()
            hasher.update(data: bytes[0..<H.digest])
            hasher.update(data: [UInt8](repeating: 0, count: H.digestSize))
            hasher.update(data: bytes[(H.digest + H.digestSize)...])
            let actual = Array(hasher.finalize())
            guard actual == stored else {
                throw ImageError("digest mismatch: header says \(Hex.bytes(stored)), content hashes to \(Hex.bytes(actual)) (corrupted or forged)", offset: H.digest)
            }
        }
        let expected = ImageTable.allCases.count + 1
        guard sectionCount == expected else {
            throw ImageError("\(sectionCount) sections, expected \(expected)", offset: H.sectionCount)
        }
        let tableEnd = h + sectionCount * ImageLayout.sectionEntrySize
        guard tableEnd <= bytes.count else { throw ImageError("section table runs past the end of the file", offset: h) }

        var sections: [SectionInfo] = []
        var cursor = tableEnd
        for i in 0..<sectionCount {
            let e = h + i * ImageLayout.sectionEntrySize
            let kind = bytes.readLittleEndian(UInt32.self, at: e + E.kind)
            let keySize = Int(bytes.readLittleEndian(UInt16.self, at: e + E.keySize))
            let valueSize = Int(bytes.readLittleEndian(UInt16.self, at: e + E.valueSize))
            let count = Int(bytes.readLittleEndian(UInt32.self, at: e + E.count))
            let reserved = bytes.readLittleEndian(UInt32.self, at: e + E.reserved)
            let offset64 = bytes.readLittleEndian(UInt64.self, at: e + E.offset)
            let length64 = bytes.readLittleEndian(UInt64.self, at: e + E.length)
            let expectedKind = i < ImageTable.allCases.count ? ImageTable.allCases[i].rawValue : ImageLayout.metadataKind
            guard kind == expectedKind else {
                throw ImageError("section \(i) has kind \(kind), expected \(expectedKind) (sections are in a fixed order)", offset: e)
            }
            guard reserved == 0 else { throw ImageError("section \(i): reserved field not zero", offset: e + E.reserved) }
            guard offset64 <= UInt64(bytes.count), length64 <= UInt64(bytes.count) - offset64 else {
                throw ImageError("section \(i) (\(kind)) runs past the end of the file", offset: e + E.offset)
            }
            let offset = Int(offset64), length = Int(length64)
            guard offset % ImageLayout.alignment == 0, offset >= cursor, offset - cursor < ImageLayout.alignment else {
                throw ImageError("section \(i) is misplaced (offset \(offset), previous data ends at \(cursor))", offset: e + E.offset)
            }
            guard bytes[cursor..<offset].allSatisfy({ $0 == 0 }) else {
                throw ImageError("non-zero padding before section \(i)", offset: cursor)
            }
            if let table = ImageTable(rawValue: kind) {
                guard keySize == ABI.keySize(table), valueSize == ABI.valueSize(table) else {
                    throw ImageError("\(table) records are \(keySize)+\(valueSize) bytes, this ABI's are \(ABI.keySize(table))+\(ABI.valueSize(table))", offset: e + E.keySize)
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: keySize + valueSize)
                guard !overflow, product == length else {
                    throw ImageError("\(table): \(count) records of \(keySize + valueSize) bytes do not fill \(length) bytes", offset: e + E.count)
                }
                guard count <= ABI.maxEntries(table) else {
                    let problem = CapacityProblem(subject: .table(table), count: count, limit: ABI.maxEntries(table),
                                                  constant: ImageCapacity.constant(table))
                    throw ImageError(problem.description, offset: e + E.count)
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
}
