import Compiler
import Foundation
@testable import KubeAPI
import Manifests
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// Deliveries that fail (the datapath not attached yet, its maps replaced, a transient error)
/// are retried with back-off until the sink holds the image of the current objects, with no
/// change needed; the logs say truthfully what is live meanwhile.
@Suite(.serialized) struct DeliveryRetryTests {
    static let fast = BackoffSchedule(initial: .milliseconds(20), maximum: .milliseconds(100), resetAfter: .seconds(60))

    /// A sink (the tables a datapath would hold) whose next `failDeliveries` whole images and
    /// `failApplies` deltas fail, as a datapath not attached yet does.
    final class FlakySink: IncrementalSink, Sendable {
        struct State {
            var tables: [ImageTable: RecordTable] = [:]
            var digest: String?
            var live = false
            var failDeliveries = 0, failApplies = 0
            /// The sink lost what it held (a datapath attached again: new, empty maps).
            var lost = false
            var images = 0, deltas = 0, failures = 0
        }
        let state = Mutex(State())

        init(failDeliveries: Int = 0, failApplies: Int = 0) {
            state.withLock {
                $0.failDeliveries = failDeliveries
                $0.failApplies = failApplies
            }
        }

        func deliver(_ bytes: [UInt8], digest: String) throws -> String {
            let t = try ImageRecords.tables(of: bytes)
            try state.withLock { s in
                if s.failDeliveries > 0 {
                    s.failDeliveries -= 1
                    s.failures += 1
                    throw SinkError("open pinned map /sys/fs/bpf/x/maps/bl_frontends: No such file or directory (not attached yet)")
                }
                s.tables = t
                s.digest = digest
                s.live = true
                s.lost = false
                s.images += 1
            }
            return "tables"
        }

        func apply(_ delta: RecordDelta) throws -> String {
            try state.withLock { s in
                if s.failApplies > 0 {
                    s.failApplies -= 1
                    s.failures += 1
                    // A failed delta may have written part of it: the sink's records are not known.
                    throw SinkError("the datapath's maps were replaced by another process")
                }
                s.tables = delta.applied(to: s.tables)
                s.digest = nil
                s.deltas += 1
            }
            return "tables"
        }

        func confirm(image bytes: [UInt8]) -> Bool {
            let t = try? ImageRecords.tables(of: bytes)
            return state.withLock { t == $0.tables }
        }

        func liveState() -> LiveState {
            state.withLock { $0.live ? .image(digest: $0.digest) : LiveState.none }
        }

        func stillHolds() -> Bool { state.withLock { !$0.lost } }

        /// What a detach and attach do to a datapath: new, empty maps.
        func replaceMaps() {
            state.withLock { s in
                s.tables = [:]
                s.digest = nil
                s.live = false
                s.lost = true
            }
        }
    }

