import FoundationEssentials
import CBalancerBPF
import CLibbpf

#if canImport(Glibc)
import Glibc
#endif

/// Loading the embedded datapath object and attaching its programs to a cgroup with pinned
/// bpf_links (DESIGN.md decision 8): the datapath keeps working while no balancer process runs,
/// and attaching again is a no-op. Part of the libbpf wrapper layer.
public enum Attachment {
    /// Makes sure `pinDir` is a directory on a bpffs: creates it under a bpffs parent, mounting
    /// one on the parent first only when the parent is an empty directory (as /sys/fs/bpf is
    /// before anything mounts it) — never over a directory with contents, which it would hide.
    public static func preparePinDir(_ pinDir: String) throws(BPFError) {
        if BPFFS.isBPFFS(pinDir) == true { return }
        var parent = pinDir
        while parent.hasSuffix("/") && parent.count > 1 { parent.removeLast() }
        if let slash = parent.lastIndex(of: "/") { parent = slash == parent.startIndex ? "/" : String(parent[..<slash]) }
        if BPFFS.isBPFFS(parent) != true {
            guard BPFFS.isBPFFS(parent) == false else {
                throw BPFError("prepare", pinDir, message: "\(parent) does not exist")
            }
            guard (try? FileManager.default.contentsOfDirectory(atPath: parent))?.isEmpty == true else {
                throw BPFError("prepare", pinDir, message: "\(parent) is not a bpffs and not an empty directory to mount one on; "
                               + "mount one (`mount -t bpf bpf \(parent)`) or choose a pin dir on a bpffs")
            }
            if mount("bpf", parent, "bpf", 0, nil) != 0 {
                throw BPFError("mount bpffs on", parent, -errno)
            }
        }
        if mkdir(pinDir, 0o700) != 0 && errno != EEXIST {
            throw BPFError("create", pinDir, message: String(cString: strerror(errno)))
        }
    }

    public struct Result: Sendable {
        public var attached: [String]
        public var alreadyAttached: [String]
    }

    /// Loads the embedded object (reusing the maps pinned under `pinDir/maps`, pinning them on
    /// first use) and attaches every program to `cgroup` through links pinned under
    /// `pinDir/links`.
    public static func attach(cgroup: String, pinDir: String) throws(BPFError) -> Result {
        // The cgroup first: nothing is mounted or created for an attach that cannot happen.
        let cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cg >= 0 else { throw BPFError("open cgroup", cgroup, message: String(cString: strerror(errno))) }
        defer { close(cg) }
        guard clibbpf_is_cgroup2(cgroup) == 1 else {
            let hint = cgroup2Root().map { "cgroup2 is mounted at \($0)" } ?? "no cgroup2 filesystem is mounted (mount -t cgroup2 none DIR)"
            throw BPFError("attach to", cgroup, message: "not a cgroup2 directory; \(hint)")
        }
        try preparePinDir(pinDir)
        var st = stat()
        guard fstat(cg, &st) == 0 else { throw BPFError("stat cgroup", cgroup, message: String(cString: strerror(errno))) }
        let linksDir = "\(pinDir)/links"
        if mkdir(linksDir, 0o700) != 0 && errno != EEXIST {
            throw BPFError("create", linksDir, message: String(cString: strerror(errno)))
        }
        if mkdir("\(pinDir)/maps", 0o700) != 0 && errno != EEXIST {
            throw BPFError("create", "\(pinDir)/maps", message: String(cString: strerror(errno)))
        }

        guard let obj = clibbpf_open_mem(bl_bpf_object_bytes(), bl_bpf_object_length()) else {
            throw BPFError("open embedded object", "balancer.bpf.o", -errno)
        }
        defer { bpf_object__close(obj) }
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            let name = String(cString: bpf_map__name(m))
            let r = bpf_map__set_pin_path(m, "\(pinDir)/maps/\(name)")
            guard r == 0 else { throw BPFError("set pin path of", name, r) }
            map = bpf_object__next_map(obj, m)
        }
        let loaded = bpf_object__load(obj)
        guard loaded == 0 else { throw BPFError("load datapath programs", "(verifier log above)", loaded) }

        var result = Result(attached: [], alreadyAttached: [])
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            let name = String(cString: bpf_program__name(p))
            let pin = "\(linksDir)/cg\(st.st_ino)-\(name)"
            if access(pin, F_OK) == 0 {
                result.alreadyAttached.append(name)
            } else {
                guard let link = bpf_program__attach_cgroup(p, cg) else {
                    throw BPFError("attach \(name) to", cgroup, -errno)
                }
                let r = bpf_link__pin(link, pin)
                if r != 0 {
                    bpf_link__destroy(link)
                    throw BPFError("pin link", pin, r)
                }
                // The pinned link keeps the attachment; our reference can go.
                bpf_link__destroy(link)
                result.attached.append(name)
            }
            prog = bpf_object__next_program(obj, p)
        }
        return result
    }

    /// The link pins under `pinDir/links` ("cg<cgroup inode>-<program>").
    public static func links(pinDir: String) -> [String] {
        guard let dir = opendir("\(pinDir)/links") else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("cg") { names.append(name) }
        }
        return names
    }

    /// Detaches every program balancer attached to `cgroup` and removes the link pins.
    public static func detach(cgroup: String, pinDir: String) throws(BPFError) -> [String] {
        var st = stat()
        guard stat(cgroup, &st) == 0 else { throw BPFError("stat cgroup", cgroup, message: String(cString: strerror(errno))) }
        let linksDir = "\(pinDir)/links"
        let prefix = "cg\(st.st_ino)-"
        guard let dir = opendir(linksDir) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { names.append(name) }
        }
        closedir(dir)
        var detached: [String] = []
        for name in names.sorted() {
            let path = "\(linksDir)/\(name)"
            let fd = bpf_obj_get(path)
            if fd >= 0 {
                _ = bpf_link_detach(fd)
                close(fd)
            }
            unlink(path)
            detached.append(String(name.dropFirst(prefix.count)))
        }
        return detached
    }

    /// Where cgroup2 is mounted (the first cgroup2 entry of /proc/self/mounts).
    public static func cgroup2Root() -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/self/mounts") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 2 && f[2] == "cgroup2" { return String(f[1]) }
        }
        return nil
    }
}
