import CHostSystem
import SystemPackage

/// Network namespaces, for skipRedirectFromBackend.
public enum NetworkNamespace {
    /// The cookie (what bpf_get_netns_cookie returns for sockets there) and the interface
    /// addresses of the namespace at `path` (a /proc/PID/ns/net), read by a short-lived thread
    /// that enters it; the calling process stays where it is. Addresses are 16 bytes each
    /// (IPv4 as ::ffff:a.b.c.d).
    public static func probe(_ path: String) throws(FileSystemError) -> (cookie: UInt64, addresses: [[UInt8]]) {
        var p = chost_netns_probe()
        let r = chost_probe_netns(path, &p)
        guard r == 0 else { throw FileSystemError("probe network namespace", path: path, Errno(rawValue: -r)) }
        var out: [[UInt8]] = []
        withUnsafeBytes(of: p.addrs) { raw in
            for i in 0..<min(Int(p.count), 64) { out.append(Array(raw[(16 * i)..<(16 * i + 16)])) }
        }
        return (p.cookie, out)
    }
}

extension NetworkNamespace {
    /// The whole output of a BPF socket iterator created from the link `linkFD` inside the
    /// network namespace at `path` (a /proc/PID/ns/net): the kernel's socket iterators walk the
    /// namespace they are created in. Read by a short-lived thread that enters it.
    public static func readIterator(in path: String, linkFD: Int32) throws(FileSystemError) -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>?
        var length = 0
        let r = chost_netns_iter_read(path, linkFD, &data, &length)
        guard r == 0 else { throw FileSystemError("run a socket iterator in", path: path, Errno(rawValue: -r)) }
        defer { chost_free(data) }
        guard let data, length > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: length))
    }
}
