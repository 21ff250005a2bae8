/// Lowercase hexadecimal, the one spelling of digests, record bytes and ids in every output.
public enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Two digits per byte, no separator: `[0x0a, 0xff]` → `0aff` (SHA-256 digests, record keys).
    public static func bytes(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes { appendByte(b, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `b`'s two digits as ASCII (for writers that build bytes, not strings).
    public static func appendByte(_ b: UInt8, to out: inout [UInt8]) {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }

    /// At least `width` digits, zero-padded, no prefix: `padded(0x1b, width: 4)` → `001b`.
    public static func padded<T: BinaryInteger>(_ value: T, width: Int) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// An id as a person reads it in `inspect` and `diff`: `0x` and eight digits.
    public static func id(_ value: UInt32) -> String { "0x" + padded(value, width: 8) }
}

/// `Hex.id`: ids in rendered images, diffs and status output.
public func hex(_ v: UInt32) -> String { Hex.id(v) }
