import Compiler
import FoundationEssentials
import Logging
import Synchronization

/// `balancer watch --kubeconfig | --in-cluster`: keeps the image current with the API server.
///
/// One reflector per kind lists (paged), then watches from the list's version with bookmarks;
/// a watch that ends is resumed from the last version seen, an ERROR (410 Gone: the version left
/// the server's window) or an unreadable stream leads to a relist, and failures back off with
/// jitter from 0.8 s to 30 s (as client-go's reflector). Every change wakes the compile loop,
/// which waits for a quiet window (never longer than the maximum delay), then compiles all kinds'
/// objects and delivers the image. Nothing is compiled before every kind has been listed once.
public final class ApiWatcher: Sendable {
    let client: KubeClient
    let resources: [KubeResource]
    let pipeline: ImagePipeline
    let options: DirectoryWatcher.Options
    let logger: Logger
    let stores: Mutex<[String: KindStore]>
    let wake = Mutex<(generation: Int, listed: Set<String>)>((0, []))
    /// Each watch request asks the server to end it after this long (it is then resumed).
    let watchTimeout: Int

    public init(client: KubeClient, resources: [KubeResource] = KubeResource.all, options: DirectoryWatcher.Options,
                sink: any ImageSink, metrics: WatchMetrics? = nil, watchTimeoutSeconds: Int = 300,
                logger: Logger = Logger(label: "balancer.watch")) {
        self.client = client
        self.resources = resources
        self.options = options
        self.logger = logger
        watchTimeout = watchTimeoutSeconds
        pipeline = ImagePipeline(options: options, sink: sink, metrics: metrics, logger: logger)
        stores = Mutex(Dictionary(uniqueKeysWithValues: resources.map { ($0.kind, KindStore(kind: $0.kind)) }))
    }

    /// Runs until `shouldStop` says so; `onSync` sees every sync.
    public func run(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void = { _ in }) async {
        let shouldStop: @Sendable () -> Bool = { shouldStop() || Task.isCancelled }
        await withTaskGroup(of: Void.self) { group in
            for r in resources {
                group.addTask { await self.reflect(r, shouldStop: shouldStop) }
            }
            group.addTask { await self.compileLoop(shouldStop: shouldStop, onSync: onSync) }
        }
    }

    func changed(_ kind: String, listed: Bool = false) {
        wake.withLock {
            $0.generation += 1
            if listed { $0.listed.insert(kind) }
        }
    }

    func reflect(_ r: KubeResource, shouldStop: @escaping @Sendable () -> Bool) async {
        var backoff = 0.8
        var relist = true
        while !shouldStop() {
            do {
                if relist {
                    let (items, rv) = try await client.list(r)
                    // Pods are kept trimmed to what the compiler reads.
                    let isPod = r.kind == "Pod"
                    let kept = items.map { item -> (key: KindStore.Key, object: [UInt8]) in
                        (KindStore.Key(namespace: item.namespace, name: item.name), isPod ? trimPodJSON(item.object) : item.object)
                    }
                    stores.withLock { $0[r.kind]?.replace(items: kept, resourceVersion: rv) }
                    changed(r.kind, listed: true)
                    relist = false
                    logger.debug("listed", metadata: ["kind": "\(r.kind)", "objects": "\(items.count)", "resourceVersion": "\(rv)"])
                }
                let from = stores.withLock { $0[r.kind]?.resourceVersion } ?? "0"
                try await client.watch(r, from: from, timeoutSeconds: watchTimeout) { received in
                    var event = received
                    if r.kind == "Pod" && event.type != .error && event.type != .bookmark { event.object = trimPodJSON(event.object) }
                    let (next, moved) = stores.withLock { s -> (KindStore.Next, Bool) in
                        let before = s[r.kind]?.generation ?? 0
                        let n = s[r.kind]?.apply(event) ?? .relist
                        return (n, (s[r.kind]?.generation ?? 0) != before)
                    }
                    if moved { changed(r.kind) }
                    if next == .relist {
                        logger.info("relisting", metadata: ["kind": "\(r.kind)", "code": "\(event.code.map { "\($0)" } ?? "-")"])
                        relist = true
                        return false
                    }
                    return !shouldStop()
                }
                backoff = 0.8
            } catch {
                if shouldStop() { return }
                if let e = error as? KubeError, e.status == 410 { relist = true }
                // A kind the server does not serve (the policies' CRDs not installed): no objects
                // of it, so the others can compile; listed again after the back-off.
                if let e = error as? KubeError, e.status == 404 {
                    relist = true
                    stores.withLock { $0[r.kind]?.replace(items: [], resourceVersion: "0") }
                    changed(r.kind, listed: true)
                }
                if error is WatchStream.Failure { relist = true }
                let delay = backoff * Double.random(in: 0.5...1.5)
                logger.warning("\(r.kind): \(error); retrying in \(String(format: "%.1f", delay)) s")
                backoff = min(backoff * 2, 30)
                var waited = 0.0
                while waited < delay && !shouldStop() {
                    try? await Task.sleep(for: .milliseconds(100))
                    waited += 0.1
                }
            }
        }
    }

    func compileLoop(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void) async {
        var seen = 0
        let everything = Set(resources.map(\.kind))
        while !shouldStop() {
            let (generation, listed) = wake.withLock { ($0.generation, $0.listed) }
            guard generation != seen, listed == everything else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            // Coalesce: a quiet window, at most maxDelay after the first change.
            let clock = ContinuousClock()
            let first = clock.now
            var last = generation
            var quietSince = clock.now
            while clock.now - quietSince < options.debounce && clock.now - first < options.maxDelay && !shouldStop() {
                try? await Task.sleep(for: .milliseconds(5))
                let g = wake.withLock { $0.generation }
                if g != last {
                    last = g
                    quietSince = clock.now
                }
            }
            let manifests = stores.withLock { KindStore.manifests(Array($0.values)) }
            seen = last
            let sync = pipeline.sync(changes: last - generation + 1) { () throws(CompileFailure) in
                try InputLoader.load(contents: manifests)
            }
            onSync(sync)
        }
    }
}
