#if canImport(Glibc)
import Glibc
#endif

/// What the input side reads at most.
public struct InputLimits: Sendable {
    /// A file larger than this is refused before it is read. The default holds the largest
    /// cluster dumps seen (a 165,000-endpoint cluster is 324 MB of YAML) with room to spare;
    /// the parse arena's 32-bit offsets put a hard ceiling at 4 GiB.
    public var maxFileBytes: Int

    public static let defaultMaxFileBytes = 1 << 30

    /// `--exclude GLOB`: paths left out of a directory walk (fnmatch): a pattern without "/"
    /// matches an entry's name at any depth, one with "/" the path below the walked directory.
    public var exclude: [String] = []

    public init(maxFileBytes: Int = InputLimits.defaultMaxFileBytes, exclude: [String] = []) {
        self.maxFileBytes = maxFileBytes
        self.exclude = exclude
    }
}

/// Finds and reads manifest files. A tree checked out by git or mounted from a ConfigMap can
/// hold anything: FIFOs (an open blocks forever), sockets, devices (`/dev/zero` never ends),
/// dangling links, directories it cannot list. Nothing here blocks or reads without bound, and
/// nothing is left out silently: a non-regular entry is skipped with a warning naming it, an
/// entry that cannot be read is an error naming it.
enum ManifestFiles {
    struct Listing {
        var files: [String] = []
        var diagnostics: [Diagnostic] = []
    }

    /// Operands are read as given when they are regular files or pipes (`/dev/stdin`, a shell's
    /// `<(kubectl get …)`); directories are walked for `*.yaml`, `*.yml` and `*.json`, hidden
    /// entries (".git", a ConfigMap volume's "..data") skipped, symbolic links followed.
    static func expand(_ paths: [String], exclude: [String] = []) -> Listing {
        var listing = Listing()
        var seen = Set<DirID>()
        for p in paths {
            var st = stat()
            guard stat(p, &st) == 0 else {
                listing.diagnostics.append(unreachable(p, errno))
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: walk(p, root: p, exclude: exclude, into: &listing, seen: &seen)
            case S_IFREG, S_IFIFO: listing.files.append(p)
            default: listing.diagnostics.append(Diagnostic(.error, file: p, message: "cannot read: \(typeName(st.st_mode)), not a file"))
            }
        }
        listing.files = Array(Set(listing.files)).sorted()
        return listing
    }

    /// Directories already walked, by device and inode: a symlink cycle is walked once.
    struct DirID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// Files of a GitOps tree that are YAML but not Kubernetes objects, skipped with a note.
    static let notObjects: Set<String> = ["kustomization.yaml", "kustomization.yml", "values.yaml", "values.yml", "values.schema.json", "mkdocs.yml"]

    /// Whether `--exclude` leaves `path` (below the walked `root`) out.
    static func excluded(_ path: String, name: String, root: String, patterns: [String]) -> Bool {
        guard !patterns.isEmpty else { return false }
        var relative = Substring(path)
        if path.hasPrefix(root) { relative = path.dropFirst(root.count).drop { $0 == "/" } }
        for p in patterns {
            if p.contains("/") {
                if fnmatch(p, String(relative), 0) == 0 { return true }
            } else if fnmatch(p, name, 0) == 0 {
                return true
            }
        }
        return false
    }

