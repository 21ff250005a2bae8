import FoundationEssentials
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
    }

    /// Makes `bl_skip` hold exactly the namespaces of `targets`' addresses found under `scope`.
    public func syncSkips(_ targets: [(owner: UInt32, address: IPAddress)], scope: String) throws(BPFError) -> SkipReport {
        let map = try BPFMap.pinned("\(pinDir)/maps/bl_skip")
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
                guard let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: path), seen.insert(ns).inserted else { continue }
                guard let probe = try? NetworkNamespace.probe(path) else { continue }
                visited += 1
                for a in probe.addresses {
                    guard let ids = owners[a] else { continue }
                    matched.insert(a)
                    for owner in ids { wanted.insert(Datapath.skipKey(cookie: probe.cookie, owner: owner)) }
                }
            }
        }
        for key in try map.keys(keySize: 16) where !wanted.contains(key) { try map.delete(key: key) }
        for key in wanted { try map.update(key: key, value: [1, 0, 0, 0]) }
        let unmatched = Set(targets.map(\.address)).subtracting(matched).sorted()
        return SkipReport(entries: wanted.count, namespacesVisited: visited, unmatched: unmatched)
    }

    static func skipKey(cookie: UInt64, owner: UInt32) -> [UInt8] {
        var k: [UInt8] = []
        for i in 0..<8 { k.append(UInt8(truncatingIfNeeded: cookie >> (8 * UInt64(i)))) }
        for i in 0..<4 { k.append(UInt8(truncatingIfNeeded: owner >> (8 * UInt32(i)))) }
        return k + [0, 0, 0, 0]
    }

    /// Every process id in the cgroup at `path` and below.
    static func processes(under path: String) -> [Int] {
        var dirs = [path]
        if let subs = try? FileManager.default.subpathsOfDirectory(atPath: path) {
            for s in subs where s.hasSuffix("cgroup.procs") {
                dirs.append(path + "/" + String(s.dropLast("/cgroup.procs".count)))
            }
        }
        var pids: [Int] = []
        for d in Set(dirs).sorted() {
            guard let data = FileManager.default.contents(atPath: d + "/cgroup.procs") else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let pid = Int(line) { pids.append(pid) }
            }
        }
        return pids
    }
}
