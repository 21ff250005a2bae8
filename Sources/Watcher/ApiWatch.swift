import Compiler
import FoundationEssentials
import HostSystem
import KubeAPI
import Logging
import Manifests
import MapImage
import Synchronization

/// `balancer watch --kubeconfig | --in-cluster`: keeps the image current with the API server.
///
/// One reflector per kind lists and watches (KubeAPI's Reflector: every response checked against
/// its kind, errors keep the kind's last good state and back off). Every change wakes the compile
/// loop, which waits for a quiet window (never longer than the maximum delay), then compiles all
/// kinds' objects and delivers the image. Nothing is compiled before every kind has been listed once.
public final class ApiWatcher: Sendable {
    let client: KubeClient
    let resources: [KubeResource]
    let pipeline: ImagePipeline
    let options: DirectoryWatcher.Options
    let logger: Logger
    let stores: Mutex<[String: KindStore]>
    let wake = Mutex<WakeState>(WakeState())
    let doorbell = Doorbell()
    let metrics: WatchMetrics?

    /// What the reflectors tell the compile loop: a change counter, the kinds listed at least
    /// once, and the keys of the objects changed since the loop last took them.
    struct WakeState {
        var generation = 0
        var listed: Set<String> = []
        var dirty: [String: Set<KindStore.Key>] = [:]
        /// When the oldest change in `dirty` was received (decoded from its watch event).
        var since: ContinuousClock.Instant?
    }
    /// Each watch request asks the server to end it after this long (it is then resumed).
    let watchTimeout: Int
    /// The back-off after an error of the API server.
    let apiBackoff: BackoffSchedule
    /// Which Pods to ask for (PodScope.swift).
    let pods: PodWatching

    public init(client: KubeClient, resources: [KubeResource] = KubeResource.all, options: DirectoryWatcher.Options,
                sink: any ImageSink, metrics: WatchMetrics? = nil, watchTimeoutSeconds: Int = 300, pods: PodWatching = .all,
                apiBackoff: BackoffSchedule = .apiServer, logger: Logger = Logger(label: "balancer.watch")) {
        self.client = client
        self.pods = pods
        self.apiBackoff = apiBackoff
        self.resources = resources
        self.options = options
        self.logger = logger
        self.metrics = metrics
        watchTimeout = watchTimeoutSeconds
        pipeline = ImagePipeline(options: options, sink: sink, metrics: metrics, logger: logger)
        stores = Mutex(Dictionary(uniqueKeysWithValues: resources.map { ($0.kind, KindStore(kind: $0.kind)) }))
    }

    /// Runs until `shouldStop` says so; `onSync` sees every sync.
    public func run(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void = { _ in }) async {
        let shouldStop: @Sendable () -> Bool = { shouldStop() || Task.isCancelled }
        await withTaskGroup(of: Void.self) { group in
            for r in resources {
                if r.kind == KubeResource.pods.kind, case .asNeeded(let node) = pods {
                    group.addTask { await self.supervisePods(node: node, shouldStop: shouldStop) }
                    continue
                }
                let reflector = Reflector(client: client, resource: r, backoff: apiBackoff, watchTimeout: watchTimeout, logger: logger)
                group.addTask { await reflector.run(into: ReflectorFeed(watcher: self), shouldStop: shouldStop) }
            }
            group.addTask { await self.compileLoop(shouldStop: shouldStop, onSync: onSync) }
        }
    }

    func changed(_ kind: String, keys: Set<KindStore.Key>, listed: Bool = false) {
        metrics?.changes(kind: kind, count: keys.count)
        wake.withLock {
            $0.generation += 1
            // The first list of a kind always makes a sync due, even when it is empty.
            let first = listed && !$0.listed.contains(kind)
            if listed { $0.listed.insert(kind) }
            if !keys.isEmpty || first {
                if $0.dirty.isEmpty { $0.since = .now }
                $0.dirty[kind, default: []].formUnion(keys)
            }
        }
        doorbell.ring()
    }

