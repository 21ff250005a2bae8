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

    /// Opens the embedded object with every map pinned at `<mapsDir>/<name>` (reused when a pin
    /// exists, created and pinned otherwise), and loads its programs.
    init(pinningMapsIn mapsDir: String) throws(BPFError) {
        guard let obj = clibbpf_open_mem(bl_bpf_object_bytes(), bl_bpf_object_length()) else {
            throw BPFError("open embedded object", "balancer.bpf.o", -errno)
        }
        object = obj
        var map = bpf_object__next_map(obj, nil)
        while let m = map {
            let name = String(cString: bpf_map__name(m))
            let r = bpf_map__set_pin_path(m, "\(mapsDir)/\(name)")
            guard r == 0 else {
                bpf_object__close(obj)
                throw BPFError("set pin path of", name, r)
            }
            map = bpf_object__next_map(obj, m)
        }
        let loaded = bpf_object__load(obj)
        guard loaded == 0 else {
            bpf_object__close(obj)
            throw BPFError("load datapath programs", "(verifier log above)", loaded)
        }
    }

    deinit { bpf_object__close(object) }

    /// The programs' names, in the object's order.
    var programs: [String] {
        var names: [String] = []
        var prog = bpf_object__next_program(object, nil)
        while let p = prog {
            names.append(String(cString: bpf_program__name(p)))
            prog = bpf_object__next_program(object, p)
        }
        return names
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

    /// Detaches the link pinned at `path` (when it is one); the pin itself stays.
    static func detachLink(pinnedAt path: String) {
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { return }
        _ = bpf_link_detach(fd)
        close(fd)
    }
}
