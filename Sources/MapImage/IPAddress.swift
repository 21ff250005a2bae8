/// An IPv4 or IPv6 address held as 16 bytes, IPv4 in its mapped form (::ffff:a.b.c.d).
///
/// One representation for both families is what the datapath uses (a v4-mapped destination on an
/// IPv6 socket then finds the IPv4 entries directly), and it makes addresses cheap to hash, compare
/// and sort: two 64-bit words in network order compare like their bytes.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// 16 bytes in network order.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(high: h, low: l)
    }

    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d))
    }

    public init(ipv4Value v: UInt32) {
        self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(v))
    }

    /// The wildcard address of a family: the NodePort frontends' key address.
    public static func wildcard(_ family: IPFamily) -> IPAddress {
        family == .ipv4 ? IPAddress(high: 0, low: 0x0000_FFFF_0000_0000) : IPAddress(high: 0, low: 0)
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0x0000_FFFF }
    public var family: IPFamily { isIPv4 ? .ipv4 : .ipv6 }
    public var isUnspecified: Bool { self == .wildcard(family) }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
        }
        return out
    }

    /// The 4 bytes of an IPv4 address (zero for IPv6).
    public var ipv4Bytes: [UInt8] {
        guard isIPv4 else { return [0, 0, 0, 0] }
        return Array(bytes[12..<16])
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
            groups[4 + i] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
        }
        // RFC 5952: compress the longest run (≥2) of zero groups, the first one on ties.
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }

    /// Parses an address the way kube-proxy's ParseIPSloppy does: IPv4 octets may carry leading
    /// zeros and are read as decimal ("010" is 10, not octal 8), so legacy objects keep meaning
    /// what the API server stored. IPv4-mapped IPv6 text ("::ffff:1.2.3.4") is the IPv4 address.
    public init?(_ text: some StringProtocol) {
        self.init(utf8: Array(text.utf8)[...])
    }

    /// Parses from UTF-8 bytes, so callers holding bytes need not build a String.
    public init?(utf8: ArraySlice<UInt8>) {
        if utf8.isEmpty || utf8.count > 64 { return nil }
        if !utf8.contains(UInt8(ascii: ":")) {
            guard let v = IPAddress.parseIPv4(utf8) else { return nil }
            self.init(ipv4Value: v)
            return
        }
        guard let (h, l) = IPAddress.parseIPv6(Array(utf8)) else { return nil }
        self.init(high: h, low: l)
    }

    private static func parseIPv4(_ s: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for c in s {
            if c == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                current = current * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 3, current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    private static func parseIPv6(_ s: [UInt8]) -> (UInt64, UInt64)? {
        // Split on "::" at most once; each side is a list of hex groups, the last of which may be
        // a dotted IPv4 tail.
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawDouble = false
        var i = 0
        let n = s.count
        if n >= 2 && s[0] == UInt8(ascii: ":") && s[1] == UInt8(ascii: ":") {
            sawDouble = true
            i = 2
        } else if n >= 1 && s[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < n {
            var j = i
            while j < n && s[j] != UInt8(ascii: ":") { j += 1 }
            let part = s[i..<j]
            if part.isEmpty { return nil }
            if part.contains(UInt8(ascii: ".")) {
                // IPv4 tail: must be last.
                guard j == n, let v = parseIPv4(part) else { return nil }
                let groups = [UInt16(v >> 16), UInt16(v & 0xFFFF)]
                if sawDouble { tail += groups } else { head += groups }
                i = n
                break
            }
            guard part.count <= 4 else { return nil }
            var g: UInt16 = 0
            for c in part {
                guard let d = hexValue(c) else { return nil }
                g = g << 4 | UInt16(d)
            }
            if sawDouble { tail.append(g) } else { head.append(g) }
            if j == n { i = n; break }
            // j points at ':'
            if j + 1 < n && s[j + 1] == UInt8(ascii: ":") {
                guard !sawDouble else { return nil }
                sawDouble = true
                i = j + 2
            } else {
                guard j + 1 < n else { return nil }  // trailing single ':'
                i = j + 1
            }
        }
        var groups: [UInt16]
        if sawDouble {
            guard head.count + tail.count <= 7 else { return nil }
            groups = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            groups = head
        }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
        for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
        return (h, l)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

public enum IPFamily: String, Sendable, Codable, Comparable, CaseIterable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    public static func < (a: IPFamily, b: IPFamily) -> Bool { a == .ipv4 && b == .ipv6 }
}

/// A transport protocol the datapath translates.
public enum TransportProtocol: UInt8, Sendable, Codable, Comparable, CustomStringConvertible {
    case tcp = 6
    case udp = 17

    public var description: String { self == .tcp ? "TCP" : "UDP" }
    public static func < (a: TransportProtocol, b: TransportProtocol) -> Bool { a.rawValue < b.rawValue }
}

/// An address and port, printed as Kubernetes and curl print them (`[v6]:port`).
public struct SocketAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }

    public static func < (a: SocketAddress, b: SocketAddress) -> Bool {
        a.address != b.address ? a.address < b.address : a.port < b.port
    }

    /// Parses `1.2.3.4:80` or `[fd00::1]:80`.
    public init?(_ text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let addr = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), let ip = IPAddress(addr) else { return nil }
            self.init(address: ip, port: port)
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            let addr = text[..<colon]
            guard !addr.contains(":"), let port = UInt16(text[text.index(after: colon)...]), let ip = IPAddress(addr) else { return nil }
            self.init(address: ip, port: port)
        }
    }
}