    /// Full compiles paced as kube-proxy's minSyncPeriod: the first change after a quiet spell is
    /// programmed at once; changes arriving within `debounce` of a full sync wait for the end of
    /// that window and are coalesced into one sync, so a burst costs a few generations and
    /// nothing waits longer than one window. Every kind is compiled incrementally and written as a
    /// delta when the sink takes deltas (IncrementalCompiler), and a delta is not paced; what the
    /// incremental compiler hands over is a full compile.
    /// After incremental syncs, a full compile in the background checks that the live records are
    /// exactly the full compile's, and names the live image; a mismatch loads the full image.
    func compileLoop(shouldStop: @escaping @Sendable () -> Bool, onSync: @escaping @Sendable (WatchSync) -> Void) async {
        let everything = Set(resources.map(\.kind))
        let clock = ContinuousClock()
        var lastSync: ContinuousClock.Instant?
        var lastWasIncremental = false
        var incremental: IncrementalCompiler?
        var syncs = 0
        var verification: (result: VerificationResult, atSync: Int)?
        var forceFull = false
        var unverified = false
        var lastIncrementalSync = clock.now
        let deltaSink = pipeline.sink as? any IncrementalSink
        // A whole image whose delivery failed is owed (retried by the pipeline's back-off); this is
        // the incremental compiler of that image, taken up when the retry delivers it.
        var owedCompiler: IncrementalCompiler?
        // The next full compile is the retry of a failed delta.
        var retryingFull = false
        // Every object as last decoded: a change decodes only what changed, a full compile nothing.
        var objects = DecodedObjects()
        while !shouldStop() {
            // Checking: a verification whose objects are still the live ones confirms them.
            if let v = verification, let done = v.result.result {
                verification = nil
                if v.atSync == syncs, let bytes = done, let deltaSink {
                    let digest = (try? ImageDecoder.decodeHeader(bytes).digestHex) ?? "?"
                    if deltaSink.confirm(image: bytes) {
                        unverified = false
                        pipeline.adopt(digest: digest)
                        metrics?.confirmed(digest: digest)
                        logger.info("incremental state verified against a full compile", metadata: ["sha256": "\(digest)"])
                    } else {
                        logger.error("the live records differ from a full compile: loading the full image", metadata: ["sha256": "\(digest)"])
                        metrics?.recordVerificationFailure()
                        incremental = nil
                        forceFull = true
                    }
                }
            }
            let (listed, hasDirty) = wake.withLock { ($0.listed, !$0.dirty.isEmpty) }
            // A failed delivery is retried without waiting for a change (a change first compiles
            // anew, which replaces what is owed).
            if !hasDirty, !forceFull, listed == everything { pipeline.checkSink() }
            if !hasDirty, !forceFull, listed == everything, let due = pipeline.dueRetry() {
                switch due {
                case .image:
                    if let sync = pipeline.retryOwedImage() {
                        if case .delivered = sync.outcome {
                            incremental = owedCompiler
                            owedCompiler = nil
                            unverified = false
                        }
                        onSync(sync)
                    }
                case .wholeImage:
                    forceFull = true
                    retryingFull = true
                }
                continue
            }
            guard hasDirty || forceFull, listed == everything else {
                // Quiet: start a verification of incremental syncs once changes have settled.
                // It runs on a thread of its own at the lowest priority, on one core, from a copy
                // of the objects (their snapshot is made there too): deltas that come meanwhile
                // take the cores first.
                if unverified, verification == nil, clock.now - lastIncrementalSync > verifyAfter {
                    let frozen = objects
                    let options = self.options
                    let result = VerificationResult()
                    let bell = doorbell
                    let work: @Sendable () -> Void = {
                        if let (snapshot, diagnostics) = try? frozen.snapshot() {
                            result.set(ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diagnostics, options: options.compile).contents))
                        } else {
                            result.set(nil)
                        }
                        bell.ring()
                    }
                    if !BackgroundThread.run(work) { Task.detached(priority: .background, operation: work) }
                    verification = (result, syncs)
                }
                await doorbell.wait(timeout: .milliseconds(100))
                continue
            }
            // The window paces full compiles (seconds of CPU each at scale); after a delta, whose
            // cost is milliseconds, the next sync starts at once: the writer's wait for the last
            // flip's grace period already batches what arrives meanwhile.
            if let last = lastSync, !lastWasIncremental, clock.now - last < options.debounce {
                try? await Task.sleep(until: last + options.debounce, clock: clock)
            } else if incremental != nil {
                // Writes that come together (a Service and its EndpointSlice, a Deployment's
                // Pods) become one generation rather than two a grace period apart: wait for
                // `coalesce` of quiet, at most `coalesceMax` in all.
                let start = clock.now
                var seen = wake.withLock { $0.generation }
                while clock.now - start < coalesceMax {
                    try? await Task.sleep(for: coalesce)
                    let now = wake.withLock { $0.generation }
                    if now == seen { break }
                    seen = now
                }
            }
            let (dirty, firstChange) = wake.withLock { w -> ([String: Set<KindStore.Key>], ContinuousClock.Instant) in
                let d = (w.dirty, w.since ?? clock.now)
                w.dirty = [:]
                metrics?.changesTaken()
                w.since = nil
                return d
            }
            let pending = stores.withLock { objects.pending(dirty, in: $0) }
            let wantFull = forceFull
            // Nothing changed that was not already decoded (a relist that changed nothing): no
            // sync, unless one is owed or no image was made yet.
            if pending.isEmpty, !wantFull, incremental != nil { continue }
            let syncStart = clock.now
            let changed = objects.update(pending)
            let decoded = clock.now
            let changes = changed.count
            let kinds = Set(changed.map(\.kind)).sorted().joined(separator: ",")
            lastSync = clock.now
            lastWasIncremental = false
            syncs += 1
            // A forced full compile (a verification that failed, a retry owed a whole image) never
            // goes the incremental way, even with no change pending.
            forceFull = false
            let objectChanges = changed.compactMap(\.objectChange)
            if !wantFull, let deltaSink, objectChanges.count == changed.count, var compiler = incremental {
                // The only reference: the compiler's tables are changed in place, not copied.
                incremental = nil
                switch compiler.apply(objectChanges) {
                case .delta(let delta):
                    incremental = compiler
                    func ms(_ d: Duration) -> String { String(format: "%.3f", d.inSeconds * 1e3) }
                    let phases = "waited \(ms(syncStart - firstChange)), decode \(ms(decoded - syncStart)), compile \(ms(clock.now - decoded))"
                    let slices = objectChanges.compactMap { $0.objects?.endpointSlices.first }
                    let sync = pipeline.deliver(delta: delta, to: deltaSink, changes: changes, since: firstChange, slices: slices,
                                                phases: phases, kinds: kinds)
                    lastWasIncremental = true
                    if case .failed = sync.outcome {
                        incremental = nil
                        unverified = false
                    } else if !delta.isEmpty {
                        unverified = true
                        lastIncrementalSync = clock.now
                    }
                    onSync(sync)
                    continue
                case .needsFullCompile(let reason):
                    logger.info("full compile", metadata: ["reason": "\(reason)"])
                }
            }
            // The full compile replaces the incremental state whatever it gives: free the old one first
            // (at the scale of a large cluster, two of them at once is hundreds of megabytes).
            incremental = nil
            var next: IncrementalCompiler?
            let sync = pipeline.sync(changes: changes, retrying: retryingFull, since: firstChange, kinds: kinds, load: { () throws(CompileFailure) in
                try objects.snapshot()
            }, compile: { snapshot, diagnostics, options in
                let (result, compiler) = Compiler.compileIncrementally(snapshot, inputDiagnostics: diagnostics, options: options)
                next = compiler
                return result
            })
            retryingFull = false
            // The compile's temporaries are gone: hand their pages back.
            ProcessMemory.releaseFree()
            switch sync.outcome {
            case .delivered, .unchanged:
                incremental = next
                owedCompiler = nil
                unverified = false
            case .failed:
                incremental = nil
                unverified = false
                if sync.failedDelivery { owedCompiler = next }
            }
            onSync(sync)
        }
    }

    /// Before an incremental sync: the quiet that ends the wait for writes that come together,
    /// and the longest wait.
    var coalesce: Duration { .milliseconds(1) }
    var coalesceMax: Duration { .milliseconds(4) }

    /// A full compile after these many quiet seconds checks incremental syncs.
    var verifyAfter: Duration { .seconds(1) }

}

