#if canImport(Glibc)
import Glibc
#endif

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

/// memcmp of two byte ranges (sign only): key-byte order. The ranges must lie inside the arrays.
@inline(__always)
func compareBytes(_ a: [UInt8], _ ao: Int, _ b: [UInt8], _ bo: Int, _ n: Int) -> Int {
    guard n > 0 else { return 0 }
    return a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in
            guard let pa = pa.baseAddress, let pb = pb.baseAddress else { return 0 }
            return Int(memcmp(pa + ao, pb + bo, n))
        }
    }
}
