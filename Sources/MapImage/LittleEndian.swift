/// Fixed-width integers as little-endian bytes, whatever the host: the image container's fields
/// (ImageLayout) and any word a tool reads or writes byte by byte. Kernel-facing records are not
/// built with these: they are the ABI header's C structs (ABIRecords.swift), so their layout has
/// one source.
public enum LittleEndian {
    /// `value`'s `MemoryLayout<T>.size` bytes, least significant first.
    public static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(value)
        return out
    }
}

extension Array where Element == UInt8 {
    /// Appends `value`'s `MemoryLayout<T>.size` bytes, least significant first.
    public mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var x = value
        for _ in 0..<MemoryLayout<T>.size {
            append(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
    }

    /// Overwrites the `MemoryLayout<T>.size` bytes at `offset` with `value`, least significant
    /// first. The bytes must be there: like a subscript, writing past the end traps.
    public mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var x = value
        for i in 0..<MemoryLayout<T>.size {
            self[offset + i] = UInt8(truncatingIfNeeded: x)
            x >>= 8
        }
    }
}

extension RandomAccessCollection where Element == UInt8 {
    /// The `T` stored little-endian at `offset` bytes from the start (an offset into the
    /// collection, whatever its indices: a slice's first byte is at offset 0). The bytes must be
    /// there: like a subscript, reading past the end traps.
    public func readLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        let start = index(startIndex, offsetBy: offset)
        var x: T = 0
        for i in (0..<MemoryLayout<T>.size).reversed() {
            x = x << 8 | T(truncatingIfNeeded: self[index(start, offsetBy: i)])
        }
        return x
    }
}
