import Compiler
import HostSystem
import KubeAPI
import Logging
import Manifests
import MapImage
import Synchronization

/// Compile, encode, deliver: what every watcher does with its objects after a change. An image
/// equal to the last delivered one is not delivered again; a compile failure keeps what is live.
///
/// A delivery that fails (the datapath not attached yet, its pin directory missing, its maps
/// replaced, any transient error) is owed: the watcher retries it with a jittered back-off
/// (`Options.deliveryBackoff`) without waiting for a change, until the sink holds the image of
/// the current objects. A failed whole image is retried as those bytes (a later change replaces
/// them with a newer compile); a failed delta leaves the sink's records unknown, so what is owed
/// then is a whole image, which the watcher compiles from its current objects. The logs say what
/// is live meanwhile, as the sink reports it ("no image is live yet", "the live image stays").
public final class ImagePipeline: Sendable {
    let options: DirectoryWatcher.Options
    let sink: any ImageSink
    let metrics: WatchMetrics?
    let logger: Logger
    /// The digest of the image the sink holds, to skip delivering it again; nil when not known
    /// (nothing delivered yet, records written as deltas, a delivery failed).
    let lastDigest = Mutex<String?>(nil)
    let owing: Mutex<Owing>
    /// When `checkSink` last asked the sink.
    let lastCheck = Mutex<ContinuousClock.Instant>(.now)
    /// The warnings of the last compile: each is logged when it first appears, not on every
    /// sync (a FIFO in the tree, a slice without a Service).
    let lastWarnings = Mutex<Set<String>>([])

    /// What a failed delivery left to do.
    struct Owing {
        enum Owed {
            /// These bytes (the last compile), and what they were compiled from (for the metrics).
            case image([UInt8], digest: String, snapshot: Snapshot?)
            /// A whole image of the current objects (after a failed delta).
            case wholeImage
        }
        var owed: Owed?
        var backoff: Backoff
        var due: ContinuousClock.Instant?
        /// Retries since the last delivery that succeeded.
        var retries = 0
    }

    /// What a due retry asks of the watcher.
    enum DueRetry: Equatable {
        /// `retryOwedImage()` delivers the owed bytes.
        case image
        /// Compile the current objects and deliver the whole image (`sync(retrying: true)`).
        case wholeImage
    }

    public init(options: DirectoryWatcher.Options, sink: any ImageSink, metrics: WatchMetrics?, logger: Logger) {
        self.options = options
        self.sink = sink
        self.metrics = metrics
        self.logger = logger
        owing = Mutex(Owing(backoff: Backoff(options.deliveryBackoff)))
    }

    /// One compile of what `load` reads, delivered when it differs from the last delivered image.
    /// `retrying`: this compile is the retry of a failed delta (it counts as a retry).
    /// `since`: when the oldest change it compiles was received (logged as event_to_live_ms with
    /// the changed `kinds`).
    public func sync(changes: Int, retrying: Bool = false, since: ContinuousClock.Instant? = nil, kinds: String = "",
                     load: () throws(CompileFailure) -> (Snapshot, [Diagnostic]),
                     compile: (Snapshot, [Diagnostic], CompileOptions) -> CompileResult = { Compiler.compile($0, inputDiagnostics: $1, options: $2) })
        -> WatchSync {
        var compiled: Snapshot?
        let start = ContinuousClock.now
        var context: Logger.Metadata = [:]
        if !kinds.isEmpty { context["kinds"] = "\(kinds)" }
        let result = attempt(changes: changes, retrying: retrying, load: load, compile: compile, compiled: &compiled, start: start,
                             since: since, context: context)
        metrics?.record(result, snapshot: compiled)
        return result
    }

    /// Whether a retry is due now, and of what.
    func dueRetry(now: ContinuousClock.Instant = .now) -> DueRetry? {
        owing.withLock { o in
            guard let owed = o.owed, let due = o.due, due <= now else { return nil }
            if case .wholeImage = owed { return .wholeImage }
            return .image
        }
    }

    /// Every `interval`, while nothing is owed, asks the sink whether it still holds what was
    /// delivered; when it does not (its maps replaced), a whole image is owed at once, so the
    /// datapath converges again with no change of the objects.
    func checkSink(every interval: Duration = .seconds(1)) {
        sink.refreshRuntimeState()
        let now = ContinuousClock.now
        guard lastCheck.withLock({ last in
            guard now - last >= interval else { return false }
            last = now
            return true
        }), !owesDelivery, !sink.stillHolds() else { return }
        lastDigest.withLock { $0 = nil }
        metrics?.setDeliveryPending(true)
        owing.withLock { o in
            o.owed = .wholeImage
            o.due = now
        }
        logger.warning("the sink no longer holds the delivered image (the datapath was attached again?); delivering the whole image again")
    }