    static func tables(ofTree root: String) throws -> [ImageTable: RecordTable] {
        let (snapshot, diags) = try InputLoader.load(paths: [root])
        return try ImageRecords.tables(of: ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diags).contents))
    }

    func metric(_ metrics: WatchMetrics, _ name: String) -> Double? {
        for line in metrics.exposition().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// `watch --dir` started before the datapath is there: the first deliveries fail, and the
    /// tree's image reaches the sink with no change to the tree. Later, with an image live, a
    /// failing delivery says the live image stays, and converges again by itself.
    @Test func directoryWatcherRetriesUntilDelivered() async throws {
        let base = NSTemporaryDirectory() + "balancer-retry-\(UUID().uuidString)"
        let tree = base + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try DirectoryWatchTests.service(backend: "10.244.1.10").write(toFile: tree + "/web.yaml", atomically: true, encoding: .utf8)

        let sink = FlakySink(failDeliveries: 3)
        let metrics = WatchMetrics()
        let log = LogCapture(echo: .critical)
        let syncs = Mutex<[WatchSync]>([])
        let stop = Atomic<Bool>(false)
        let thread = Thread {
            let w = DirectoryWatcher(root: tree, options: .init(debounce: .milliseconds(30), deliveryBackoff: Self.fast), sink: sink, metrics: metrics,
                                     logger: log.logger)
            try? w.run(shouldStop: { stop.load(ordering: .relaxed) }) { s in syncs.withLock { $0.append(s) } }
        }
        thread.start()
        defer {
            stop.store(true, ordering: .relaxed)
            for _ in 0..<50 where !thread.isFinished { usleep(20_000) }
        }
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.images } == 1, "delivered with no change to the tree")
        #expect(sink.state.withLock { $0.tables } == (try Self.tables(ofTree: tree)))
        let seen = syncs.withLock { $0 }
        #expect(seen.map(\.retry) == [0, 1, 2, 3], "\(seen.map(\.outcome))")
        #expect(seen.prefix(3).allSatisfy { $0.failedDelivery && $0.retryIn != nil })
        if case .delivered = seen.last?.outcome {} else { Issue.record("the last sync: \(String(describing: seen.last?.outcome))") }
        #expect(log.matching("delivery failed; no image is live yet; retrying in").count == 3, "\(log.matching("delivery failed"))")
        #expect(!log.contains("the live image stays"))
        #expect(log.contains("retries=3", "image delivered"))
        #expect(metric(metrics, "balancer_delivery_retries_total") == 3)
        #expect(metric(metrics, "balancer_delivery_pending") == 0)
        #expect(metric(metrics, "balancer_sync_errors_total") == 3)

        // An image is live now: a change whose delivery fails keeps it, and says so.
        let first = sink.state.withLock { $0.digest } ?? ""
        sink.state.withLock { $0.failDeliveries = 2 }
        try DirectoryWatchTests.service(backend: "10.244.1.11").write(toFile: tree + "/web.yaml", atomically: true, encoding: .utf8)
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 1 { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.images } == 2)
        #expect(sink.state.withLock { $0.tables } == (try Self.tables(ofTree: tree)))
        #expect(log.matching("delivery failed; the live image stays (sha256 \(first)); retrying in").count == 2, "\(log.matching("delivery failed"))")
        #expect(metric(metrics, "balancer_delivery_retries_total") == 5)
    }

    /// `watch --kubeconfig` before the datapath is there: no cluster change is needed for the
    /// image of the server's objects to arrive.
    @Test func apiWatcherRetriesAWholeImage() async throws {
        let sink = FlakySink(failDeliveries: 4)
        let h = try ApiFaultTests.Harness(sink: sink, options: .init(debounce: .milliseconds(20), deliveryBackoff: Self.fast))
        h.start()
        let expected = try ImageRecords.tables(of: try h.expected())
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.images } == 1 && sink.state.withLock { $0.failures } == 4)
        #expect(sink.state.withLock { $0.tables } == expected)
        #expect(h.log.matching("delivery failed; no image is live yet").count == 4)
        #expect(h.log.contains("retries=4", "image delivered"))
        await h.finish()
    }

    /// A delta that fails leaves the sink's records unknown: the retry is a whole image of the
    /// current objects (nothing lost), and slice changes are deltas again after it.
    @Test func aFailedDeltaIsRetriedAsAWholeImage() async throws {
        let sink = FlakySink(failApplies: 1)
        let h = try ApiFaultTests.Harness(sink: sink, options: .init(debounce: .milliseconds(20), deliveryBackoff: Self.fast))
        h.start()
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.images } == 1)
        // A slice change: a delta, which fails.
        h.api.put(ApiFaultTests.slicesPath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                  ApiFaultTests.slice("app0-1", service: "app0", "10.244.7.50"))
        let expected = try ImageRecords.tables(of: try h.expected())
        for _ in 0..<500 where sink.state.withLock({ $0.tables != expected }) { try? await Task.sleep(for: .milliseconds(20)) }
        let (images, deltas, failures) = sink.state.withLock { ($0.images, $0.deltas, $0.failures) }
        #expect(sink.state.withLock { $0.tables } == expected, "the records equal a full compile of the server's objects")
        #expect(failures == 1 && images == 2 && deltas == 0, "images \(images), deltas \(deltas), failures \(failures)")
        #expect(h.log.contains("delivery failed; the live image stays", "a whole image of the current objects follows"), "\(h.log.matching("delivery"))")
        // Deltas again afterwards.
        h.api.put(ApiFaultTests.slicesPath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                  ApiFaultTests.slice("app0-1", service: "app0", "10.244.7.51"))
        let next = try ImageRecords.tables(of: try h.expected())
        for _ in 0..<500 where sink.state.withLock({ $0.tables != next }) { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.tables } == next)
        #expect(sink.state.withLock { $0.deltas } == 1)
        await h.finish()
    }

    /// The datapath attached again while the watcher is idle (new, empty maps): the watcher
    /// notices within a second and delivers the whole image again, with no change of the objects.
    @Test func replacedMapsGetTheImageAgain() async throws {
        // watch --dir
        let base = NSTemporaryDirectory() + "balancer-replaced-\(UUID().uuidString)"
        let tree = base + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try DirectoryWatchTests.service(backend: "10.244.1.10").write(toFile: tree + "/web.yaml", atomically: true, encoding: .utf8)
        let sink = FlakySink()
        let log = LogCapture(echo: .critical)
        let stop = Atomic<Bool>(false)
        let thread = Thread {
            let w = DirectoryWatcher(root: tree, options: .init(debounce: .milliseconds(30), deliveryBackoff: Self.fast), sink: sink, logger: log.logger)
            try? w.run(shouldStop: { stop.load(ordering: .relaxed) })
        }
        thread.start()
        defer {
            stop.store(true, ordering: .relaxed)
            for _ in 0..<50 where !thread.isFinished { usleep(20_000) }
        }
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        sink.replaceMaps()
        for _ in 0..<500 where sink.state.withLock({ $0.images }) < 2 { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.state.withLock { $0.images } == 2, "delivered again")
        #expect(sink.state.withLock { $0.tables } == (try Self.tables(ofTree: tree)))
        #expect(log.contains("the sink no longer holds the delivered image"))

        // watch --kubeconfig, after a delta (the records had no digest)
        let apiSink = FlakySink()
        let h = try ApiFaultTests.Harness(sink: apiSink, options: .init(debounce: .milliseconds(20), deliveryBackoff: Self.fast))
        h.start()
        for _ in 0..<500 where apiSink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
        h.api.put(ApiFaultTests.slicesPath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                  ApiFaultTests.slice("app0-1", service: "app0", "10.244.7.50"))
        let expected = try ImageRecords.tables(of: try h.expected())
        for _ in 0..<500 where apiSink.state.withLock({ $0.tables != expected }) { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(apiSink.state.withLock { $0.deltas } == 1)
        apiSink.replaceMaps()
        for _ in 0..<500 where apiSink.state.withLock({ $0.tables != expected }) { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(apiSink.state.withLock { $0.tables } == expected, "the whole image again")
        #expect(apiSink.state.withLock { $0.images } == 2)
        await h.finish()
    }
}
