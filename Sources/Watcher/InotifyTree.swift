import CInotify
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// inotify on a directory tree: every directory of it (following symlinked directories as the
/// compiler's reader does) and the root's parent, where a root swapped by rename shows (events
/// there about other names are left out). Shared by `watch --dir` and the directories of
/// `watch --cluster NAME=DIR`.
final class InotifyTree {
    let root: String
    private var fd: Int32 = -1
    private var parentWatch: Int32 = -1
    private var rootName = ""

    init(root: String) throws(WatchError) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        let opened = cinotify_open()
        guard opened >= 0 else { throw WatchError("inotify", r, -opened) }
        fd = opened
        rewatch()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The events of up to `timeoutMs` (0: what is there now).
    func wait(timeoutMs: Int32) throws(WatchError) -> cinotify_batch {
        var batch = cinotify_batch()
        let r = cinotify_wait(fd, timeoutMs, parentWatch, rootName, &batch)
        guard r == 0 else { throw WatchError("read inotify events for", root, -r) }
        return batch
    }

    /// Watches the root's parent and every directory of the tree again (watching an inode
    /// again is a no-op): re-walked after every change, not only on structural events, since a
    /// symlink flipped to another directory (`..data`, `current -> v2`) is not one.
    func rewatch() {
        var parent = root
        if let slash = parent.lastIndex(of: "/") {
            rootName = String(root[root.index(after: slash)...])
            parent = slash == parent.startIndex ? "/" : String(parent[..<slash])
        } else {
            rootName = root
            parent = "."
        }
        parentWatch = cinotify_watch(fd, parent)
        var seen = Set<String>()
        var stack = [root]
        while let dir = stack.popLast() {
            let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: dir)).map { $0.hasPrefix("/") ? $0 : dir + "/../" + $0 } ?? dir
            guard seen.insert(real).inserted, seen.count < 100_000 else { continue }
            guard cinotify_watch(fd, dir) >= 0 else { continue }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for n in names {
                var st = stat()
                if stat(dir + "/" + n, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { stack.append(dir + "/" + n) }
            }
        }
    }
}