/// The reflectors' view of the watcher: its stores, its wake-ups, its error counter.
struct ReflectorFeed: ReflectorSink {
    let watcher: ApiWatcher

    func withStores<T: Sendable>(_ body: (inout [String: KindStore]) -> T) -> T {
        watcher.stores.withLock { body(&$0) }
    }

    func changed(_ kind: String, keys: Set<KindStore.Key>, listed: Bool) {
        watcher.changed(kind, keys: keys, listed: listed)
    }

    func apiError(kind: String, reason: String) {
        watcher.metrics?.apiError(kind: kind, reason: reason)
    }

    func dropped(kind: String, name: String, seconds: Double) {
        watcher.metrics?.droppedEvent(kind: kind)
        watcher.logger.debug("event dropped: nothing the compiler reads changed",
                             metadata: ["kind": "\(kind)", "name": "\(name)", "event_to_drop_ms": "\(String(format: "%.3f", seconds * 1e3))"])
    }
}

/// Wakes one waiting task; a ring with nobody waiting is kept for the next wait.
final class Doorbell: Sendable {
    private let state = Mutex<(rung: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func ring() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (at once if rung since the last wait), or after `timeout`.
    func wait(timeout: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { ring() }
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.rung {
                    s.rung = false
                    return true
                }
                s.waiter = c
                return false
            }
            if now { c.resume() }
        }
        timer.cancel()
    }
}

/// The result of a background full compile, when it has finished.
final class VerificationResult: Sendable {
    private let value = Mutex<[UInt8]??>(nil)
    func set(_ bytes: [UInt8]?) { value.withLock { $0 = .some(bytes) } }
    /// nil: still running; .some(nil): the compile failed.
    var result: [UInt8]?? { value.withLock { $0 } }
}
