import Compiler
import Logging
import MapImage
import Synchronization

/// Compile, encode, deliver: what every watcher does with its objects after a change. An image
/// equal to the last delivered one is not delivered again; a failure keeps the live image.
public final class ImagePipeline: Sendable {
    let options: DirectoryWatcher.Options
    let sink: any ImageSink
    let metrics: WatchMetrics?
    let logger: Logger
    let lastDigest = Mutex<String?>(nil)

    public init(options: DirectoryWatcher.Options, sink: any ImageSink, metrics: WatchMetrics?, logger: Logger) {
        self.options = options
        self.sink = sink
        self.metrics = metrics
        self.logger = logger
    }

    /// One compile of what `load` reads, delivered when it differs from the last delivered image.
    public func sync(changes: Int, load: () throws(CompileFailure) -> (Snapshot, [Diagnostic]),
                     compile: (Snapshot, [Diagnostic], CompileOptions) -> CompileResult = { Compiler.compile($0, inputDiagnostics: $1, options: $2) })
        -> WatchSync {
        var compiled: Snapshot?
        let result = attempt(changes: changes, load: load, compile: compile, compiled: &compiled)
        metrics?.record(result, snapshot: compiled)
        return result
    }

    /// Writes an incremental compile's records. The live image then has no known digest until a
    /// full compile confirms it (`adopt`).
    func deliver(delta: RecordDelta, to sink: any IncrementalSink, changes: Int, since start: ContinuousClock.Instant,
                 slices: [EndpointSlice], phases: String = "") -> WatchSync {
        func seconds() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let result: WatchSync
        if delta.isEmpty {
            result = WatchSync(outcome: .unchanged(digest: lastDigest.withLock { $0 } ?? ""), changes: changes, seconds: seconds(), incremental: true)
        } else {
            do {
                let writeStart = ContinuousClock.now
                let what = try sink.apply(delta)
                let writeTime = ContinuousClock.now - writeStart
                lastDigest.withLock { $0 = nil }
                let written = delta.summary.map { "\($0.key) +\($0.value.written) -\($0.value.deleted)" }.sorted().joined(separator: ", ")
                result = WatchSync(outcome: .delivered(digest: ""), changes: changes, seconds: seconds(), incremental: true)
                logger.info("records delivered", metadata: ["records": "\(written)", "changes": "\(changes)", "to": "\(what)",
                                                            "event_to_live_ms": "\(String(format: "%.3f", result.seconds * 1000))",
                                                            "phases_ms": "\(phases), write \(String(format: "%.3f", Double(writeTime.components.attoseconds) / 1e15 + Double(writeTime.components.seconds) * 1e3))"])
            } catch {
                logger.error("delivery failed; the live image stays", metadata: ["error": "\(error)"])
                result = WatchSync(outcome: .failed("\(error)"), changes: changes, seconds: seconds(), incremental: true)
            }
        }
        metrics?.record(result, changedSlices: slices)
        return result
    }

    /// A full compile confirmed the live records: this is their image.
    func adopt(digest: String) {
        lastDigest.withLock { $0 = digest }
    }

    private func attempt(changes: Int, load: () throws(CompileFailure) -> (Snapshot, [Diagnostic]),
                         compile: (Snapshot, [Diagnostic], CompileOptions) -> CompileResult, compiled: inout Snapshot?) -> WatchSync {
        typealias Sync = WatchSync
        let clock = ContinuousClock()
        let start = clock.now
        func seconds() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let bytes: [UInt8]
        do {
            let (snapshot, inputDiagnostics) = try load()
            compiled = snapshot
            let result = compile(snapshot, inputDiagnostics, options.compile)
            let errors = result.diagnostics.filter { $0.severity == .error }
            if !errors.isEmpty && !options.keepGoing {
                let text = errors.prefix(5).map(\.description).joined(separator: "; ")
                logger.error("compile failed; the live image stays", metadata: ["errors": "\(errors.count)", "first": "\(text)"])
                return Sync(outcome: .failed("\(errors.count) error\(errors.count == 1 ? "" : "s"): \(text)"), changes: changes, seconds: seconds())
            }
            bytes = ImageEncoder.encode(result.contents)
        } catch {
            let text = error.errors.prefix(5).map(\.description).joined(separator: "; ")
            logger.error("compile failed; the live image stays", metadata: ["errors": "\(error.errors.count)", "first": "\(text)"])
            return Sync(outcome: .failed("\(error.errors.count) error\(error.errors.count == 1 ? "" : "s"): \(text)"), changes: changes, seconds: seconds())
        }
        let digest = (try? ImageDecoder.decodeHeader(bytes).digestHex) ?? "?"
        if digest == lastDigest.withLock({ $0 }) {
            logger.debug("unchanged", metadata: ["sha256": "\(digest)", "changes": "\(changes)"])
            return Sync(outcome: .unchanged(digest: digest), changes: changes, seconds: seconds())
        }
        do {
            let what = try sink.deliver(bytes, digest: digest)
            lastDigest.withLock { $0 = digest }
            logger.info("image delivered", metadata: ["sha256": "\(digest)", "changes": "\(changes)", "to": "\(what)"])
            return Sync(outcome: .delivered(digest: digest), changes: changes, seconds: seconds())
        } catch {
            logger.error("delivery failed; the live image stays", metadata: ["error": "\(error)"])
            return Sync(outcome: .failed("\(error)"), changes: changes, seconds: seconds())
        }
    }
}

/// What one sync did.
public struct WatchSync: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A new image was delivered.
        case delivered(digest: String)
        /// The image is the one already delivered.
        case unchanged(digest: String)
        /// The compile or the delivery failed; the previous image stays.
        case failed(String)
    }

    public var outcome: Outcome
    public var changes: Int
    public var seconds: Double
    /// Written as the records an incremental compile changed (the digest is then unknown: "").
    public var incremental = false

    public init(outcome: Outcome, changes: Int, seconds: Double, incremental: Bool = false) {
        self.outcome = outcome
        self.changes = changes
        self.seconds = seconds
        self.incremental = incremental
    }
}
