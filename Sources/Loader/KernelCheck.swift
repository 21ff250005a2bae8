import CLibbpf
import HostSystem

#if canImport(Glibc)
import Glibc
#endif

/// Whether this kernel has what the datapath needs (`balancer version --check`): an operator's
/// question before installing, answered item by item with a verdict.
///
/// The decisive item is loading the datapath itself (every program through the verifier, every
/// map created, nothing pinned or attached): distribution kernels backport features, so a version
/// number alone can neither promise nor refuse. The other items say why a load fails, and which
/// parts work with less (socket termination needs bpf_sock_destroy, Linux 6.5).
public struct KernelCheck: Sendable, Encodable {
    public enum Outcome: String, Sendable, Encodable {
        /// Present.
        case ok
        /// Absent, and the datapath works without it, with less (said in the detail).
        case limited
        /// Absent, and the datapath cannot work.
        case missing
        /// Could not be asked (no privilege to probe): neither present nor absent.
        case unknown
    }

    public struct Item: Sendable, Encodable {
        public var name: String
        public var outcome: Outcome
        public var detail: String
    }

    public enum Verdict: String, Sendable, Encodable {
        case ready
        /// Ready, with the limits the items marked `limited` say.
        case readyWithLimits = "ready-with-limits"
        case notReady = "not-ready"
        /// Some item could not be asked and none is missing.
        case unknown
    }

    public var kernel: String
    public var items: [Item]

    public var verdict: Verdict {
        if items.contains(where: { $0.outcome == .missing }) { return .notReady }
        if items.contains(where: { $0.outcome == .unknown }) { return .unknown }
        return items.contains(where: { $0.outcome == .limited }) ? .readyWithLimits : .ready
    }

    /// The oldest kernel with every hook the datapath attaches: cgroup sock_addr links (5.7),
    /// getpeername/recvmsg hooks and the ring buffer (5.8), sock_release (5.9), bpf_loop (5.17)
    /// and bpf_set_retval (5.18).
    public static let minimumKernel = (5, 18)
    /// Socket termination's kfunc, bpf_sock_destroy.
    public static let terminationKernel = (6, 5)

    /// Examines this host. Loading the datapath needs CAP_BPF (root); without it that item, and
    /// the probes, are `unknown`.
    public static func run() -> KernelCheck {
        let release = kernelRelease()
        let caps = effectiveCapabilities()
        var items: [Item] = []
        items.append(kernelVersionItem(release))
        items.append(cgroup2Item())
        items.append(bpffsItem())
        items.append(btfItem())
        // libbpf's probes answer "no" when the kernel refuses for want of privilege: without
        // CAP_BPF (or CAP_SYS_ADMIN, which implies it) they are not asked.
        let canProbe = caps.map { $0 >> 39 & 1 == 1 || $0 >> 21 & 1 == 1 } ?? true
        if canProbe {
            items.append(contentsOf: probeItems())
        } else {
            items.append(Item(name: "program and map types", outcome: .unknown, detail: notPrivileged))
        }
        items.append(terminationItem())
        items.append(canProbe ? loadItem() : Item(name: "datapath load", outcome: .unknown, detail: "not tried: " + notPrivileged))
        items.append(privilegeItem(caps))
        return KernelCheck(kernel: release, items: items)
    }

    static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// `6.1.0-18-amd64` → (6, 1); nil when it does not start with two numbers.
    static func majorMinor(_ release: String) -> (Int, Int)? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    static func kernelVersionItem(_ release: String) -> Item {
        let (m, n) = minimumKernel
        guard let v = majorMinor(release) else {
            return Item(name: "kernel version", outcome: .unknown, detail: "\(release): not a version this check reads")
        }
        if v >= minimumKernel { return Item(name: "kernel version", outcome: .ok, detail: "\(release) (\(m).\(n) or later needed)") }
        // A backport can make an older kernel work: the load below decides.
        return Item(name: "kernel version", outcome: .limited,
                    detail: "\(release) is older than \(m).\(n), which has every hook the datapath uses; distribution backports may still suffice (see the load)")
    }

    static func cgroup2Item() -> Item {
        guard let mount = FileSystem.mountPoint(ofType: "cgroup2") else {
            return Item(name: "cgroup v2", outcome: .missing,
                        detail: "no cgroup2 file system is mounted; the datapath attaches to a cgroup v2 cgroup (boot with systemd.unified_cgroup_hierarchy=1, or mount one)")
        }
        return Item(name: "cgroup v2", outcome: .ok, detail: "mounted at \(mount)")
    }

    static func bpffsItem() -> Item {
        if let mount = FileSystem.mountPoint(ofType: "bpf") {
            return Item(name: "bpf file system", outcome: .ok, detail: "mounted at \(mount)")
        }
        return Item(name: "bpf file system", outcome: .ok, detail: "none mounted; attach mounts one on the pin directory's parent when it is empty")
    }

