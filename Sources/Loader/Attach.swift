import CBalancerABI
import HostSystem
import SystemPackage

/// Loading the embedded datapath object and attaching its programs to a cgroup with pinned
/// bpf_links: the datapath keeps working while no balancer process runs,
/// and attaching again is a no-op. The file system through HostSystem, libbpf through BPFObject.
public enum Attachment {
    /// Makes sure `pinDir` is a directory on a bpffs: creates it under a bpffs parent, mounting
    /// one on the parent first only when the parent is an empty directory (as /sys/fs/bpf is
    /// before anything mounts it) — never over a directory with contents, which it would hide.
    public static func preparePinDir(_ pinDir: String) throws(FileSystemError) {
        if FileSystem.isOn(.bpf, pinDir) == true {
            if let refusal = PinDirectory.unsafeReason(pinDir) { throw FileSystemError("use", path: pinDir, message: refusal) }
            return
        }
        var parent = pinDir
        while parent.hasSuffix("/") && parent.count > 1 { parent.removeLast() }
        if let slash = parent.lastIndex(of: "/") { parent = slash == parent.startIndex ? "/" : String(parent[..<slash]) }
        if FileSystem.isOn(.bpf, parent) != true {
            guard FileSystem.isOn(.bpf, parent) == false else {
                throw FileSystemError("prepare", path: pinDir, message: "\(parent) does not exist")
            }
            guard FileSystem.entries(parent)?.isEmpty == true else {
                throw FileSystemError("prepare", path: pinDir, message: "\(parent) is not a bpffs and not an empty directory to mount one on; "
                                      + "mount one (`mount -t bpf bpf \(parent)`) or choose a pin dir on a bpffs")
            }
            do { try FileSystem.mount("bpf", on: parent, operation: "mount bpffs on") } catch {
                var e = error
                if e.errno == .notPermitted || e.errno == .permissionDenied { e.hint = BPFError.privilegeHint }
                throw e
            }
        }
        try FileSystem.makeDirectory(pinDir)
        if let refusal = PinDirectory.unsafeReason(pinDir) { throw FileSystemError("use", path: pinDir, message: refusal) }
    }

    public struct Result: Sendable {
        public var attached: [String]
        public var alreadyAttached: [String]
        /// Programs whose pinned link ran another version's program, replaced in place.
        public var updated: [String] = []
        /// With host-netns-only: the cookie of the only network namespace translated.
        public var hostNetnsCookie: UInt64?
        /// Translated sockets whose entry (getpeername, UDP stickiness) is kept at once: the
        /// capacity of the pinned bl_reverse.
        public var reverseEntries: Int?
        /// The socket iterators pinned (socket termination), now or before.
        public var iterators: [String] = []
        /// Why socket termination is unavailable, when it is.
        public var terminationUnavailable: String?
    }

    /// Why attaching or detaching failed: the file system (cgroup, pin directories) or libbpf.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case fileSystem(FileSystemError)
        case bpf(BPFError)

