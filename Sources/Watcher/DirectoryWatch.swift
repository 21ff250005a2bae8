import CInotify
import Compiler
import FoundationEssentials
import HostSystem
import KubeAPI
import Logging
import Manifests
import MapImage

#if canImport(Glibc)
import Glibc
#endif

/// `balancer watch --dir`: keeps an image current with a directory tree of manifests.
///
/// Every change under the tree (edits, renames, deletions, a git checkout or a directory swapped
/// in atomically, a Kubernetes-style `..data` symlink flip) is seen through inotify on every
/// directory of the tree and on the root's parent. Changes are coalesced: a compile starts once
/// the tree has been quiet for the debounce window, or at the latest after `maxDelay` of
/// continuous changes, so a steady trickle never starves the datapath. The whole tree is
/// recompiled (a directory is small next to the API's object counts; the compile of the
/// 150,000-endpoint benchmark takes about two seconds). A compile error keeps the last image
/// serving and is reported; the next change tries again. A delivery that fails (the datapath not
/// attached yet, say) is retried with back-off until it succeeds, with no change needed.
public final class DirectoryWatcher {
    public struct Options: Sendable {
        public var debounce: Duration
        public var maxDelay: Duration
        public var compile: CompileOptions
        public var keepGoing: Bool
        /// The back-off of a failed delivery's retries (ImagePipeline).
        public var deliveryBackoff: BackoffSchedule
        /// What the directory watcher reads at most (a file over the cap is an error).
        public var inputLimits: InputLimits

        public init(debounce: Duration = .milliseconds(50), maxDelay: Duration = .seconds(2), compile: CompileOptions = CompileOptions(),
                    keepGoing: Bool = false, deliveryBackoff: BackoffSchedule = .delivery, inputLimits: InputLimits = InputLimits()) {
            self.debounce = debounce
            self.maxDelay = maxDelay
            self.compile = compile
            self.keepGoing = keepGoing
            self.deliveryBackoff = deliveryBackoff
            self.inputLimits = inputLimits
        }
    }

    public typealias Sync = WatchSync

    public let root: String
    let options: Options
    let sink: any ImageSink
    var logger: Logger

    let pipeline: ImagePipeline

    public init(root: String, options: Options, sink: any ImageSink, metrics: WatchMetrics? = nil,
                logger: Logger = Logger(label: "balancer.watch")) {
        pipeline = ImagePipeline(options: options, sink: sink, metrics: metrics, logger: logger)
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        self.options = options
        self.sink = sink
        self.logger = logger
    }

    /// Compiles and delivers now, then on every change until `shouldStop` returns true (checked
    /// at least every 200 ms). `onSync` sees every sync, for status and metrics.
    public func run(shouldStop: () -> Bool, onSync: (Sync) -> Void = { _ in }) throws(WatchError) {
        let tree = try InotifyTree(root: root)
        onSync(sync(changes: 0))
        let clock = ContinuousClock()
        while !shouldStop() {
            let batch = try tree.wait(timeoutMs: 200)
            guard batch.events > 0 else {
                // Quiet: a failed delivery is retried when its back-off is over, with no change
                // needed (the owed image is the compile of the tree as it is: any change since
                // would have compiled anew).
                pipeline.checkSink()
                switch pipeline.dueRetry() {
                case .image?: if let s = pipeline.retryOwedImage() { onSync(s) }
                case .wholeImage?: onSync(sync(changes: 0, retrying: true))
                case nil: break
                }
                continue
            }
            var changes = Int(batch.events)
            var structural = batch.new_dirs != 0 || batch.removed != 0 || batch.overflowed != 0
            // Coalesce: wait for a quiet window, but never longer than maxDelay in all.
            let first = clock.now
            var quietUntil = first + options.debounce
            while clock.now < quietUntil && clock.now < first + options.maxDelay && !shouldStop() {
                let left = min(quietUntil, first + options.maxDelay) - clock.now
                let ms = max(1, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
                let more = try tree.wait(timeoutMs: Int32(ms))
                if more.events > 0 {
                    changes += Int(more.events)
                    structural = structural || more.new_dirs != 0 || more.removed != 0 || more.overflowed != 0
                    quietUntil = clock.now + options.debounce
                }
            }
            _ = structural
            tree.rewatch()
            onSync(sync(changes: changes))
        }
    }

    /// One compile of the whole tree, delivered when it differs from the last delivered image.
    func sync(changes: Int, retrying: Bool = false) -> Sync {
        pipeline.sync(changes: changes, retrying: retrying) { () throws(CompileFailure) in try InputLoader.load(paths: [root], limits: options.inputLimits) }
    }
}

/// A watcher failure that stops it (the tree could not be watched at all).
public struct WatchError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ operation: String, _ target: String, _ errno: Int32) {
        description = FileSystemError(operation, path: target, code: errno).description
    }
}
