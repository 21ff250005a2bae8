import CBalancerBPF
import CLibbpf

#if canImport(Glibc)
import Glibc
#endif

// The libbpf object layer (with BPF.swift, the only files of the loader that call libbpf): the
// embedded datapath object opened, its maps pinned, its programs loaded and attached through
// links, and links detached.

/// The datapath object embedded in the binary, opened with libbpf.
final class BPFObject {
    private let object: OpaquePointer
    /// Why the socket iterators were not loaded, when they were not.
    let iteratorsUnavailable: String?

    /// Opens the embedded object with every map pinned at `<mapsDir>/<name>` (reused when a pin
    /// exists, created and pinned otherwise), and loads its programs. `capacities`: max entries
    /// of maps by name, for maps created now (a pinned map keeps its own).
    init(pinningMapsIn mapsDir: String, capacities: [String: Int] = [:]) throws(BPFError) {
        guard let obj = clibbpf_open_mem(bl_bpf_object_bytes(), bl_bpf_object_length()) else {
            throw BPFError("open embedded object", "balancer.bpf.o", -errno)
        }
        // `object` is set only once everything succeeded: a failed init closes the object here,
        // and deinit (which runs for a fully initialized object) never closes it a second time.
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            let name = String(cString: bpf_map__name(m))
            let path = "\(mapsDir)/\(name)"
            if let n = capacities[name], bpf_map__set_max_entries(m, UInt32(clamping: n)) != 0 {
                bpf_object__close(obj)
                throw BPFError("set the capacity of", name, message: "\(n) entries refused")
            }
            let r = bpf_map__set_pin_path(m, path)
            guard r == 0 else {
                bpf_object__close(obj)
                throw BPFError("set pin path of", name, r)
            }
            do { try Self.adoptPinnedCapacity(m, name: name, path: path) } catch {
                bpf_object__close(obj)
                throw error
            }
            map = bpf_object__next_map(obj, m)
        }
        // The socket iterators need the bpf_sock_destroy kfunc (Linux 6.5): without it they are
        // not loaded, and the rest of the datapath works as before (socket termination off).
        var unavailable: String?
        if !BPFFeatures.kernelHas(function: "bpf_sock_destroy") {
            unavailable = "this kernel lacks bpf_sock_destroy (Linux 6.5 or later): sockets to removed backends are not terminated"
            var prog = bpf_object__next_program(obj, nil)
            while let p = prog {
                if Self.isIterator(p) { bpf_program__set_autoload(p, false) }
                prog = bpf_object__next_program(obj, p)
            }
        }
        iteratorsUnavailable = unavailable
        let loaded = bpf_object__load(obj)
        guard loaded == 0 else {
            bpf_object__close(obj)
            throw BPFError("load datapath programs", "(verifier log above)", loaded)
        }
        object = obj
    }

    deinit { bpf_object__close(object) }

    /// Loads the embedded datapath into the kernel with nothing pinned and nothing attached, then
    /// unloads it: the verifier's verdict on this kernel (`balancer version --check`). Returns the
    /// programs loaded; the iterators are left out, as an attach leaves them out, when the kernel
    /// lacks bpf_sock_destroy.
    static func loadOnce() throws(BPFError) -> [String] {
        guard let obj = clibbpf_open_mem(bl_bpf_object_bytes(), bl_bpf_object_length()) else {
            throw BPFError("open embedded object", "balancer.bpf.o", -errno)
        }
        defer { bpf_object__close(obj) }
        let iterators = BPFFeatures.kernelHas(function: "bpf_sock_destroy")
        var names: [String] = []
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            if isIterator(p) && !iterators { bpf_program__set_autoload(p, false) } else { names.append(String(cString: bpf_program__name(p))) }
            prog = bpf_object__next_program(obj, p)
        }
        let loaded = bpf_object__load(obj)
        guard loaded == 0 else { throw BPFError("load datapath programs", "(verifier log above)", loaded) }
        return names
    }

    /// A map pinned by an earlier attach (another version of balancer) is reused as it is: when
    /// only its capacity differs from this object's (runtime state sized differently, as
    /// bl_reverse grew when TCP sockets got entries), this object takes the pinned capacity, so an
    /// upgraded agent attaches over its predecessor's pins; libbpf would refuse the reuse. Record
    /// sizes that differ are a different layout: refused, saying how to start afresh.
    private static func adoptPinnedCapacity(_ m: OpaquePointer, name: String, path: String) throws(BPFError) {
        guard let pinned = try? BPFMap.pinned(path), let info = try? pinned.info() else { return }
        let keySize = Int(bpf_map__key_size(m)), valueSize = Int(bpf_map__value_size(m))
        guard info.keySize == keySize, info.valueSize == valueSize else {
            throw BPFError("reuse pinned map", path, message: "it was made by another version of balancer (key/value \(info.keySize)/\(info.valueSize) bytes, "
                           + "this version's \(keySize)/\(valueSize)); detach, remove the pin directory's maps/\(name), and attach again")
        }
        if info.maxEntries != Int(bpf_map__max_entries(m)) {
            let r = bpf_map__set_max_entries(m, UInt32(info.maxEntries))
            guard r == 0 else { throw BPFError("take the pinned capacity of", name, r) }
        }
    }

    /// The cgroup programs' names, in the object's order.
    var programs: [String] { programNames { !Self.isIterator($0) } }

    /// The socket iterators loaded (none when the kernel lacks what they need).
    var iterators: [String] { iteratorsUnavailable == nil ? programNames(Self.isIterator) : [] }

    private func programNames(_ include: (OpaquePointer) -> Bool) -> [String] {
        var names: [String] = []
        var prog = bpf_object__next_program(object, nil)
        while let p = prog {
            if include(p) { names.append(String(cString: bpf_program__name(p))) }
            prog = bpf_object__next_program(object, p)
        }
        return names
    }

    private static func isIterator(_ p: OpaquePointer) -> Bool {
        bpf_program__type(p) == BPF_PROG_TYPE_TRACING && bpf_program__expected_attach_type(p) == BPF_TRACE_ITER
    }

    /// Creates a link for the iterator program `name` and pins it at `pin`: an iterator runs only
    /// when a reader creates one from the link (Datapath.terminateStaleSockets).
    func attachIterator(_ name: String, pin: String) throws(BPFError) {
        guard let p = bpf_object__find_program_by_name(object, name) else { throw BPFError("attach iterator", name, -ENOENT) }
        guard let link = bpf_program__attach_iter(p, nil) else { throw BPFError("attach iterator", name, -errno) }
        let r = bpf_link__pin(link, pin)
        bpf_link__destroy(link)
        if r != 0 { throw BPFError("pin link", pin, r) }
    }

    /// Attaches the program `name` to the cgroup open as `cgroupFD` (named `cgroup` in errors)
    /// and pins the link at `pin`; the pinned link keeps the attachment.
    func attach(_ name: String, cgroupFD: Int32, cgroup: String, pin: String) throws(BPFError) {
        guard let p = bpf_object__find_program_by_name(object, name) else {
            throw BPFError("attach \(name) to", cgroup, -ENOENT)
        }
        guard let link = bpf_program__attach_cgroup(p, cgroupFD) else {
            throw BPFError("attach \(name) to", cgroup, -errno)
        }
        let r = bpf_link__pin(link, pin)
        // The pinned link keeps the attachment; our reference can go.
        bpf_link__destroy(link)
        if r != 0 { throw BPFError("pin link", pin, r) }
    }

    /// Whether the link pinned at `pin` runs a program other than this object's `name` (another
    /// version of balancer attached it): compared by the kernel's tag of the instructions.
    func linkRunsOther(_ name: String, pin: String) throws(BPFError) -> Bool {
        guard let p = bpf_object__find_program_by_name(object, name) else { throw BPFError("find program", name, -ENOENT) }
        let linkFD = bpf_obj_get(pin)
        guard linkFD >= 0 else { throw BPFError("open pinned link", pin, linkFD) }
        defer { close(linkFD) }
        var link = bpf_link_info()
        var len = UInt32(MemoryLayout<bpf_link_info>.size)
        var r = bpf_obj_get_info_by_fd(linkFD, &link, &len)
        guard r == 0 else { throw BPFError("read link", pin, r) }
        let current = bpf_prog_get_fd_by_id(link.prog_id)
        guard current >= 0 else { throw BPFError("open the program of link", pin, current) }
        defer { close(current) }
        var old = bpf_prog_info(), new = bpf_prog_info()
        len = UInt32(MemoryLayout<bpf_prog_info>.size)
        r = bpf_obj_get_info_by_fd(current, &old, &len)
        guard r == 0 else { throw BPFError("read the program of link", pin, r) }
        len = UInt32(MemoryLayout<bpf_prog_info>.size)
        r = bpf_obj_get_info_by_fd(bpf_program__fd(p), &new, &len)
        guard r == 0 else { throw BPFError("read program", name, r) }
        return withUnsafeBytes(of: old.tag) { Array($0) } != withUnsafeBytes(of: new.tag) { Array($0) }
    }

    /// Replaces the program of the cgroup link pinned at `pin` with this object's `name`, in one
    /// step (bpf_link_update): no connect goes unhooked while an upgrade attaches.
    func updateLink(_ name: String, pin: String) throws(BPFError) {
        guard let p = bpf_object__find_program_by_name(object, name) else { throw BPFError("find program", name, -ENOENT) }
        let linkFD = bpf_obj_get(pin)
        guard linkFD >= 0 else { throw BPFError("open pinned link", pin, linkFD) }
        defer { close(linkFD) }
        let r = bpf_link_update(linkFD, bpf_program__fd(p), nil)
        guard r == 0 else { throw BPFError("update link", pin, r) }
    }

    /// Detaches the link pinned at `path` (when it is one); the pin itself stays.
    static func detachLink(pinnedAt path: String) {
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { return }
        _ = bpf_link_detach(fd)
        close(fd)
    }
}
