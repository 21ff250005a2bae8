import FoundationEssentials
import Loader
import Manifests
import MapImage
import Prometheus
import Synchronization

/// What `/metrics` and `/healthz` report for a watcher (swift-prometheus for the text format).
///
/// kube-proxy's metrics are here under `balancer_` with kube-proxy's meaning (docs/metrics.md maps
/// each), so its dashboards and alerts carry over:
/// `network_programming_duration_seconds` is computed as kube-proxy computes it: for every
/// EndpointSlice whose `endpoints.kubernetes.io/last-change-trigger-time` changed since the last
/// image, the time from that trigger to the moment the image carrying it was delivered. A trigger
/// from before this process started is not observed: it measures the downtime of the agent, not
/// programming (kube-proxy itself records it at a restart).
public final class WatchMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let syncs: Counter
    let syncErrors: Counter
    let syncDuration: DurationHistogram
    let lastSync: Gauge
    let lastQueued: Gauge
    let endpointChanges: Counter
    let endpointChangesPending: Gauge
    let serviceChanges: Counter
    let serviceChangesPending: Gauge
    let programming: DurationHistogram
    /// When this process started (wall clock): older change triggers are not observed.
    let processStart: Date
    let incrementalSyncs: Counter
    let verifications: Counter
    let verificationFailures: Counter
    let deliveryRetries: Counter
    let deliveryPending: Gauge
    /// balancer_api_errors_total and balancer_api_requests_total, by their labels.
    let apiCounters = Mutex<[String: Counter]>([:])
    struct State {
        var liveDigest: String?
        var liveGauge: Gauge?
        var firstDeliveredAt: ContinuousClock.Instant?
        var failingSince: ContinuousClock.Instant?
        var triggers: [String: String] = [:]
        var objectGauges: [String: Gauge] = [:]
        var podScope: Gauge?
    }
    let state = Mutex(State())
    /// Extra exposition text appended at scrape time (the datapath's counters).
    let extra: @Sendable () -> String

    /// `build`: the labels of balancer_build_info (version, commit, image format, ABI, libbpf).
    /// `processStart`: when this process started (tests state one).
    public init(build: [(String, String)] = WatchMetrics.buildLabels, processStart: Date? = nil, extra: @escaping @Sendable () -> String = { "" }) {
        self.extra = extra
        self.processStart = processStart ?? ProcessMetrics.startTime() ?? Date()
        syncs = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "syncs", unitName: "total",
                                                       helpText: "Compiles of the watched source (each followed by a load when the image changed)."))
        syncErrors = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "sync_errors", unitName: "total",
                                                            helpText: "Syncs that failed (compile or load); the live image stayed."))
        // kube-proxy's sync_proxy_rules_duration_seconds: one sync (here compile, encode and load,
        // or an incremental delta), with finer buckets at the low end where deltas land.
        syncDuration = registry.makeDurationHistogram(
            descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_duration", unitName: "seconds",
                              helpText: "Time of one sync: compile, encode and load (kube-proxy's sync_proxy_rules_duration_seconds)."),
            buckets: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10)])
        lastSync = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_last_timestamp", unitName: "seconds",
                                                        helpText: "When the last sync succeeded (Unix time; kube-proxy's sync_proxy_rules_last_timestamp_seconds)."))
        lastQueued = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_last_queued_timestamp", unitName: "seconds",
                                                          helpText: "When a change last made a sync due (Unix time; kube-proxy's sync_proxy_rules_last_queued_timestamp_seconds)."))
        endpointChanges = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_endpoint_changes", unitName: "total",
                                                                 helpText: "EndpointSlice changes received from the API server (added, updated, deleted, listed)."))
        endpointChangesPending = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_endpoint_changes_pending", unitName: "",
                                                                      helpText: "EndpointSlice changes received and not yet taken by a sync."))
        serviceChanges = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_service_changes", unitName: "total",
                                                                helpText: "Service changes received from the API server (added, updated, deleted, listed)."))
        serviceChangesPending = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "sync_proxy_rules_service_changes_pending", unitName: "",
                                                                     helpText: "Service changes received and not yet taken by a sync."))
        for g in [lastSync, lastQueued, endpointChangesPending, serviceChangesPending] { g.set(to: 0) }
        let info = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "build_info", unitName: "",
                                                        helpText: "1, labelled with what this balancer is (balancer version)."),
                                      labels: build)
        info.set(to: 1)
        incrementalSyncs = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "incremental_syncs", unitName: "total",
                                                                  helpText: "Syncs written as the records an incremental compile changed."))
        verifications = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "incremental_verifications", unitName: "total",
                                                               helpText: "Background full compiles that found the live records equal to theirs."))
        verificationFailures = registry.makeCounter(
            descriptor: .init(namespace: "balancer", metricName: "incremental_verification_failures", unitName: "total",
                              helpText: "Background full compiles that found the live records different (the full image was then loaded)."))
        deliveryRetries = registry.makeCounter(
            descriptor: .init(namespace: "balancer", metricName: "delivery_retries", unitName: "total",
                              helpText: "Deliveries retried after a failed one (datapath not attached yet, maps replaced, a transient error)."))
        deliveryPending = registry.makeGauge(
            descriptor: .init(namespace: "balancer", metricName: "delivery_pending", unitName: "",
                              helpText: "1 while the image of the current objects has not been delivered (a failed delivery is being retried)."))
        deliveryPending.set(to: 0)
        // kube-proxy's buckets for the same metric, below them milliseconds: an incremental
        // delta is live within a few of them, which kube-proxy's first bucket (250 ms) would hide.
        var buckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500)]
        buckets += (1...59).map { Duration.seconds($0) }
        buckets += (0..<12).map { Duration.seconds(60 + 5 * $0) }
        buckets += (0..<7).map { Duration.seconds(120 + 30 * $0) }
        programming = registry.makeDurationHistogram(
            descriptor: .init(namespace: "balancer", metricName: "network_programming_duration", unitName: "seconds",
                              helpText: "From an EndpointSlice's last-change-trigger-time to the image carrying it being live (kube-proxy's network_programming_duration_seconds)."),
            buckets: buckets)
    }

    /// Records one sync; `snapshot` is what was compiled (for object counts and trigger times).
    func record(_ sync: DirectoryWatcher.Sync, snapshot: Snapshot?) {
        state.withLock { s in
            if case .delivered(let digest) = outcome(of: sync, &s) {
                setLive(digest, &s)
                if let snapshot { observeTriggers(snapshot, into: &s) }
            }
            if let snapshot {
                for (kind, n) in snapshot.counts where !kind.hasPrefix("skipped/") {
                    let g = s.objectGauges[kind] ?? registry.makeGauge(
                        descriptor: .init(namespace: "balancer", metricName: "objects", unitName: "", helpText: "Objects of each kind in the last compile."),
                        labels: [("kind", kind)])
                    g.set(to: Double(n))
                    s.objectGauges[kind] = g
                }
            }
        }
    }

    /// Records an incremental sync: trigger times of the slices it changed.
    func record(_ sync: DirectoryWatcher.Sync, changedSlices: [EndpointSlice]) {
        incrementalSyncs.increment()
        state.withLock { s in
            if case .delivered = outcome(of: sync, &s) { observeTriggers(changedSlices, into: &s, replacing: false) }
        }
    }

    /// What every sync records, full or incremental: its count and duration, errors, and since when
    /// delivery fails or when it first succeeded.
    private func outcome(of sync: DirectoryWatcher.Sync, _ s: inout State) -> WatchSync.Outcome {
        syncs.increment()
        syncDuration.record(.nanoseconds(Int64(sync.seconds * 1e9)))
        let now = ContinuousClock.now
        switch sync.outcome {
        case .failed:
            syncErrors.increment()
            if s.failingSince == nil { s.failingSince = now }
        case .unchanged:
            s.failingSince = nil
            lastSync.set(to: Date().timeIntervalSince1970)
        case .delivered:
            s.failingSince = nil
            if s.firstDeliveredAt == nil { s.firstDeliveredAt = now }
            lastSync.set(to: Date().timeIntervalSince1970)
        }
        return sync.outcome
    }

    /// The labels of balancer_build_info, as `balancer version` prints them.
    public static var buildLabels: [(String, String)] {
        [("version", BalancerVersion.string), ("commit", BalancerVersion.commit), ("image_format", "\(ImageLayout.formatVersion)"),
         ("datapath_abi", "\(ABI.version)"), ("libbpf", BPFFeatures.libbpfVersion)]
    }

    /// Objects of `kind` changed in a watch event or a list (`count` of them): a sync is due.
    public func changes(kind: String, count: Int) {
        guard count > 0 else { return }
        lastQueued.set(to: Date().timeIntervalSince1970)
        switch kind {
        case "EndpointSlice":
            endpointChanges.increment(by: Int64(count))
            endpointChangesPending.increment(by: Double(count))
        case "Service":
            serviceChanges.increment(by: Int64(count))
            serviceChangesPending.increment(by: Double(count))
        default: break
        }
    }

    /// Which Pods the watcher asks the API server for (PodScope): none, this node's, all.
    func podScope(_ scope: String) {
        state.withLock { s in
            if let g = s.podScope { registry.unregisterGauge(g) }
            let g = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "pods_watched", unitName: "info",
                                                         helpText: "The Pods this watcher asks the API server for, by scope (what the policies need)."),
                                       labels: [("scope", scope)])
            g.set(to: 1)
            s.podScope = g
        }
    }

    /// A sync took every change received so far.
    public func changesTaken() {
        endpointChangesPending.set(to: 0)
        serviceChangesPending.set(to: 0)
    }

    /// A full compile confirmed the live records (after incremental syncs): name the image.
    func confirmed(digest: String) {
        state.withLock { s in setLive(digest, &s) }
        verifications.increment()
    }

    func recordVerificationFailure() {
        verificationFailures.increment()
    }

    func recordDeliveryRetry() {
        deliveryRetries.increment()
    }

    func setDeliveryPending(_ pending: Bool) {
        deliveryPending.set(to: pending ? 1 : 0)
    }

    /// A response of the API server refused, or a request that failed, for `kind`: `reason` is
    /// KubeError.label (wrong_kind, status_object, too_large, gone, http_404, transport, …).
    public func apiError(kind: String, reason: String) {
        apiCounter("errors", help: "Errors of the API server's responses, by kind and reason; the kind's last good state stayed.",
                   labels: [("kind", kind), ("reason", reason)]).increment()
    }

    /// A cluster of `watch --cluster`: 1 while its API server answers (a directory: always),
    /// and 1 while its endpoints are dropped for --cluster-ttl (as ClusterMesh's readiness).
    public func cluster(_ name: String, reachable: Bool, expired: Bool) {
        let up = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "cluster_reachable", unitName: "",
                                                      helpText: "1 while the cluster's API server answers every kind (watch --cluster)."),
                                    labels: [("cluster", name)])
        up.set(to: reachable ? 1 : 0)
        let dropped = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "cluster_endpoints_dropped", unitName: "",
                                                           helpText: "1 while the cluster's endpoints are left out: its EndpointSlices failed for longer than --cluster-ttl."),
                                         labels: [("cluster", name)])
        dropped.set(to: expired ? 1 : 0)
    }

    /// A watch event that changed nothing the compiler reads, dropped without a compile.
    public func droppedEvent(kind: String) {
        apiCounter("events_dropped", help: "Watch events that changed nothing the compiler reads (status heartbeats of Nodes and Pods, objects sent again), dropped without a compile.",
                   labels: [("kind", kind)]).increment()
    }

    /// A request to the API server (verb: list for each page, watch).
    public func apiRequest(kind: String, verb: String) {
        apiCounter("requests", help: "Requests to the API server, by kind and verb (list counts pages).",
                   labels: [("kind", kind), ("verb", verb)]).increment()
    }

    private func apiCounter(_ name: String, help: String, labels: [(String, String)]) -> Counter {
        let key = name + "|" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        return apiCounters.withLock { c in
            if let existing = c[key] { return existing }
            let made = registry.makeCounter(descriptor: .init(namespace: "balancer", metricName: "api_\(name)", unitName: "total", helpText: help),
                                            labels: labels)
            c[key] = made
            return made
        }
    }

    private func setLive(_ digest: String, _ s: inout State) {
        guard digest != s.liveDigest else { return }
        if let g = s.liveGauge { registry.unregisterGauge(g) }
        let g = registry.makeGauge(descriptor: .init(namespace: "balancer", metricName: "live_image", unitName: "info",
                                                     helpText: "The image live (or last written), by SHA-256."),
                                   labels: [("sha256", digest)])
        g.set(to: 1.0)
        s.liveGauge = g
        s.liveDigest = digest
    }

    private func observeTriggers(_ snapshot: Snapshot, into s: inout State) {
        observeTriggers(snapshot.endpointSlices, into: &s, replacing: true)
    }

    private func observeTriggers(_ slices: [EndpointSlice], into s: inout State, replacing: Bool) {
        let wallNow = Date()
        var seen: [String: String] = replacing ? [:] : s.triggers
        for slice in slices {
            guard let t = slice.meta.annotations["endpoints.kubernetes.io/last-change-trigger-time"] else { continue }
            let key = "\(slice.meta.namespace)/\(slice.meta.name)"
            seen[key] = t
            guard s.triggers[key] != t, let when = try? Date(t, strategy: .iso8601), when >= processStart else { continue }
            let age = wallNow.timeIntervalSince(when)
            if age >= 0 { programming.record(.nanoseconds(Int64(age * 1e9))) }
        }
        s.triggers = seen
    }

    /// The Prometheus text exposition.
    public func exposition() -> String {
        registry.emitToString() + ProcessMetrics.exposition() + extra()
    }

    /// 200 once the first image is live, unless syncs have been failing for longer than
    /// `unhealthyAfter`; else 503, with the reason.
    public func health(unhealthyAfter: Duration) -> (ok: Bool, text: String) {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard s.firstDeliveredAt != nil else { return (false, "no image delivered yet\n") }
            if let since = s.failingSince, now - since > unhealthyAfter {
                return (false, "syncing has failed for \(now - since)\n")
            }
            return (true, "ok: \(s.liveDigest ?? "")\n")
        }
    }
}
