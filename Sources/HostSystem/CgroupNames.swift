#if canImport(Glibc)
import Glibc
#endif

/// cgroup ids (what bpf_get_current_cgroup_id returns: the cgroup2 directory's inode) to paths
/// under the cgroup2 root, and the pod a kubelet cgroup path names.
public final class CgroupNames {
    public let root: String?
    private var paths: [UInt64: String] = [:]
    private var scannedAt: UInt64 = 0

    public init(root: String?) { self.root = root }

    /// The path of cgroup `id` relative to the cgroup2 root ("/" for the root); rescanned at most
    /// once a second for an id not seen yet.
    public func path(of id: UInt64) -> String? {
        if let p = paths[id] { return p }
        let now = CgroupNames.monotonicNow()
        guard let root, now - scannedAt > 1_000_000_000 else { return nil }
        scannedAt = now
        var found: [UInt64: String] = [:]
        var dirs = [""]
        for s in FileSystem.subpaths(root) where s.hasSuffix("/cgroup.procs") { dirs.append("/" + String(s.dropLast("/cgroup.procs".count))) }
        for d in dirs {
            guard let st = try? FileSystem.status(root + d) else { continue }
            found[UInt64(st.st_ino)] = d.isEmpty ? "/" : d
        }
        paths = found
        return found[id]
    }

    /// The pod UID in a kubelet cgroup path: `.../kubepods-burstable-pod<uid with _>.slice/...`
    /// (systemd driver) or `.../kubepods/burstable/pod<uid>/...` (cgroupfs driver).
    public static func podUID(_ path: String) -> String? {
        for component in path.split(separator: "/").reversed() {
            // What follows the last "pod" of the component.
            let chars = Array(component.utf8)
            var start: Int?
            if chars.count >= 3 {
                for i in stride(from: chars.count - 3, through: 0, by: -1) where chars[i] == UInt8(ascii: "p") && chars[i + 1] == UInt8(ascii: "o") && chars[i + 2] == UInt8(ascii: "d") {
                    start = i + 3
                    break
                }
            }
            guard let start else { continue }
            var tail = Array(chars[start...])
            let slice = Array(".slice".utf8)
            if tail.count >= slice.count && Array(tail.suffix(slice.count)) == slice { tail.removeLast(slice.count) }
            tail = tail.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }
            let uid = String(decoding: tail, as: UTF8.self).lowercased()
            let groups = uid.split(separator: Character("-"), omittingEmptySubsequences: false).map { (part: Substring) in part.count }
            let hex = uid.utf8.allSatisfy { $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
            if groups == [8, 4, 4, 4, 12] && hex { return uid }
        }
        return nil
    }

    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
