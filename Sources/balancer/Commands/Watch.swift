import ArgumentParser
import HostSystem
import KubeAPI
import Logging
import MapImage
import Synchronization
import Watcher

#if canImport(Glibc)
import Glibc
#endif

/// Set by the SIGINT/SIGTERM handlers (a C signal handler can only reach globals).
let watchStopRequested = Atomic<Bool>(false)

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep the datapath (or a directory of images) current with a directory of manifests or the Kubernetes API.",
        discussion: """
        --dir DIR watches DIR and everything below it (inotify: edits, renames, deletions, new \
        directories, a directory or symlink swapped in atomically as checkouts and ConfigMap \
        volumes do). --kubeconfig FILE (or KUBECONFIG, with --context) or --in-cluster lists and \
        watches Services, EndpointSlices, Nodes, Pods, LocalRedirectPolicies and \
        BalancingPolicies (paged lists, watches with bookmarks, relists on 410, jittered back-off). \
        Every response is checked against the kind asked for: a list or object of another kind, \
        a Status where a list belongs, an object without its name or namespace, an object or page \
        over --max-object-bytes / --max-response-bytes is an error for that kind: its last good \
        objects stay, the error is logged and counted (balancer_api_errors_total), and it is \
        asked again after a back-off. Changes are coalesced until they have been quiet for --debounce-ms (at most \
        --max-delay-ms after the first), then everything is compiled and the image loaded into \
        the pinned datapath, or with --output-dir written there as <sha256>.image with a \
        `latest` symlink. A compile error keeps the live image and is logged; the next change \
        tries again. A delivery that fails (the datapath not attached yet, its maps replaced) is \
        retried with back-off, with no change needed, until the datapath holds the image. Runs \
        until SIGINT or SIGTERM. Logs are structured lines on standard error.

        Several clusters (docs/multicluster.md): --cluster NAME=DIR or \
        NAME=[KUBECONFIG][@CONTEXT] for each, in the order that decides between clusters. Each \
        is followed on its own; one image of all of them is compiled. A cluster whose API server \
        fails keeps its last state; with --cluster-ttl its endpoints are dropped once its \
        EndpointSlices could not be read that long. --node takes a cluster's node (east/worker-1); --host-cluster names \
        the cluster of a host that is not a node; --cluster-mode NAME=nodeport reaches a \
        cluster's backends through its nodes.
        """)

    @Option(help: "The directory tree of manifests to watch.")
    var dir: String?

    @OptionGroup var kube: KubeSourceOptions

    @OptionGroup var clusterSources: ClusterSourcesOption

    @Option(help: ArgumentHelp("Drop a cluster's endpoints once its EndpointSlices could not be read this long (30s, 5m, 1h); default: keep its last state.",
                               valueName: "duration"))
    var clusterTtl: String?

    @Option(help: ArgumentHelp("The cluster of this host when it is not a node of it (with --cluster).", valueName: "name"))
    var hostCluster: String?

    @OptionGroup var nodeOptions: NodeOptions

    @OptionGroup var pinDir: PinDirOption

    @Option(help: ArgumentHelp("Pods to ask the API server for: as-needed (none without policies, this node's for LocalRedirectPolicies, "
                               + "a BalancingPolicy's selected Pods on any node) or all.", valueName: "as-needed|all"))
    var pods: PodsOption = .asNeeded

    enum PodsOption: String, ExpressibleByArgument, CaseIterable {
        case asNeeded = "as-needed"
        case all
    }

    @Option(help: "Write images to this directory instead of loading them.")
    var outputDir: String?

    @Option(help: ArgumentHelp("With --output-dir: sign each image written (<sha256>.image.sig; balancer sign's format).", valueName: "key.pem"))
    var signKey: String?

    @Option(help: "Quiet time, in milliseconds, that ends a burst of changes.")
    var debounceMs: Int = 50

    @Option(help: "Longest wait, in milliseconds, from a change to its compile while changes keep coming.")
    var maxDelayMs: Int = 2000

    @OptionGroup var manifests: ManifestOptions

    @OptionGroup var netns: NetnsScopeOption

    @OptionGroup var logging: LoggingOptions

    @Option(help: ArgumentHelp("Serve Prometheus text at /metrics and /healthz here.", valueName: "HOST:PORT"))
    var metricsAddress: String?

    @Option(help: "/healthz answers 503 once syncing has failed for longer than this many seconds.")
    var unhealthyAfterSeconds: Int = 60

    @OptionGroup var limits: APILimitOptions

    @OptionGroup var terminate: TerminateOption

    func validate() throws {
        let sources = [dir != nil, kube.kubeconfig != nil || kube.context != nil, kube.inCluster, !clusterSources.texts.isEmpty].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one source: --dir, --kubeconfig (or --context), --in-cluster, or --cluster NAME=SOURCE") }
        if let clusterTtl, parseDuration(clusterTtl) == nil { throw ValidationError("--cluster-ttl \(clusterTtl): expected a duration such as 30s, 5m or 1h") }
        if clusterTtl != nil && clusterSources.texts.isEmpty { throw ValidationError("--cluster-ttl needs --cluster") }
        if signKey != nil && outputDir == nil { throw ValidationError("--sign-key signs the images --output-dir writes; a watcher that loads signs nothing") }
        guard debounceMs >= 0, maxDelayMs >= debounceMs else { throw ValidationError("--max-delay-ms must be at least --debounce-ms") }
        if let metricsAddress, metricsAddress.lastIndex(of: ":").flatMap({ Int(metricsAddress[metricsAddress.index(after: $0)...]) }) == nil {
            throw ValidationError("--metrics-address must be HOST:PORT")
        }
    }

    func run() async throws {
        // A tree that is not there is a mistake to report now, not a compile error to retry for ever.
        if let dir {
            var st = stat()
            guard stat(dir, &st) == 0 else { throw CommandError(description: "--dir \(dir): \(String(cString: strerror(errno)))") }
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw CommandError(description: "--dir \(dir): not a directory") }
        }
        let node = nodeOptions.name, mode = nodeOptions.hostMode
        // A watcher holds a whole cluster for as long as it runs: two arenas for its decoding
        // threads instead of glibc's eight per core (measured on the bench cluster with 150,000
        // Pods: 1,190 MB resident with the default, 862 MB with two).
        ProcessMemory.limitArenas(2)
        logging.bootstrap()
        let sink: any ImageSink
        var metrics: WatchMetrics?
        if let outputDir {
            sink = DirectorySink(directory: outputDir, signer: try signKey.map { (path: String) throws(CommandError) -> SigningKey in
                try CommandError.wrapping("--sign-key: ") { try SigningKey.read(path) }
            })
            if metricsAddress != nil { metrics = WatchMetrics() }
        } else {
            var d = DatapathSink(pinDir: pinDir.path, node: node, hostMode: mode, netnsScope: netns.netnsScope)
            d.cluster = hostCluster
            d.clusterModes = nodeOptions.clusterModes
            d.nameFrontends = metricsAddress != nil
            d.terminate = terminate.terminateSockets
            sink = d
            let datapath = d
            if metricsAddress != nil { metrics = WatchMetrics(extra: { datapath.countersExposition() }) }
        }
        var endpoint: MetricsEndpoint?
        if let metricsAddress, let metrics {
            guard let colon = metricsAddress.lastIndex(of: ":"), let port = Int(metricsAddress[metricsAddress.index(after: colon)...]) else {
                throw CommandError(description: "--metrics-address must be HOST:PORT")
            }
            var host = String(metricsAddress[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            endpoint = try CommandError.wrapping("cannot serve metrics on \(metricsAddress): ") {
                try MetricsEndpoint.start(host: host.isEmpty ? "0.0.0.0" : host, port: port, metrics: metrics,
                                          unhealthyAfter: .seconds(unhealthyAfterSeconds))
            }
        }
        defer { endpoint?.stop() }
        // SIGINT/SIGTERM end the loop between two waits (it checks at least every 200 ms).
        signal(SIGINT) { _ in watchStopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in watchStopRequested.store(true, ordering: .relaxed) }
        let options = DirectoryWatcher.Options(debounce: .milliseconds(debounceMs), maxDelay: .milliseconds(maxDelayMs),
                                               compile: manifests.compileOptions, keepGoing: manifests.keepGoing,
                                               inputLimits: manifests.inputLimits)
        if !clusterSources.texts.isEmpty {
            var clusters: [ClusterSetWatcher.Cluster] = []
            var clients: [KubeClient] = []
            let counted = metrics
            for (name, source) in try clusterSources.sources(directories: true, say: { Logger(label: "balancer.watch").warning("\($0)") }) {
                switch source {
                case .directory(let path):
                    clusters.append(.init(name: name, source: .directory(path)))
                case .api(let config):
                    let client = try limits.client(config) { kind, verb in counted?.apiRequest(kind: kind, verb: verb) }
                    clients.append(client)
                    clusters.append(.init(name: name, source: .api(client)))
                    Logger(label: "balancer.watch").info("watching \(config.server) (\(config.origin))", metadata: ["cluster": "\(name)"])
                }
            }
            let watcher = ClusterSetWatcher(clusters: clusters, options: options, sink: sink, ttl: clusterTtl.flatMap(parseDuration),
                                            metrics: metrics)
            await Self.untilStopped { stop in await watcher.run(shouldStop: stop) }
            for client in clients { await client.shutdown() }
            return
        }
        if let dir {
            let watcher = DirectoryWatcher(root: dir, options: options, sink: sink, metrics: metrics)
            try CommandError.wrapping { try watcher.run(shouldStop: { watchStopRequested.load(ordering: .relaxed) }) }
            return
        }
        let config = try kube.clientConfig(say: { Logger(label: "balancer.watch").warning("\($0)") })
        let counted = metrics
        let client = try limits.client(config) { kind, verb in counted?.apiRequest(kind: kind, verb: verb) }
        Logger(label: "balancer.watch").info("watching \(config.server) (\(config.origin))")
        let watcher = ApiWatcher(client: client, options: options, sink: sink, metrics: metrics,
                                 pods: pods == .all ? .all : .asNeeded(node: node))
        await Self.untilStopped { stop in await watcher.run(shouldStop: stop) }
        await client.shutdown()
    }

    /// Runs a watcher until SIGINT/SIGTERM. A stop request cancels the run, which ends requests
    /// in flight (a watch can otherwise wait minutes for an event); the signal handlers can only
    /// set a flag, so it is polled.
    static func untilStopped(_ run: @escaping @Sendable (@escaping @Sendable () -> Bool) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await run { watchStopRequested.load(ordering: .relaxed) || Task.isCancelled } }
            group.addTask {
                while !watchStopRequested.load(ordering: .relaxed) && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
