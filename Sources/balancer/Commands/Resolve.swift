import ArgumentParser
import MapImage

struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Where would a connect to ADDRESS:PORT go? The Resolver's answer over an image.",
        discussion: """
        Without --node the client is a host that is not a node of the cluster. In an image of \
        several clusters (compile --cluster), --cluster names the client's cluster (a --node may \
        name it too: east/worker-1); without either, the client is outside every cluster. IPv6 as \
        [addr]:port.
        Results: translate (with every backend it may reach), reject (ECONNREFUSED), \
        unreachable (EHOSTUNREACH), passthrough (not a service address).
        """)

    @OptionGroup var image: ImageArgument

    @Argument(help: "Destination, e.g. 10.96.0.10:53 or [fd00::10]:443.")
    var destination: String

    @Flag(help: "UDP instead of TCP.")
    var udp = false

    @OptionGroup var nodeOptions: NodeOptions

    @OptionGroup var hostCluster: HostClusterOption

    @Option(help: ArgumentHelp("The client's address (its pod's IP, or for the host one of the node's addresses): what a LoadBalancer's loadBalancerSourceRanges are checked against.",
                               valueName: "ADDRESS"))
    var from: String?

    @OptionGroup var output: OutputOption

    /// Usage mistakes, found while parsing: reported with this command's usage.
    func validate() throws {
        if let from, IPAddress(from) == nil { throw ValidationError("--from \"\(from)\" is not an IP address") }
        if SocketAddress(destination) == nil { throw ValidationError("\"\(destination)\" is not ADDRESS:PORT (IPv6 as [addr]:port)") }
    }

    func run() throws {
        let client = from.flatMap { IPAddress($0) }
        guard let dest = SocketAddress(destination) else {
            throw CommandError(description: "\"\(destination)\" is not ADDRESS:PORT (IPv6 as [addr]:port)")
        }
        let node = nodeOptions.name, mode = nodeOptions.hostMode
        let img = try image.load()
        let resolver = Resolver(img.contents)
        let settings = nodeOptions.settings(cluster: hostCluster.name)
        let placement = try CommandError.wrapping {
            try settings.place(nodes: img.contents.metadata.nodes, clusters: img.contents.metadata.clusters ?? [])
        }
        let r = resolver.resolve(dest, proto: udp ? .udp : .tcp, nodeID: placement.nodeID, hostMode: mode, from: client,
                                 cluster: placement.clusterID, clusterModes: placement.clusterModes)
        let names = ImageNames(img.contents)
        let clusterName = placement.clusterID == 0 ? nil : names.cluster(placement.clusterID)
        switch output.format {
        case .json, .yaml:
            struct RuleView: Encodable {
                var index: Int
                var origin: String
                var kind: String
                var group: String
                var flags: [String]
            }
            struct View: Encodable {
                var result: String
                var backends: [String]
                var destination: String
                var `protocol`: String
                var node: String?
                var cluster: String?
                var hostMode: String
                var frontend: String?
                var rule: RuleView?
                var reason: String
            }
            let view = View(result: r.result.rawValue, backends: r.backends.map(\.description), destination: dest.description,
                            protocol: udp ? "UDP" : "TCP", node: node, cluster: clusterName, hostMode: mode.rawValue,
                            frontend: r.frontend.map(names.frontend),
                            rule: r.rule.map { RuleView(index: r.ruleIndex ?? 0, origin: $0.origin.description, kind: $0.kind.description,
                                                         group: names.group($0.groupID), flags: $0.flags.names) },
                            reason: r.reason)
            try printStructured(view, format: output.format)
        case .text:
            var from = node.map { "node \($0)" } ?? "a host that is not a node (host mode \(mode.rawValue))"
            if let clusterName {
                from = node == nil ? "a host of cluster \(clusterName) that is not a node (host mode \(mode.rawValue))" : "\(from) of cluster \(clusterName)"
            } else if !(img.contents.metadata.clusters ?? []).isEmpty {
                from += ", outside every cluster"
            }
            let modes = nodeOptions.clusterModes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rawValue)" }
            if !modes.isEmpty { from += "; cluster modes \(modes.joined(separator: " "))" }
            printLine("\(dest)/\(udp ? "UDP" : "TCP") from \(from): \(r.result.rawValue)")
            if let f = r.frontend, let rule = r.rule, let i = r.ruleIndex {
                printLine("  frontend \(names.frontend(f)), rule \(i): \(rule.origin) \(names.group(rule.groupID)) \(rule.kind) flags=\(rule.flags)\(names.clusterSuffix(rule.cluster))")
            }
            printLine("  \(r.reason)")
            if !r.backends.isEmpty {
                printLine("  backends: " + r.backends.map(\.description).joined(separator: " "))
            }
        }
    }
}
