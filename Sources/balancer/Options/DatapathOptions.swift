import ArgumentParser
import Loader
import MapImage

/// The bpffs directory of one datapath: its maps under maps/, its links under links/ (`attach`
/// sets both up; every command that reads or writes the datapath takes it).
struct PinDirOption: ParsableArguments {
    @Option(name: .customLong("pin-dir"), help: ArgumentHelp("The bpffs directory holding the datapath's maps (maps/bl_*) and links.", valueName: "pin-dir"))
    var path: String = "/sys/fs/bpf/balancer"
}

/// The node connects start on (`resolve`, `load`, `watch`); without one, the client is a host
/// that is not a node, and the host mode says how it reaches backends.
struct NodeOptions: ParsableArguments {
    @Option(name: [.customLong("node"), .customLong("node-name")],
            help: ArgumentHelp("The node connects start on (its name in the image); omit for a host that is not a node.", valueName: "node"))
    var name: String?

    @Option(help: "For hosts that are not nodes: pod (reach backends directly) or nodeport (the backend's node address and NodePort).")
    var hostMode: HostMode = .pod

    @Option(name: .customLong("cluster-mode"), parsing: .singleValue,
            help: ArgumentHelp("How backends of one cluster of a multi-cluster image are reached (repeatable): pod or nodeport; clusters not named take --host-mode's.",
                               valueName: "NAME=MODE"))
    var clusterModeTexts: [String] = []

    /// --cluster-mode as a dictionary; `validate` has refused a malformed one.
    var clusterModes: [String: HostMode] {
        var out: [String: HostMode] = [:]
        for t in clusterModeTexts {
            if let (name, mode) = Self.clusterMode(t) { out[name] = mode }
        }
        return out
    }

    static func clusterMode(_ text: String) -> (String, HostMode)? {
        guard let eq = text.firstIndex(of: "="), let mode = HostMode(rawValue: String(text[text.index(after: eq)...])) else { return nil }
        let name = String(text[..<eq])
        return name.isEmpty ? nil : (name, mode)
    }

    func validate() throws {
        var seen: Set<String> = []
        for t in clusterModeTexts {
            guard let (name, _) = Self.clusterMode(t) else {
                throw ValidationError("--cluster-mode \(t): expected NAME=pod or NAME=nodeport")
            }
            guard seen.insert(name).inserted else { throw ValidationError("--cluster-mode: cluster \(name) is given twice") }
        }
    }

    /// The host's settings; `cluster` is the host's cluster (--cluster of load and resolve).
    func settings(cluster: String?) -> HostSettings {
        HostSettings(node: name, cluster: cluster, hostMode: hostMode, clusterModes: clusterModes)
    }
}

/// The host's cluster in a multi-cluster image (`load`, `resolve`): its ClusterIPs and policies
/// serve it, and it finds its cluster's frontends first. Without it (and without a --node of a
/// cluster), the host is outside every cluster.
struct HostClusterOption: ParsableArguments {
    @Option(name: [.customLong("cluster"), .customLong("host-cluster")],
            help: ArgumentHelp("The cluster this host is in (a name the image's clusters have); omit for a host outside every cluster. A --node of a multi-cluster image may also name it: east/worker-1.",
                               valueName: "name"))
    var name: String?
}

/// Where `load` and `watch` look for network namespaces: those of the backends that
/// skipRedirectFromBackend policies exempt (with --node), and those whose sockets to removed
/// backends are terminated.
struct NetnsScopeOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The cgroup whose processes' network namespaces are searched: for sockets to terminate, client addresses, and the backend pods of skipRedirectFromBackend policies (default: the cgroup the datapath is attached to, else the cgroup2 root).",
        valueName: "CGROUP"))
    var netnsScope: String?

    /// The cgroup to search: the one given, else the one the datapath under `pinDir` is attached
    /// to, else the cgroup2 root.
    func scope(pinDir: String) throws(CommandError) -> String {
        guard let scope = netnsScope ?? Attachment.defaultNetnsScope(pinDir: pinDir) else {
            throw CommandError(description: "no cgroup2 mount found: give --netns-scope")
        }
        return scope
    }
}

extension TerminationMode: ExpressibleByArgument {}

/// Which translated sockets `load` and `watch` destroy when their backend leaves its service.
struct TerminateOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "After a load, destroy translated sockets whose backend left its service: udp (connected UDP sockets), all (TCP too) or none.",
        valueName: "udp|all|none"))
    var terminateSockets: TerminationMode = .udp
}