        public var description: String {
            switch self {
            case .fileSystem(let e): e.description
            case .bpf(let e): e.description
            }
        }
    }

    /// Loads the embedded object (reusing the maps pinned under `pinDir/maps`, pinning them on
    /// first use) and attaches every program to `cgroup` through links pinned under
    /// `pinDir/links`. `hostNetnsOnly`: only sockets of the network namespace this process runs
    /// in (the host's) are translated from now on; without it, every socket is (an attach sets the
    /// scope either way, also when the programs were attached already).
    /// `translatedSockets`: the capacity of bl_reverse when this attach creates it (an attach over
    /// pins keeps theirs; the result says which).
    public static func attach(cgroup: String, pinDir: String, hostNetnsOnly: Bool = false, translatedSockets: Int? = nil) throws(Failure) -> Result {
        let linksDir = "\(pinDir)/links"
        // The cgroup first: nothing is mounted or created for an attach that cannot happen.
        let cg: FileDescriptor
        do { cg = try FileSystem.open(cgroup, .readOnly, options: .directory, operation: "open cgroup") } catch { throw .fileSystem(error) }
        defer { try? cg.close() }
        let inode: UInt
        do throws(FileSystemError) {
            guard FileSystem.isOn(.cgroup2, cgroup) == true else {
                let hint = cgroup2Root().map { "cgroup2 is mounted at \($0)" } ?? "no cgroup2 filesystem is mounted (mount -t cgroup2 none DIR)"
                throw FileSystemError("attach to", path: cgroup, message: "not a cgroup2 directory; \(hint)")
            }
            try preparePinDir(pinDir)
            inode = UInt(try FileSystem.status(of: cg, path: cgroup, operation: "stat cgroup").st_ino)
            try FileSystem.makeDirectory(linksDir)
            try FileSystem.makeDirectory("\(pinDir)/maps")
        } catch {
            throw .fileSystem(error)
        }
        var cookie: UInt64?
        if hostNetnsOnly {
            do { cookie = try NetworkNamespace.probe("/proc/self/ns/net").cookie } catch { throw .fileSystem(error) }
        }
        do {
            let object = try BPFObject(pinningMapsIn: "\(pinDir)/maps", capacities: translatedSockets.map { ["bl_reverse": $0] } ?? [:])
            // The scope before the programs: a first attach never translates outside it.
            var scope = bl_attach_scope()
            scope.netns_cookie = (cookie ?? 0).littleEndian
            scope.flags = (cookie == nil ? 0 : UInt32(BL_ATTACH_HOST_NETNS_ONLY)).littleEndian
            try BPFMap.pinned("\(pinDir)/maps/bl_attach_scope").update(key: arrayKey(0), value: structBytes(scope))
            var result = Result(attached: [], alreadyAttached: [], hostNetnsCookie: cookie,
                                reverseEntries: try? BPFMap.pinned("\(pinDir)/maps/bl_reverse").info().maxEntries)
            for name in object.programs {
                let pin = "\(linksDir)/cg\(inode)-\(name)"
                if FileSystem.exists(pin) {
                    // Attached by another version of balancer: its program is swapped for this
                    // one's in the same link, atomically.
                    if try object.linkRunsOther(name, pin: pin) {
                        try object.updateLink(name, pin: pin)
                        result.updated.append(name)
                    } else {
                        result.alreadyAttached.append(name)
                    }
                } else {
                    try object.attach(name, cgroupFD: cg.rawValue, cgroup: cgroup, pin: pin)
                    result.attached.append(name)
                }
            }
            // The socket iterators belong to the pin directory, not to a cgroup: one pin each.
            result.terminationUnavailable = object.iteratorsUnavailable
            for name in object.iterators {
                let pin = TerminationIterator.pin(pinDir: pinDir, program: name)
                // An iterator link of another version is pinned anew (an iterator runs only
                // when a loader reads it: nothing is unhooked meanwhile).
                if FileSystem.exists(pin), try object.linkRunsOther(name, pin: pin) { FileSystem.remove(pin) }
                if !FileSystem.exists(pin) { try object.attachIterator(name, pin: pin) }
                result.iterators.append(name)
            }
            return result
        } catch {
            throw .bpf(error)
        }
    }

    /// The link pins under `pinDir/links` ("cg<cgroup inode>-<program>").
    public static func links(pinDir: String) -> [String] {
        (FileSystem.entries("\(pinDir)/links") ?? []).filter { $0.hasPrefix("cg") }
    }

    /// Detaches every program balancer attached to `cgroup` and removes the link pins; with the
    /// last cgroup's links, the socket iterators' pins go too.
    public static func detach(cgroup: String, pinDir: String) throws(Failure) -> [String] {
        let inode: UInt
        do { inode = UInt(try FileSystem.status(cgroup, operation: "stat cgroup").st_ino) } catch { throw .fileSystem(error) }
        let linksDir = "\(pinDir)/links"
        let prefix = "cg\(inode)-"
        guard let entries = FileSystem.entries(linksDir) else { return [] }
        var detached: [String] = []
        for name in entries.filter({ $0.hasPrefix(prefix) }).sorted() {
            let path = "\(linksDir)/\(name)"
            BPFObject.detachLink(pinnedAt: path)
            FileSystem.remove(path)
            detached.append(String(name.dropFirst(prefix.count)))
        }
        if links(pinDir: pinDir).isEmpty {
            for name in (FileSystem.entries(linksDir) ?? []) where name.hasPrefix(TerminationIterator.prefix) {
                FileSystem.remove("\(linksDir)/\(name)")
            }
        }
        return detached
    }

    /// Where cgroup2 is mounted (the first cgroup2 entry of /proc/self/mounts).
    public static func cgroup2Root() -> String? { FileSystem.mountPoint(ofType: "cgroup2") }

    /// Where a loader looks for the network namespaces the datapath serves (socket termination,
    /// skipRedirectFromBackend, client addresses) when not told: the one cgroup the programs
    /// under `pinDir` are attached to (found by the inode its link pins name), else the cgroup2
    /// root (attached to several, or not attached yet). In production the programs are attached
    /// to the root, so the two agree; a test's datapath is searched in its own cgroup only.
    public static func defaultNetnsScope(pinDir: String) -> String? {
        guard let root = cgroup2Root() else { return nil }
        let inodes = Set(links(pinDir: pinDir).compactMap { name -> UInt? in
            guard let dash = name.firstIndex(of: "-") else { return nil }
            return UInt(name.dropFirst(2)[..<dash])
        })
        guard inodes.count == 1, let inode = inodes.first else { return root }
        if let st = try? FileSystem.status(root), UInt(st.st_ino) == inode { return root }
        for s in FileSystem.subpaths(root) where s.hasSuffix("/cgroup.procs") {
            let dir = root + "/" + String(s.dropLast("/cgroup.procs".count))
            if let st = try? FileSystem.status(dir), UInt(st.st_ino) == inode { return dir }
        }
        return root
    }
}
