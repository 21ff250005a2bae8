import Compiler
import FoundationEssentials
import KubeAPI
import Logging
import Manifests
import MapImage
import Synchronization

/// `balancer watch --cluster NAME=SOURCE ...`: one image of several clusters (docs/multicluster.md),
/// each followed on its own: an API server (one reflector per kind, as ApiWatcher's) or a
/// directory tree (inotify, as `watch --dir`'s, polled between compile-loop wakes).
///
/// Every change compiles all clusters again (Clusters.merge, then a full compile): the
/// incremental compiler does not follow frontends folded across clusters.
///
/// Reachability: a cluster whose API server fails keeps its last objects, so its services keep
/// working from the last state. With a TTL, once its EndpointSlices (where its backends come
/// from) could not be read for that long, with no answer for them since, its endpoints are
/// dropped (EndpointSlices and Pods: its services then refuse rather than reach stale backends,
/// and a clusterset service is served by the other clusters); they come back with its next
/// answer. A cluster not reached yet is compiled without objects once
/// `startupWait` has passed, so one unreachable cluster does not hold the others back.
public final class ClusterSetWatcher: Sendable {
    public enum Source: Sendable {
        case api(KubeClient)
        case directory(String)
    }

    public struct Cluster: Sendable {
        public var name: String
        public var source: Source

        public init(name: String, source: Source) {
            self.name = name
            self.source = source
        }
    }

    let clusters: [Cluster]
    let resources: [KubeResource]
    let pipeline: ImagePipeline
    let options: DirectoryWatcher.Options
    let ttl: Duration?
    let startupWait: Duration
    let logger: Logger
    let metrics: WatchMetrics?
    let state: Mutex<[ClusterState]>
    let doorbell = Doorbell()

    /// What the loop knows of one cluster.
    struct ClusterState: Sendable {
        var stores: [String: KindStore] = [:]
        var listed: Set<String> = []
        var dirty: [String: Set<KindStore.Key>] = [:]
        /// A directory cluster changed (its tree is read again).
        var treeChanged = true
        /// The kinds whose requests fail, since when (with no answer since).
        var failing: [String: ContinuousClock.Instant] = [:]
    }

    public init(clusters: [Cluster], resources: [KubeResource] = KubeResource.multiCluster, options: DirectoryWatcher.Options,
                sink: any ImageSink, ttl: Duration? = nil, startupWait: Duration = .seconds(10), metrics: WatchMetrics? = nil,
                logger: Logger = Logger(label: "balancer.watch")) {
        self.clusters = clusters
        self.resources = resources
        self.options = options
        self.ttl = ttl
        self.startupWait = startupWait
        self.logger = logger
        self.metrics = metrics
        pipeline = ImagePipeline(options: options, sink: sink, metrics: metrics, logger: logger)
        state = Mutex(clusters.map { _ in
            ClusterState(stores: Dictionary(uniqueKeysWithValues: resources.map { ($0.kind, KindStore(kind: $0.kind)) }))
        })
    }

    /// Runs until `shouldStop` says so; `onSync` sees every sync.
    public func run(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void = { _ in }) async {
        let shouldStop: @Sendable () -> Bool = { shouldStop() || Task.isCancelled }
        await withTaskGroup(of: Void.self) { group in
            for (i, c) in clusters.enumerated() {
                guard case .api(let client) = c.source else { continue }
                var clusterLogger = logger
                clusterLogger[metadataKey: "cluster"] = "\(c.name)"
                for r in resources {
                    let reflector = Reflector(client: client, resource: r, backoff: .apiServer, watchTimeout: 300, logger: clusterLogger)
                    group.addTask { await reflector.run(into: ClusterFeed(watcher: self, index: i), shouldStop: shouldStop) }
                }
            }
            group.addTask { await self.compileLoop(shouldStop: shouldStop, onSync: onSync) }
        }
    }

    func changed(_ index: Int, kind: String, keys: Set<KindStore.Key>, listed: Bool) {
        metrics?.changes(kind: kind, count: keys.count)
        state.withLock {
            if listed { $0[index].listed.insert(kind) }
            $0[index].dirty[kind, default: []].formUnion(keys)
        }
        doorbell.ring()
    }

    /// The kind whose failure decides the TTL: a cluster's backends are its EndpointSlices.
    static let backendKind = KubeResource.endpointSlices.kind

    func reached(_ index: Int, kind: String) {
        let back = state.withLock { s -> Bool in
            guard s[index].failing.removeValue(forKey: kind) != nil else { return false }
            return s[index].failing.isEmpty
        }
        if back {
            logger.info("cluster reachable again", metadata: ["cluster": "\(clusters[index].name)"])
            doorbell.ring()
        }
    }

    func failed(_ index: Int, kind: String) {
        let first = state.withLock { s -> Bool in
            guard s[index].failing[kind] == nil else { return false }
            s[index].failing[kind] = .now
            return s[index].failing.count == 1
        }
        if first {
            let kept = ttl.map { " for \(Int($0.inSeconds)) s (--cluster-ttl)" } ?? ""
            logger.warning("cluster unreachable: its last state is kept\(kept)", metadata: ["cluster": "\(clusters[index].name)"])
        }
    }

    /// Whether a cluster's EndpointSlices have failed for longer than the TTL.
    func expired(_ s: ClusterState, now: ContinuousClock.Instant) -> Bool {
        guard let ttl, let since = s.failing[Self.backendKind] else { return false }
        return now - since > ttl
    }

