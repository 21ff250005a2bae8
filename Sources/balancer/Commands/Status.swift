import ArgumentParser
import Loader
import MapImage

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The live generation, node, host mode, table sizes, attach points and counters.",
        discussion: "With --image (the live image), counters are named by frontend instead of by id.")

    @OptionGroup var pinDirOption: PinDirOption

    @Option(help: "The image that is live, to name frontends and the node.")
    var image: String?

    @OptionGroup var output: OutputOption

    func run() throws {
        let pinDir = pinDirOption.path
        // The image first: a bad one is named whatever state the datapath is in.
        let img = try image.map { (path: String) throws(CommandError) -> MapImage in try loadImage(path) }
        let st: Datapath.Status = try CommandError.wrapping {
            try Datapath(pinDir: pinDir).status(links: Attachment.links(pinDir: pinDir))
        }
        let frontendNames = Dictionary((img?.contents.frontends ?? []).map { ($0.id, $0.key.description) }, uniquingKeysWith: { a, _ in a })
        let nodeName = img?.contents.metadata.node(id: st.config.nodeID)?.name
        // Clusters (an image of several): this host's, and those reached through NodePorts.
        let clusterName = { (id: UInt8) -> String in img?.contents.metadata.cluster(id: id)?.name ?? "cluster \(id)" }
        let nodeportClusters = (1...255).filter { k in (st.config.nodeportClusters[k >> 6] >> UInt64(k & 63)) & 1 == 1 }.map { UInt8($0) }
        switch output.format {
        case .json, .yaml:
            struct CounterView: Encodable {
                var frontend: UInt32
                var name: String?
                var translated: UInt64
                var rejected: UInt64
                var unreachable: UInt64
                var fallThrough: UInt64
            }
            struct View: Encodable {
                var pinDir: String
                var generation: UInt32
                var previousGeneration: Bool
                var nodeID: UInt32
                var node: String?
                var hostMode: String
                var cluster: String?
                var nodeportClusters: [String]
                var tables: [String: Int]
                var image: String?
                var links: [String]
                var skipRedirectFromBackendEntries: Int
                /// The only network namespace translated (attach --host-netns-only); nil: all.
                var hostNetnsOnly: UInt64?
                var counters: [CounterView]
                /// Decisions by reason they did not translate or were handed on (all frontends).
                var reasons: [String: UInt64]
            }
            let view = View(pinDir: pinDir, generation: st.config.activeGeneration, previousGeneration: st.previousGeneration,
                            nodeID: st.config.nodeID, node: nodeName, hostMode: st.config.hostMode.rawValue,
                            cluster: st.config.clusterID == 0 ? nil : clusterName(st.config.clusterID),
                            nodeportClusters: nodeportClusters.map(clusterName), tables: st.tables,
                            image: st.liveImage, links: st.links, skipRedirectFromBackendEntries: st.skipEntries,
                            hostNetnsOnly: st.hostNetnsOnly,
                            counters: st.counters.sorted { $0.key < $1.key }.map {
                                CounterView(frontend: $0.key, name: frontendNames[$0.key], translated: $0.value.translated, rejected: $0.value.rejected,
                                            unreachable: $0.value.unreachable, fallThrough: $0.value.fallthrough)
                            },
                            reasons: Dictionary(uniqueKeysWithValues: st.reasons.map { ($0.key.description, $0.value) }))
            try printStructured(view, format: output.format, pretty: true)
        case .text:
            // The node's name is the image's; link names are the bpffs directory's entries.
            printLine("pin dir \(pinDir): generation \(st.config.activeGeneration) live\(st.previousGeneration ? ", previous kept for rollback" : "")")
            let nodeLabel: String
            if let nodeName {
                nodeLabel = " (\(nodeName))"
            } else {
                nodeLabel = st.config.nodeID == 0 ? " (not a node)" : ""
            }
            printLine("node id \(st.config.nodeID)\(nodeLabel), host mode \(st.config.hostMode.rawValue)")
            if st.config.clusterID != 0 || !nodeportClusters.isEmpty {
                let of = st.config.clusterID == 0 ? "outside every cluster" : "of cluster \(clusterName(st.config.clusterID))"
                let modes = nodeportClusters.isEmpty ? "" : "; through NodePorts: " + nodeportClusters.map(clusterName).joined(separator: " ")
                printLine("host \(of)\(modes)")
            }
            printLine("image: \(st.liveImage.map { "sha256 \($0)" } ?? "not recorded (written record by record since the last whole image, or not by balancer; `balancer check-live IMAGE` compares)")")
            printLine("tables: " + keyValues(st.tables))
            printLine("links: \(st.links.isEmpty ? "none" : st.links.joined(separator: " "))")
            if let cookie = st.hostNetnsOnly { printLine("scope: only the network namespace of netns cookie \(cookie) (attach --host-netns-only)") }
            if st.skipEntries > 0 { printLine("skipRedirectFromBackend: \(counted(st.skipEntries, "backend namespace entry", "backend namespace entries"))") }
            for (id, c) in st.counters.sorted(by: { $0.key < $1.key }) {
                let label = id == 0 ? "(unknown ports)" : frontendNames[id] ?? hex(id)
                printLine("counters \(label): translated \(c.translated) rejected \(c.rejected) unreachable \(c.unreachable) fallthrough \(c.fallthrough)")
            }
            let reasons = st.reasons.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
            if !reasons.isEmpty { printLine("reasons: " + reasons.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) }
        }
    }
}
