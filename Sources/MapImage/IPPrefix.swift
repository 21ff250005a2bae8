/// An address range in CIDR notation: a service CIDR (ServiceCIDR objects, `compile
/// --service-cidr`; the datapath refuses connects to addresses inside one that no service
/// answers) or a LoadBalancer's allowed source range.
public struct IPPrefix: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first address, host bits zero (IPv4 in the 16-byte mapped form).
    public var address: IPAddress
    /// The prefix length in the address family's own bits (/12 for 10.96.0.0/12).
    public var prefixLength: Int

    /// nil when the length does not fit the family or host bits are set (canonical only, as the
    /// API server requires of a ServiceCIDR's cidrs; `masking` makes one of a sloppy range).
    public init?(address: IPAddress, prefixLength: Int) {
        let bits = address.isIPv4 ? 32 : 128
        guard prefixLength >= 0, prefixLength <= bits else { return nil }
        let (h, l) = IPPrefix.mask(storedLength: prefixLength + (address.isIPv4 ? 96 : 0))
        guard address.high & ~h == 0, address.low & ~l == 0 else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// "10.96.0.0/12" or "fd00:10:96::/108"; nil for anything else (non-canonical included).
    public init?(_ text: some StringProtocol) {
        guard let slash = text.firstIndex(of: "/"), let a = IPAddress(text[..<slash]),
              let n = Int(text[text.index(after: slash)...]), !text[text.index(after: slash)...].hasPrefix("+") else { return nil }
        self.init(address: a, prefixLength: n)
    }

    /// The range `address/prefixLength` with its host bits cleared (what Go's net.ParseCIDR does
    /// with "10.0.0.1/8"); nil when the length does not fit the family.
    public static func masking(_ address: IPAddress, prefixLength: Int) -> IPPrefix? {
        let bits = address.isIPv4 ? 32 : 128
        guard prefixLength >= 0, prefixLength <= bits else { return nil }
        let (h, l) = mask(storedLength: prefixLength + (address.isIPv4 ? 96 : 0))
        return IPPrefix(address: IPAddress(high: address.high & h, low: address.low & l), prefixLength: prefixLength)
    }

    /// The prefix length over the 16-byte form (what the datapath's LPM trie stores).
    public var storedLength: Int { prefixLength + (address.isIPv4 ? 96 : 0) }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.isIPv4 == address.isIPv4 else { return false }
        let (h, l) = IPPrefix.mask(storedLength: storedLength)
        return a.high & h == address.high && a.low & l == address.low
    }

    public var description: String { "\(address)/\(prefixLength)" }

    public static func < (a: IPPrefix, b: IPPrefix) -> Bool {
        (a.storedLength, a.address) < (b.storedLength, b.address)
    }

    static func mask(storedLength n: Int) -> (UInt64, UInt64) {
        let high: UInt64 = n >= 64 ? ~0 : n == 0 ? 0 : ~0 << (64 - n)
        let low: UInt64 = n <= 64 ? 0 : n >= 128 ? ~0 : ~0 << (128 - n)
        return (high, low)
    }
}
