import CBalancerABI
import HostSystem
import MapImage

/// skipRedirectFromBackend: which network namespaces on this host are a policy's own backend
/// pods. The image names the backends' addresses (per node); only the host can say which
/// namespace holds an address, so the loader looks: every process under a cgroup subtree (the
/// one the datapath is attached to, in production the cgroup2 root) is visited once per
/// namespace, and a namespace holding a backend address is written to `bl_skip` with the
/// policy's id. The datapath compares the connecting socket's namespace cookie with it.
extension Datapath {
    public struct SkipReport: Sendable {
        /// (policy id, netns cookie) written.
        public var entries: Int
        public var namespacesVisited: Int
        /// Backend addresses no namespace under the scope holds (pods not started yet, or
        /// outside the scope).
        public var unmatched: [IPAddress]
        /// The namespaces under the scope when it ran ("net:[inode]"): a watcher compares them
        /// with `namespaces(under:)` to notice a pod restarted in a new namespace.
        public var namespaces: Set<String> = []
    }

    /// Makes `bl_skip` hold exactly the namespaces of `targets`' addresses found under `scope`.
    public func syncSkips(_ targets: [(owner: UInt32, address: IPAddress)], scope: String) throws(BPFError) -> SkipReport {
        let map = try backend.pinned("\(pinDir)/maps/bl_skip")
        var wanted = Set<[UInt8]>()
        var visited = 0
        var matched = Set<IPAddress>()
        if !targets.isEmpty {
            var owners: [IPAddress: Set<UInt32>] = [:]
            for t in targets { owners[t.address, default: []].insert(t.owner) }
            var seen = Set<String>()
            for pid in Datapath.processes(under: scope) {
                let path = "/proc/\(pid)/ns/net"
                // The link's text ("net:[inode]") names the namespace: visit each once.
                guard let ns = FileSystem.linkTarget(path), seen.insert(ns).inserted else { continue }
                guard let probe = try? NetworkNamespace.probe(path) else { continue }
                visited += 1
                for a in probe.addresses.compactMap({ IPAddress(bytes: $0[...]) }) {
                    guard let ids = owners[a] else { continue }
                    matched.insert(a)
                    for owner in ids { wanted.insert(Datapath.skipKey(cookie: probe.cookie, owner: owner)) }
                }
            }
        }
        for key in try map.keys(keySize: MemoryLayout<bl_skip_key>.size) where !wanted.contains(key) { try map.delete(key: key) }
        for key in wanted { try map.update(key: key, value: Datapath.skipPresent) }
        let unmatched = Set(targets.map(\.address)).subtracting(matched).sorted()
        return SkipReport(entries: wanted.count, namespacesVisited: visited, unmatched: unmatched,
                          namespaces: targets.isEmpty ? [] : Datapath.namespaces(under: scope))
    }

    /// The network namespaces ("net:[inode]") of the processes in the cgroup at `path` and below.
    public static func namespaces(under path: String) -> Set<String> {
        Set(processes(under: path).compactMap { FileSystem.linkTarget("/proc/\($0)/ns/net") })
    }

    /// Every process id in the cgroup at `path` and below.
    static func processes(under path: String) -> [Int] {
        var dirs = [path]
        for s in FileSystem.subpaths(path) where s.hasSuffix("/cgroup.procs") {
            dirs.append(path + "/" + String(s.dropLast("/cgroup.procs".count)))
        }
        var pids: [Int] = []
        for d in Set(dirs).sorted() {
            guard let data = try? FileContents.read(d + "/cgroup.procs") else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let pid = Int(line) { pids.append(pid) }
            }
        }
        return pids
    }
}
