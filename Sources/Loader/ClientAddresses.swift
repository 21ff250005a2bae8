import CBalancerABI
import HostSystem
import MapImage

/// loadBalancerSourceRanges: the datapath checks a client's address, but a socket has none before
/// it connects. kube-proxy sees the packet's source: a pod's IP, or for the host one of the node's
/// addresses. Those are the addresses of the client's network namespace, so the loader writes
/// every namespace's own addresses (bl_client_addrs, keyed by netns cookie) as it finds them under
/// a cgroup subtree, as it does for skipRedirectFromBackend.
extension Datapath {
    public struct ClientAddressReport: Sendable {
        /// Namespaces written.
        public var entries: Int
        /// The namespaces under the scope ("net:[inode]"), for a watcher to notice new ones.
        public var namespaces: Set<String>
    }

    /// Makes bl_client_addrs hold exactly the addresses of the namespaces under `scope` (nothing
    /// when `wanted` is false: no source ranges in the live image).
    public func syncClientAddresses(scope: String, wanted: Bool = true) throws(BPFError) -> ClientAddressReport {
        let map = try backend.pinned("\(pinDir)/maps/bl_client_addrs")
        var entries: [[UInt8]: [UInt8]] = [:]
        var seen = Set<String>()
        if wanted {
            for pid in Datapath.processes(under: scope) {
                let path = "/proc/\(pid)/ns/net"
                guard let ns = FileSystem.linkTarget(path), seen.insert(ns).inserted,
                      let probe = try? NetworkNamespace.probe(path) else { continue }
                let usable = probe.addresses.compactMap { IPAddress(bytes: $0[...]) }.filter(Datapath.isClientAddress)
                var value = bl_client_value()
                withUnsafeMutableBytes(of: &value.addrs) { raw in
                    for (i, a) in usable.prefix(Int(BL_CLIENT_ADDRS)).enumerated() {
                        raw.storeBytes(of: a.high.bigEndian, toByteOffset: 16 * i, as: UInt64.self)
                        raw.storeBytes(of: a.low.bigEndian, toByteOffset: 16 * i + 8, as: UInt64.self)
                    }
                }
                value.count = UInt32(min(usable.count, Int(BL_CLIENT_ADDRS))).littleEndian
                entries[structBytes(bl_client_key(netns_cookie: probe.cookie.littleEndian))] = structBytes(value)
            }
        }
        for key in try map.keys(keySize: MemoryLayout<bl_client_key>.size) where entries[key] == nil { try map.delete(key: key) }
        for (key, value) in entries { try map.update(key: key, value: value) }
        return ClientAddressReport(entries: entries.count, namespaces: seen)
    }

    /// An address a connect can come from, as seen beyond the node: not loopback, not link-local.
    static func isClientAddress(_ a: IPAddress) -> Bool {
        if a.isIPv4 {
            let b = a.ipv4Bytes
            return b[0] != 127 && !(b[0] == 169 && b[1] == 254) && a != IPAddress(ipv4: 0, 0, 0, 0)
        }
        let first = a.high >> 48
        return a != IPAddress(high: 0, low: 1) && first & 0xFFC0 != 0xFE80 && !a.isUnspecified
    }
}