    func compileLoop(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void) async {
        let clock = ContinuousClock()
        let start = clock.now
        let everything = Set(resources.map(\.kind))
        var trees: [Int: InotifyTree] = [:]
        var decoded = [DecodedObjects](repeating: DecodedObjects(), count: clusters.count)
        var wasExpired = [Bool](repeating: false, count: clusters.count)
        var published: [Bool]?
        var synced = false
        while !shouldStop() {
            // Directories: what inotify saw since the last wake (a tree that cannot be watched
            // yet is read at every compile and watched again).
            for (i, c) in clusters.enumerated() {
                guard case .directory(let root) = c.source else { continue }
                if trees[i] == nil { trees[i] = try? InotifyTree(root: root) }
                guard let tree = trees[i] else {
                    state.withLock { $0[i].treeChanged = true }
                    continue
                }
                do {
                    if try tree.wait(timeoutMs: 0).events > 0 {
                        tree.rewatch()
                        state.withLock { $0[i].treeChanged = true }
                    }
                } catch {
                    trees[i] = nil
                    state.withLock { $0[i].treeChanged = true }
                }
            }
            let now = clock.now
            if let metrics {
                // Each cluster's gauges, when what they show changed.
                let reachable = state.withLock { s in s.map(\.failing.isEmpty) }
                if published != reachable + wasExpired {
                    published = reachable + wasExpired
                    for (i, c) in clusters.enumerated() { metrics.cluster(c.name, reachable: reachable[i], expired: wasExpired[i]) }
                }
            }
            let (ready, changed, expiredNow) = state.withLock { s -> (Bool, Bool, [Bool]) in
                var ready = true, changed = false
                var expired: [Bool] = []
                for (i, c) in clusters.enumerated() {
                    expired.append(self.expired(s[i], now: now))
                    if case .api = c.source {
                        if s[i].listed != everything { ready = false }
                        if !s[i].dirty.isEmpty { changed = true }
                    } else if s[i].treeChanged {
                        changed = true
                    }
                }
                return (ready, changed, expired)
            }
            for i in clusters.indices where expiredNow[i] != wasExpired[i] {
                logger.warning(expiredNow[i] ? "cluster unreachable for longer than --cluster-ttl: its endpoints are dropped"
                                             : "cluster back: its endpoints are compiled again",
                               metadata: ["cluster": "\(clusters[i].name)"])
            }
            let expiryChanged = expiredNow != wasExpired
            wasExpired = expiredNow
            let startedAnyway = now - start >= startupWait
            guard (changed || expiryChanged || !synced), ready || startedAnyway else {
                if synced { pipeline.checkSink() }
                if synced, pipeline.dueRetry() != nil, let s = pipeline.retryOwedImage() { onSync(s) }
                await doorbell.wait(timeout: .milliseconds(100))
                continue
            }
            if synced { try? await Task.sleep(for: options.debounce) }
            // Take what changed, decode it, and compile every cluster.
            var pending: [[DecodedObjects.Pending]] = []
            var changes = 0
            state.withLock { s in
                for i in clusters.indices {
                    pending.append(decoded[i].pending(s[i].dirty, in: s[i].stores))
                    s[i].dirty = [:]
                    s[i].treeChanged = false
                }
            }
            metrics?.changesTaken()
            for i in clusters.indices { changes += decoded[i].update(pending[i]).count }
            let notReached = state.withLock { s in clusters.indices.filter { i in
                if case .api = clusters[i].source { return s[i].listed != everything }
                return false
            } }
            if !notReached.isEmpty {
                logger.warning("compiling without clusters not reached yet", metadata: ["clusters": "\(notReached.map { clusters[$0].name }.joined(separator: ","))"])
            }
            let frozen = decoded
            let sync = pipeline.sync(changes: changes, kinds: "clusters") { () throws(CompileFailure) -> (Snapshot, [Diagnostic]) in
                var loaded: [(name: String, snapshot: Snapshot)] = []
                var diagnostics: [Diagnostic] = []
                var failures: [Diagnostic] = []
                for (i, c) in clusters.enumerated() {
                    do throws(CompileFailure) {
                        var (snapshot, d): (Snapshot, [Diagnostic])
                        switch c.source {
                        case .api: (snapshot, d) = notReached.contains(i) ? (Snapshot(), []) : try frozen[i].snapshot()
                        case .directory(let root): (snapshot, d) = try InputLoader.load(paths: [root], limits: options.inputLimits)
                        }
                        if expiredNow[i] {
                            snapshot.endpointSlices = []
                            snapshot.pods = []
                        }
                        loaded.append((c.name, snapshot))
                        diagnostics += d
                    } catch {
                        // An API cluster's objects are named by kind and key: say whose they are.
                        var d = error.diagnostics
                        if case .api = c.source { for k in d.indices { d[k].file = "cluster \(c.name): " + (d[k].file ?? "") } }
                        failures += d
                    }
                }
                if !failures.isEmpty { throw CompileFailure(diagnostics: failures) }
                let (merged, d) = Clusters.merge(loaded)
                return (merged, diagnostics + d)
            }
            synced = true
            onSync(sync)
        }
    }
}

/// One cluster's reflectors' view of the watcher.
struct ClusterFeed: ReflectorSink {
    let watcher: ClusterSetWatcher
    let index: Int

    func withStores<T: Sendable>(_ body: (inout [String: KindStore]) -> T) -> T {
        watcher.state.withLock { body(&$0[index].stores) }
    }

    func changed(_ kind: String, keys: Set<KindStore.Key>, listed: Bool) {
        watcher.changed(index, kind: kind, keys: keys, listed: listed)
    }

    func reached(kind: String) {
        watcher.reached(index, kind: kind)
    }

    func apiError(kind: String, reason: String) {
        watcher.failed(index, kind: kind)
        watcher.metrics?.apiError(kind: kind, reason: reason)
    }

    func dropped(kind: String, name: String, seconds: Double) {
        watcher.metrics?.droppedEvent(kind: kind)
    }
}