    private static func walk(_ dir: String, root: String, exclude: [String], into listing: inout Listing, seen: inout Set<DirID>) {
        var dst = stat()
        guard stat(dir, &dst) == 0 else {
            listing.diagnostics.append(unreachable(dir, errno))
            return
        }
        guard seen.insert(DirID(device: UInt64(dst.st_dev), inode: UInt64(dst.st_ino))).inserted else { return }
        let entries: [String]
        do {
            entries = try names(in: dir)
        } catch {
            listing.diagnostics.append(Diagnostic(.error, file: dir, message: "cannot list the directory: \(error.text)"))
            return
        }
        // A Helm chart's directory holds templates, not objects.
        if entries.contains("Chart.yaml") && dir != root {
            listing.diagnostics.append(Diagnostic(.note, file: dir, message: "skipped: a Helm chart (Chart.yaml), not Kubernetes objects"))
            return
        }
        for name in entries.sorted() where !name.hasPrefix(".") {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            if excluded(path, name: name, root: root, patterns: exclude) {
                listing.diagnostics.append(Diagnostic(.note, file: path, message: "skipped: --exclude"))
                continue
            }
            if notObjects.contains(name) || name == "Chart.yaml" {
                listing.diagnostics.append(Diagnostic(.note, file: path, message: "skipped: \(name == "Chart.yaml" ? "a Helm chart's" : "a") \(name), not Kubernetes objects"))
                continue
            }
            var st = stat()
            guard stat(path, &st) == 0 else {
                listing.diagnostics.append(unreachable(path, errno))
                continue
            }
            let manifest = name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json")
            switch st.st_mode & S_IFMT {
            case S_IFDIR: walk(path, root: root, exclude: exclude, into: &listing, seen: &seen)
            case S_IFREG: if manifest { listing.files.append(path) }
            default:
                if manifest {
                    listing.diagnostics.append(Diagnostic(.warning, file: path, message: "skipped: \(typeName(st.st_mode)), not a regular file"))
                }
            }
        }
    }

    /// Why `stat` failed, named: a dangling link is not a missing file.
    private static func unreachable(_ path: String, _ code: Int32) -> Diagnostic {
        var lst = stat()
        if lstat(path, &lst) == 0, (lst.st_mode & S_IFMT) == S_IFLNK {
            let target = linkTarget(path).map { " to \(shown($0))" } ?? ""
            let why = code == ENOENT ? "dangling symbolic link\(target)" : "symbolic link\(target): \(Errno(code).text)"
            return Diagnostic(.error, file: path, message: "cannot read: \(why)")
        }
        return Diagnostic(.error, file: path, message: "cannot read: \(Errno(code).text)")
    }

    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func typeName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFDIR: "a directory"
        default: "not a regular file"
        }
    }

    private static func names(in dir: String) throws(Errno) -> [String] {
        guard let d = opendir(dir) else { throw Errno(errno) }
        defer { closedir(d) }
        var out: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(d) else {
                if errno != 0 { throw Errno(errno) }
                return out
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
    }

    /// Reads a whole file, refusing more than `limit` bytes. A regular file is sized first and
    /// refused before any byte is read; a pipe is read until its end or past the limit. The open
    /// does not block (a FIFO swapped in after the listing), and a file that turns out not to
    /// be regular or a pipe is refused.
    static func read(_ path: String, limit: Int) throws(Diagnostic) -> [UInt8] {
        func failure(_ message: String) -> Diagnostic { Diagnostic(.error, file: path, message: message) }
        var st = stat()
        let isPipe = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
        // A pipe named on the command line is opened blocking: its writer may still be starting.
        let fd = open(path, O_RDONLY | O_CLOEXEC | (isPipe ? 0 : O_NONBLOCK))
        guard fd >= 0 else { throw failure("cannot read: \(Errno(errno).text)") }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw failure("cannot read: \(Errno(errno).text)") }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFIFO else { throw failure("cannot read: \(typeName(st.st_mode)), not a file") }
        if type == S_IFREG, Int(st.st_size) > limit { throw tooLarge(path, Int(st.st_size), limit) }
        if type == S_IFIFO, !isPipe { throw failure("cannot read: a FIFO appeared in place of a regular file") }
        var out: [UInt8] = []
        if type == S_IFREG {
            // One allocation of the file's size, read in place (manifests can be hundreds of MB).
            let size = Int(st.st_size)
            var failed: Int32 = 0
            out = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                count = 0
                while count < size {
                    let n = Glibc.read(fd, buffer.baseAddress.map { $0 + count }, size - count)
                    if n < 0 {
                        if errno == EINTR { continue }
                        failed = errno
                        return
                    }
                    if n == 0 { break }
                    count += n
                }
            }
            if failed != 0 { throw failure("cannot read: \(Errno(failed).text)") }
        }
        // A pipe, or a file that grew while it was read: the rest, within the limit.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read: \(Errno(errno).text)")
            }
            if n == 0 { break }
            if out.count + n > limit { throw tooLarge(path, out.count + n, limit, atLeast: true) }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    private static func tooLarge(_ path: String, _ size: Int, _ limit: Int, atLeast: Bool = false) -> Diagnostic {
        Diagnostic(.error, file: path, message: "file is \(atLeast ? "over " : "")\(size) bytes, more than the limit of \(limit) (--max-file-bytes raises it)")
    }
}

/// An errno value with its text.
struct Errno: Error {
    var code: Int32
    init(_ code: Int32) { self.code = code }
    var text: String { String(cString: strerror(code)) }
}
