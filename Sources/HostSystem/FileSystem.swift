import CHostSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The file-system calls of the project, each wrapped once: a typed error naming the path, and
/// file descriptors owned by swift-system's `FileDescriptor`.
public enum FileSystem {
    /// Opens a file, close-on-exec. `operation` names the attempt in the error ("open cgroup").
    public static func open(_ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [],
                            permissions: FilePermissions? = nil, operation: String? = nil) throws(FileSystemError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), mode, options: options.union(.closeOnExec), permissions: permissions)
        } catch {
            throw FileSystemError(operation, path: path, error as? Errno ?? .ioError)
        }
    }

    /// fstat(2) of an open file.
    public static func status(of fd: FileDescriptor, path: String, operation: String? = nil) throws(FileSystemError) -> stat {
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { throw FileSystemError(operation, path: path, .last) }
        return st
    }

    /// stat(2) of a path (following symbolic links).
    public static func status(_ path: String, operation: String? = nil) throws(FileSystemError) -> stat {
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileSystemError(operation, path: path, .last) }
        return st
    }

    /// Whether something exists at `path`.
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates a directory; one that exists already is not an error.
    public static func makeDirectory(_ path: String, permissions: FilePermissions = FilePermissions(rawValue: 0o700)) throws(FileSystemError) {
        if mkdir(path, permissions.rawValue) != 0 && Glibc.errno != EEXIST { throw FileSystemError("create", path: path, .last) }
    }

    /// Removes a file; errors are ignored (the caller only wants it gone).
    public static func remove(_ path: String) { unlink(path) }

    /// The names in a directory (without "." and ".."); nil when it cannot be read.
    public static func entries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Mounts a file system of `type` on `path`.
    public static func mount(_ type: String, on path: String, operation: String? = nil) throws(FileSystemError) {
        if Glibc.mount(type, path, type, 0, nil) != 0 { throw FileSystemError(operation, path: path, .last) }
    }

    /// The target of a symbolic link.
    /// Points the symbolic link `path` at `target` in one step: a reader sees the old link or the
    /// new one, never none (a temporary link in the same directory, renamed over).
    public static func replaceLink(_ path: String, to target: String) throws(FileSystemError) {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let temporary = "\(path[..<slash]).\(path[slash...]).\(getpid())"  // hidden, beside it
        unlink(temporary)
        guard symlink(target, temporary) == 0 else { throw FileSystemError("symlink", path: temporary, Errno(rawValue: errno)) }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw FileSystemError("rename to", path: path, Errno(rawValue: e))
        }
    }

    public static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Kinds of file systems the loader checks for (statfs f_type).
    public enum Kind: Int {
        case bpf = 0xcafe4a11  // BPF_FS_MAGIC
        case cgroup2 = 0x63677270  // CGROUP2_SUPER_MAGIC
    }

    /// Whether `path` is on a file system of `kind` (nil when it cannot be examined, e.g. it
    /// does not exist).
    public static func isOn(_ kind: Kind, _ path: String) -> Bool? {
        var magic: Int64 = 0
        guard chost_fs_magic(path, &magic) == 0 else { return nil }
        return Int(magic) == kind.rawValue
    }

    /// Where the first file system of `type` is mounted (from /proc/self/mounts).
    public static func mountPoint(ofType type: String) -> String? {
        guard let data = try? FileContents.read("/proc/self/mounts") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 2 && f[2] == type { return String(f[1]) }
        }
        return nil
    }

    /// Every file under `path`, as paths relative to it (directories first visited, then their
    /// contents; symbolic links are not followed).
    public static func subpaths(_ path: String) -> [String] {
        var out: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            guard let names = entries(relative.isEmpty ? path : path + "/" + relative) else { continue }
            for name in names.sorted() {
                let sub = relative.isEmpty ? name : relative + "/" + name
                out.append(sub)
                var st = stat()
                if lstat(path + "/" + sub, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { pending.append(sub) }
            }
        }
        return out
    }
}