    /// Whether a failed delivery is still to be made good.
    var owesDelivery: Bool { owing.withLock { $0.owed != nil } }

    /// Delivers the owed image again; nil when none is owed.
    func retryOwedImage() -> WatchSync? {
        guard case .image(let bytes, let digest, let snapshot)? = owing.withLock({ $0.owed }) else { return nil }
        let result = deliver(bytes, digest: digest, snapshot: snapshot, changes: 0, start: .now, retrying: true)
        metrics?.record(result, snapshot: snapshot)
        return result
    }

    /// Writes an incremental compile's records. The live image then has no known digest until a
    /// full compile confirms it (`adopt`).
    func deliver(delta: RecordDelta, to sink: any IncrementalSink, changes: Int, since start: ContinuousClock.Instant,
                 slices: [EndpointSlice], phases: String = "", kinds: String = "") -> WatchSync {
        func seconds() -> Double { (ContinuousClock.now - start).inSeconds }
        let result: WatchSync
        if delta.isEmpty {
            result = WatchSync(outcome: .unchanged(digest: lastDigest.withLock { $0 } ?? ""), changes: changes, seconds: seconds(), incremental: true)
        } else {
            do {
                let writeStart = ContinuousClock.now
                let what = try sink.apply(delta)
                let writeTime = ContinuousClock.now - writeStart
                lastDigest.withLock { $0 = nil }
                settled()
                let written = delta.summary.map { "\($0.key) +\($0.value.written) -\($0.value.deleted)" }.sorted().joined(separator: ", ")
                result = WatchSync(outcome: .delivered(digest: ""), changes: changes, seconds: seconds(), incremental: true)
                logger.info("records delivered", metadata: ["records": "\(written)", "changes": "\(changes)", "to": "\(what)", "kinds": "\(kinds)",
                                                            "event_to_live_ms": "\(String(format: "%.3f", result.seconds * 1000))",
                                                            "phases_ms": "\(phases), write \(String(format: "%.3f", writeTime.inSeconds * 1e3))"])
            } catch {
                let wait = owe(.wholeImage)
                logger.error("delivery failed; \(liveText()); a whole image of the current objects follows in \(wait.secondsText)",
                             metadata: ["error": "\(error)", "retry": "\(owing.withLock { $0.retries })"])
                var failed = WatchSync(outcome: .failed("\(error)"), changes: changes, seconds: seconds(), incremental: true,
                                       retryIn: wait.inSeconds)
                failed.failedDelivery = true
                result = failed
            }
        }
        metrics?.record(result, changedSlices: slices)
        return result
    }

    /// A full compile confirmed the live records: this is their image.
    func adopt(digest: String) {
        lastDigest.withLock { $0 = digest }
    }

    /// What is live, as the sink tells (for the logs of failures).
    func liveText() -> String {
        switch sink.liveState() {
        case .none: return "no image is live yet"
        case .image(let digest?): return "the live image stays (sha256 \(digest))"
        case .image(nil): return "the live records stay (written as deltas; no digest yet)"
        case .unknown: return lastDigest.withLock { $0 } == nil ? "the live image, if any, stays" : "the live image stays"
        }
    }

    /// Records a failed delivery; returns the wait before its retry.
    private func owe(_ owed: Owing.Owed) -> Duration {
        lastDigest.withLock { $0 = nil }
        metrics?.setDeliveryPending(true)
        return owing.withLock { o in
            o.owed = owed
            let wait = o.backoff.failure()
            o.due = .now + wait
            return wait
        }
    }

    /// A delivery succeeded: nothing is owed.
    private func settled() {
        owing.withLock { o in
            o.owed = nil
            o.due = nil
            o.retries = 0
            o.backoff.reset()
        }
        metrics?.setDeliveryPending(false)
    }

    private func deliver(_ bytes: [UInt8], digest: String, snapshot: Snapshot?, changes: Int, start: ContinuousClock.Instant,
                         retrying: Bool, since: ContinuousClock.Instant? = nil, context: Logger.Metadata = [:]) -> WatchSync {
        func seconds() -> Double { (ContinuousClock.now - start).inSeconds }
        let retry = retrying ? owing.withLock { o -> Int in o.retries += 1; return o.retries } : 0
        if retrying { metrics?.recordDeliveryRetry() }
        do {
            let what = try sink.deliver(bytes, digest: digest)
            lastDigest.withLock { $0 = digest }
            settled()
            var metadata: Logger.Metadata = context.merging(["sha256": "\(digest)", "changes": "\(changes)", "to": "\(what)"]) { $1 }
            if let since { metadata["event_to_live_ms"] = "\(String(format: "%.3f", (ContinuousClock.now - since).inSeconds * 1e3))" }
            if retry > 0 { metadata["retries"] = "\(retry)" }
            logger.info("image delivered", metadata: metadata)
            return WatchSync(outcome: .delivered(digest: digest), changes: changes, seconds: seconds(), retry: retry)
        } catch {
            let wait = owe(.image(bytes, digest: digest, snapshot: snapshot))
            logger.error("delivery failed; \(liveText()); retrying in \(wait.secondsText)",
                         metadata: ["error": "\(error)", "sha256": "\(digest)", "retry": "\(retry)"])
            var sync = WatchSync(outcome: .failed("\(error)"), changes: changes, seconds: seconds(), retry: retry, retryIn: wait.inSeconds)
            sync.failedDelivery = true
            return sync
        }
    }

