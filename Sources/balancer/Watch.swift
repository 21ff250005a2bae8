import ArgumentParser
import Dispatch
import Foundation
import Compiler
import KubeAPI
import Manifests
import Loader
import Logging
import MapImage
import Synchronization
import Watcher

#if canImport(Glibc)
import Glibc
#endif

/// Set by the SIGINT/SIGTERM handlers (a C signal handler can only reach globals).
let watchStopRequested = Atomic<Bool>(false)

struct Watch: ParsableCommand {
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
        """)

    @Option(help: "The directory tree of manifests to watch.")
    var dir: String?

    @Option(help: "Watch the API server this kubeconfig names (default context, or --context).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use instead of its current-context.")
    var context: String?

    @Flag(help: "Watch the API server of the cluster this pod runs in (its service account).")
    var inCluster = false

    @Option(name: [.long, .customLong("node-name")], help: "This host's node name (as for `load`); omit on a host that is not a node.")
    var node: String?

    @Option(help: "The bpffs directory holding maps/bl_* (the datapath `attach` set up).")
    var pinDir: String = "/sys/fs/bpf/balancer"

    @Option(help: "For hosts that are not nodes: pod or nodeport.")
    var hostMode: String = "pod"

    @Option(help: "Write images to this directory instead of loading them.")
    var outputDir: String?

    @Option(help: "Quiet time, in milliseconds, that ends a burst of changes.")
    var debounceMs: Int = 50

    @Option(help: "Longest wait, in milliseconds, from a change to its compile while changes keep coming.")
    var maxDelayMs: Int = 2000

    @Flag(help: "Load images despite policy errors (as `compile --keep-going`).")
    var keepGoing = false

    @Option(help: "Default redirects per second per node for LocalRedirectPolicies (as for `compile`).")
    var redirectRateLimit: UInt32 = 0

    @Option(help: ArgumentHelp("With --node: where to look for skipRedirectFromBackend namespaces (as for `load`).", valueName: "CGROUP"))
    var netnsScope: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Serve Prometheus text at /metrics and /healthz here.", valueName: "HOST:PORT"))
    var metricsAddress: String?

    @Option(help: "/healthz answers 503 once syncing has failed for longer than this many seconds.")
    var unhealthyAfterSeconds: Int = 60

    @OptionGroup var limits: APILimitOptions

    @Option(help: "With --dir: refuse a manifest file larger than this (bytes, or with Ki/Mi/Gi; as for `compile`).")
    var maxFileBytes = ByteSize(bytes: InputLimits.defaultMaxFileBytes)

    func validate() throws {
        let sources = [dir != nil, kubeconfig != nil || context != nil, inCluster].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one source: --dir, --kubeconfig (or --context), or --in-cluster") }
    }

    func run() throws {
        guard let mode = HostMode(rawValue: hostMode) else { throw ValidationError("--host-mode must be pod or nodeport") }
        guard debounceMs >= 0, maxDelayMs >= debounceMs else { throw ValidationError("--max-delay-ms must be at least --debounce-ms") }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let sink: any ImageSink
        var metrics: WatchMetrics?
        if let outputDir {
            sink = DirectorySink(directory: outputDir)
            if metricsAddress != nil { metrics = WatchMetrics() }
        } else {
            var d = DatapathSink(pinDir: pinDir, node: node, hostMode: mode, netnsScope: netnsScope)
            d.nameFrontends = metricsAddress != nil
            sink = d
            let datapath = d
            if metricsAddress != nil { metrics = WatchMetrics(extra: { datapath.countersExposition() }) }
        }
        var endpoint: MetricsEndpoint?
        if let metricsAddress, let metrics {
            guard let colon = metricsAddress.lastIndex(of: ":"), let port = Int(metricsAddress[metricsAddress.index(after: colon)...]) else {
                throw ValidationError("--metrics-address must be HOST:PORT")
            }
            var host = String(metricsAddress[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            do {
                endpoint = try MetricsEndpoint.start(host: host.isEmpty ? "0.0.0.0" : host, port: port, metrics: metrics,
                                                     unhealthyAfter: .seconds(unhealthyAfterSeconds))
            } catch {
                throw CommandError(description: "cannot serve metrics on \(metricsAddress): \(error)")
            }
        }
        defer { endpoint?.stop() }
        // SIGINT/SIGTERM end the loop between two waits (it checks at least every 200 ms).
        signal(SIGINT) { _ in watchStopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in watchStopRequested.store(true, ordering: .relaxed) }
        let options = DirectoryWatcher.Options(debounce: .milliseconds(debounceMs), maxDelay: .milliseconds(maxDelayMs),
                                               compile: CompileOptions(defaultRedirectRateLimit: redirectRateLimit), keepGoing: keepGoing,
                                               inputLimits: InputLimits(maxFileBytes: maxFileBytes.bytes))
        if let dir {
            let watcher = DirectoryWatcher(root: dir, options: options, sink: sink, metrics: metrics)
            do {
                try watcher.run(shouldStop: { watchStopRequested.load(ordering: .relaxed) })
            } catch {
                throw CommandError(description: error.description)
            }
            return
        }
        let config: KubeClientConfig
        do {
            if inCluster {
                config = try Kubeconfig.inCluster(environment: ProcessInfo.processInfo.environment)
            } else {
                let env = ProcessInfo.processInfo.environment
                config = try Kubeconfig.load(paths: kubeconfig.map { [$0] } ?? Kubeconfig.paths(environment: env), context: context)
            }
        } catch {
            throw CommandError(description: error.description)
        }
        let client: KubeClient
        let counted = metrics
        let caps = try limits.limits()
        do {
            client = try KubeClient(config: config, limits: caps) { kind, verb in counted?.apiRequest(kind: kind, verb: verb) }
        } catch {
            throw CommandError(description: error.description)
        }
        Logger(label: "balancer.watch").info("watching \(config.server) (\(config.origin))")
        let watcher = ApiWatcher(client: client, options: options, sink: sink, metrics: metrics)
        // Detached: this synchronous command blocks its thread below. A stop request cancels the
        // run, which ends requests in flight (a watch can otherwise wait minutes for an event).
        let done = DispatchSemaphore(value: 0)
        let running = Task.detached {
            await watcher.run(shouldStop: { watchStopRequested.load(ordering: .relaxed) || Task.isCancelled })
            await client.shutdown()
            done.signal()
        }
        Task.detached {
            while !watchStopRequested.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(100)) }
            running.cancel()
        }
        done.wait()
    }
}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Write the cluster's objects the compiler reads to one YAML file that `balancer compile` reads.",
        discussion: """
        Lists Services, EndpointSlices, Nodes, Pods (trimmed to the fields the compiler reads), \
        LocalRedirectPolicies and BalancingPolicies once, from --kubeconfig (or KUBECONFIG, with \
        --context) or --in-cluster, and writes them atomically to -o: the bridge to air-gapped \
        hosts and GitOps repositories (`balancer compile SNAPSHOT -o IMAGE`).
        """)

    @Option(help: "The kubeconfig to use (default: KUBECONFIG, else ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use instead of its current-context.")
    var context: String?

    @Flag(help: "Use the service account of the pod this runs in.")
    var inCluster = false

    @Option(name: .shortAndLong, help: "Where to write the snapshot.")
    var output: String

    @OptionGroup var limits: APILimitOptions

    func run() throws {
        let config: KubeClientConfig
        do {
            if inCluster {
                config = try Kubeconfig.inCluster(environment: ProcessInfo.processInfo.environment)
            } else {
                config = try Kubeconfig.load(paths: kubeconfig.map { [$0] } ?? Kubeconfig.paths(environment: ProcessInfo.processInfo.environment),
                                             context: context)
            }
        } catch {
            throw CommandError(description: error.description)
        }
        let client: KubeClient
        let caps = try limits.limits()
        do { client = try KubeClient(config: config, limits: caps) } catch { throw CommandError(description: error.description) }
        let result = Mutex<Result<([UInt8], [String: Int]), any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                let r = try await ClusterSnapshot.take(client: client)
                result.withLock { $0 = .success((r.yaml, r.counts)) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            await client.shutdown()
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 }) {
        case .success(let (yaml, counts))?:
            do { try ImageFile.writeAtomically(yaml, to: output) } catch { throw CommandError(description: "cannot write \(output): \(error)") }
            print("wrote \(output): " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + " from \(config.server)")
        case .failure(let error)?:
            throw CommandError(description: "\(error)")
        case nil:
            throw CommandError(description: "snapshot did not finish")
        }
    }
}

/// The caps on what the API server sends (`watch` and `snapshot`); KubeLimits explains the defaults.
struct APILimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Refuse an object (a list item or watch event) larger than this. The default, 4 MiB, is above the "
                               + "apiserver's 3 MiB request limit and etcd's 1.5 MiB: raise it only for a cluster whose etcd allows more.",
                               valueName: "BYTES"))
    var maxObjectBytes = ByteSize(bytes: KubeLimits.defaultMaxObjectBytes)

    @Option(help: ArgumentHelp("Refuse a list response larger than this. Pages ask for 500 objects (as client-go); "
                               + "a page over this is asked again with half as many, so objects within the object cap always fit.",
                               valueName: "BYTES"))
    var maxResponseBytes = ByteSize(bytes: KubeLimits.defaultMaxResponseBytes)

    func validate() throws {
        guard maxObjectBytes.bytes >= 1024 else { throw ValidationError("--max-object-bytes must be at least 1024") }
        guard maxResponseBytes.bytes >= maxObjectBytes.bytes else { throw ValidationError("--max-response-bytes must be at least --max-object-bytes") }
    }

    func limits() throws -> KubeLimits {
        try validate()
        return KubeLimits(maxObjectBytes: maxObjectBytes.bytes, maxResponseBytes: maxResponseBytes.bytes)
    }
}