    static func btfItem() -> Item {
        guard FileSystem.exists("/sys/kernel/btf/vmlinux") else {
            return Item(name: "kernel BTF", outcome: .limited,
                        detail: "/sys/kernel/btf/vmlinux is absent (CONFIG_DEBUG_INFO_BTF): socket termination is off; the rest works")
        }
        return Item(name: "kernel BTF", outcome: .ok, detail: "/sys/kernel/btf/vmlinux")
    }

    static let notPrivileged = "needs CAP_BPF, which this process lacks (run as root)"

    static func probeItems() -> [Item] {
        // The socket iterators' type (tracing) is not probed: libbpf's probe cannot load one
        // without a BTF target and answers "no" on kernels that run them; the load decides.
        let programs: [(String, bpf_prog_type)] = [
            ("cgroup sock_addr programs", BPF_PROG_TYPE_CGROUP_SOCK_ADDR),
            ("cgroup sock programs", BPF_PROG_TYPE_CGROUP_SOCK),
        ]
        let maps: [(String, bpf_map_type)] = [
            ("hash", BPF_MAP_TYPE_HASH), ("array", BPF_MAP_TYPE_ARRAY), ("LRU hash", BPF_MAP_TYPE_LRU_HASH),
            ("per-CPU hash", BPF_MAP_TYPE_PERCPU_HASH), ("per-CPU array", BPF_MAP_TYPE_PERCPU_ARRAY),
            ("LPM trie", BPF_MAP_TYPE_LPM_TRIE), ("array of maps", BPF_MAP_TYPE_ARRAY_OF_MAPS), ("ring buffer", BPF_MAP_TYPE_RINGBUF),
        ]
        var items = programs.map { name, type in
            item(name, BPFFeatures.hasProgramType(type), ifAbsent: .missing, absent: "the kernel refuses this program type")
        }
        let answers = maps.map { ($0.0, BPFFeatures.hasMapType($0.1)) }
        let absent = answers.filter { $0.1 == false }.map(\.0)
        if !absent.isEmpty {
            items.append(Item(name: "map types", outcome: .missing, detail: "the kernel refuses: " + absent.joined(separator: ", ")))
        } else if answers.contains(where: { $0.1 == nil }) {
            items.append(Item(name: "map types", outcome: .unknown, detail: "could not probe (needs CAP_BPF: run as root)"))
        } else {
            items.append(Item(name: "map types", outcome: .ok, detail: answers.map(\.0).joined(separator: ", ")))
        }
        return items
    }

    private static func item(_ name: String, _ answer: Bool?, ifAbsent: Outcome, absent: String) -> Item {
        switch answer {
        case true?: return Item(name: name, outcome: .ok, detail: "supported")
        case false?: return Item(name: name, outcome: ifAbsent, detail: absent)
        case nil: return Item(name: name, outcome: .unknown, detail: "could not probe (needs CAP_BPF: run as root)")
        }
    }

    static func terminationItem() -> Item {
        if BPFFeatures.kernelHas(function: "bpf_sock_destroy") {
            return Item(name: "kfunc bpf_sock_destroy", outcome: .ok, detail: "sockets to removed backends can be terminated")
        }
        let (m, n) = terminationKernel
        return Item(name: "kfunc bpf_sock_destroy", outcome: .limited,
                    detail: "absent (Linux \(m).\(n)): sockets to removed backends are not terminated; connects are translated as before")
    }

    static func loadItem() -> Item {
        do {
            let programs = try BPFObject.loadOnce()
            return Item(name: "datapath load", outcome: .ok, detail: "\(programs.count) programs verified and loaded, then unloaded (nothing attached)")
        } catch {
            if error.code == EPERM || error.code == EACCES {
                return Item(name: "datapath load", outcome: .unknown, detail: "not tried: \(error.message) (needs CAP_BPF: run as root)")
            }
            return Item(name: "datapath load", outcome: .missing, detail: "\(error)")
        }
    }

    /// The capabilities of this process that attach and watch use (informational: `attach` and
    /// `load` say themselves what they lack).
    static func privilegeItem(_ caps: UInt64?) -> Item {
        let names: [(UInt64, String)] = [(39, "CAP_BPF"), (38, "CAP_PERFMON"), (12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN"), (19, "CAP_SYS_PTRACE")]
        guard let bits = caps else { return Item(name: "privileges", outcome: .ok, detail: "cannot read /proc/self/status") }
        let held = names.filter { bits >> $0.0 & 1 == 1 }.map(\.1)
        let lacking = names.filter { bits >> $0.0 & 1 == 0 }.map(\.1)
        var parts: [String] = []
        if !held.isEmpty { parts.append("has " + held.joined(separator: " ")) }
        if !lacking.isEmpty { parts.append("lacks " + lacking.joined(separator: " ")) }
        return Item(name: "privileges", outcome: .ok, detail: "this process " + parts.joined(separator: "; "))
    }

    /// The effective capability set (CapEff of /proc/self/status); nil when unreadable.
    static func effectiveCapabilities() -> UInt64? {
        guard let data = try? FileContents.read("/proc/self/status"),
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }) else { return nil }
        return UInt64(String(line.dropFirst("CapEff:".count).drop(while: { $0 == " " || $0 == "\t" })), radix: 16)
    }
}