    private func logNewWarnings(_ diagnostics: [Diagnostic]) {
        let warnings = Set(diagnostics.filter { $0.severity == .warning }.map(\.description))
        let new = lastWarnings.withLock { last -> [String] in
            defer { last = warnings }
            return warnings.subtracting(last).sorted()
        }
        for w in new.prefix(20) { logger.warning("\(w)") }
        if new.count > 20 { logger.warning("\(new.count - 20) more new warnings") }
    }

    private func attempt(changes: Int, retrying: Bool, load: () throws(CompileFailure) -> (Snapshot, [Diagnostic]),
                         compile: (Snapshot, [Diagnostic], CompileOptions) -> CompileResult, compiled: inout Snapshot?,
                         start: ContinuousClock.Instant, since: ContinuousClock.Instant?, context: Logger.Metadata) -> WatchSync {
        func seconds() -> Double { (ContinuousClock.now - start).inSeconds }
        func failed(_ count: Int, _ text: String) -> WatchSync {
            // A compile failure delivers nothing: what is owed stays owed (the last good image),
            // retried after the back-off rather than at once.
            var retryIn: Double?
            owing.withLock { o in
                if o.owed != nil {
                    let wait = o.backoff.failure()
                    o.due = .now + wait
                    retryIn = wait.inSeconds
                }
            }
            logger.error("compile failed; \(liveText())", metadata: ["errors": "\(count)", "first": "\(text)"])
            return WatchSync(outcome: .failed("\(count) error\(count == 1 ? "" : "s"): \(text)"), changes: changes, seconds: seconds(), retryIn: retryIn)
        }
        let bytes: [UInt8]
        do {
            let (snapshot, inputDiagnostics) = try load()
            compiled = snapshot
            let result = compile(snapshot, inputDiagnostics, options.compile)
            logNewWarnings(result.diagnostics)
            let errors = result.diagnostics.filter { $0.severity == .error }
            if !errors.isEmpty && (!options.keepGoing || result.exceedsCapacity) {
                return failed(errors.count, errors.prefix(5).map(\.description).joined(separator: "; "))
            }
            bytes = ImageEncoder.encode(result.contents)
        } catch {
            return failed(error.errors.count, error.errors.prefix(5).map(\.description).joined(separator: "; "))
        }
        let digest = (try? ImageDecoder.decodeHeader(bytes).digestHex) ?? "?"
        if digest == lastDigest.withLock({ $0 }) {
            logger.debug("unchanged", metadata: ["sha256": "\(digest)", "changes": "\(changes)"])
            return WatchSync(outcome: .unchanged(digest: digest), changes: changes, seconds: seconds())
        }
        return deliver(bytes, digest: digest, snapshot: compiled, changes: changes, start: start, retrying: retrying, since: since,
                       context: context)
    }
}

/// What one sync did.
public struct WatchSync: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A new image was delivered.
        case delivered(digest: String)
        /// The image is the one already delivered.
        case unchanged(digest: String)
        /// The compile or the delivery failed; what was live stays.
        case failed(String)
    }

    public var outcome: Outcome
    public var changes: Int
    public var seconds: Double
    /// Written as the records an incremental compile changed (the digest is then unknown: "").
    public var incremental = false
    /// 0: the first delivery of this image; n: the n-th retry of a delivery that failed.
    public var retry = 0
    /// When the delivery failed (or a compile failed while one is owed): the seconds until the
    /// next retry.
    public var retryIn: Double?
    /// The delivery failed (not the compile): what it should have delivered is owed.
    public var failedDelivery = false

    public init(outcome: Outcome, changes: Int, seconds: Double, incremental: Bool = false, retry: Int = 0, retryIn: Double? = nil) {
        self.outcome = outcome
        self.changes = changes
        self.seconds = seconds
        self.incremental = incremental
        self.retry = retry
        self.retryIn = retryIn
    }
}
