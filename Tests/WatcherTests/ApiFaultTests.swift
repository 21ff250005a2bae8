import Compiler
import Foundation
import HostSystem
@testable import KubeAPI
import Logging
import Manifests
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// `watch --kubeconfig` against a broken API server (the double, APIServerDouble, with faults
/// injected: there is no API server on this machine). Each class of bad response keeps the last
/// good image, is counted in balancer_api_errors_total, backs off (a handful of requests, not
/// hundreds), and once the server is fixed the image converges to a full compile of its objects.
@Suite(.serialized) struct ApiFaultTests {
    /// A short back-off for the tests (the schedule's shape, not its scale, is what they check).
    static let fast = BackoffSchedule(initial: .milliseconds(50), maximum: .milliseconds(400), resetAfter: .seconds(60))
    /// Small caps: objects of 64 KiB, pages of 256 KiB (4 objects a page).
    static let limits = KubeLimits(maxObjectBytes: 64 << 10, maxResponseBytes: 256 << 10)
    static let servicesPath = "/api/v1/services"
    static let slicesPath = "/apis/discovery.k8s.io/v1/endpointslices"

    static func service(_ name: String, _ ip: String) -> String {
        #"{"metadata":{"name":"\#(name)","namespace":"default"},"spec":{"clusterIP":"\#(ip)","clusterIPs":["\#(ip)"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#
    }

    static func slice(_ name: String, service: String, _ address: String) -> String {
        #"{"metadata":{"name":"\#(name)","namespace":"default","labels":{"kubernetes.io/service-name":"\#(service)"}},"addressType":"IPv4","endpoints":[{"addresses":["\#(address)"]}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}"#
    }

    final class Harness: Sendable {
        let api: APIServerDouble
        let client: KubeClient
        let metrics = WatchMetrics()
        let log: LogCapture
        let base: String
        let watcher: ApiWatcher
        let stop = Atomic<Bool>(false)
        let task = Mutex<Task<Void, Never>?>(nil)

        init(backoff: BackoffSchedule = ApiFaultTests.fast, resources: [KubeResource] = [.services, .endpointSlices, .nodes, .pods],
             sink: (any ImageSink)? = nil, options: DirectoryWatcher.Options = .init(debounce: .milliseconds(20)), echo: Logger.Level = .critical,
             pods: PodWatching = .all) throws {
            log = LogCapture(echo: echo)
            api = try APIServerDouble()
            for (path, kind, version, json) in try ApiWatchTests.recorded() { api.put(path, kind: kind, apiVersion: version, json) }
            for i in 0..<5 {
                api.put(ApiFaultTests.servicesPath, kind: "Service", apiVersion: "v1", ApiFaultTests.service("app\(i)", "10.96.7.\(i + 1)"))
                api.put(ApiFaultTests.slicesPath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                        ApiFaultTests.slice("app\(i)-1", service: "app\(i)", "10.244.7.\(i + 1)"))
            }
            base = NSTemporaryDirectory() + "balancer-apifault-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            let metrics = self.metrics
            client = try KubeClient(config: KubeClientConfig(server: "http://127.0.0.1:\(api.port)", insecureSkipTLSVerify: false, token: "good", origin: "test"),
                                    limits: ApiFaultTests.limits) { kind, verb in metrics.apiRequest(kind: kind, verb: verb) }
            watcher = ApiWatcher(client: client, resources: resources, options: options, sink: sink ?? DirectorySink(directory: base),
                                 metrics: metrics, pods: pods, apiBackoff: backoff, logger: log.logger)
        }

        func start() {
            let run = Task { [self] in await watcher.run(shouldStop: { self.stop.load(ordering: .relaxed) }) }
            task.withLock { $0 = run }
        }

        func finish() async {
            stop.store(true, ordering: .relaxed)
            await task.withLock { $0 }?.value
            await client.shutdown()
            api.stop()
            try? FileManager.default.removeItem(atPath: base)
        }

        func latest() -> [UInt8]? { try? FileContents.read(base + "/latest") }

        /// A full compile of the server's objects.
        func expected() throws -> [UInt8] {
            let (snapshot, diags) = try InputLoader.load(contents: ApiWatchTests.serverObjects(api))
            return ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diags).contents)
        }

        /// Waits until the image is a full compile of the server's objects.
        /// (Generous: on a loaded 2-core machine, tests that block threads can starve the pool.)
        func converged(seconds: Double = 30) async throws -> Bool {
            let want = try expected()
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if latest() == want { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        func requests(_ path: String) -> Int {
            api.state.withLock { ($0.lists[path] ?? 0) + ($0.watches[path] ?? 0) }
        }

        /// balancer_api_errors_total{kind, reason}.
        func errors(kind: String, reason: String) -> Double {
            for line in metrics.exposition().split(separator: "\n")
            where line.hasPrefix("balancer_api_errors_total{") && line.contains("kind=\"\(kind)\"") && line.contains("reason=\"\(reason)\"") {
                return Double(line.split(separator: " ").last ?? "") ?? 0
            }
            return 0
        }
    }

    /// A bad response of the Services path, how it is brought about, what the metric and the log
    /// call it.
    enum Fault: CaseIterable, CustomTestStringConvertible, Sendable {
        case listOfWrongKind, statusIn200, itemOfWrongKind, itemWithoutNamespace, itemNameNotString, builtInNotFound, oversizeItem, oversizePage
        case watchObjectOfWrongKind, watchObjectWrongAPIVersion, watchObjectWithoutNamespace, watchOversizeObject, watchErrorEvent, watchHTTP500

        var testDescription: String { "\(self)" }

        /// Served on every request until cleared (the watch lines are sent once).
        var persists: Bool { watchLine == nil }

        var listFault: APIServerDouble.ListFault? {
            switch self {
            case .listOfWrongKind: .wrongKind
            case .statusIn200: .statusIn200
            case .itemOfWrongKind: .itemOfWrongKind
            case .itemWithoutNamespace: .itemWithoutNamespace
            case .itemNameNotString: .itemNameNotString
            case .builtInNotFound: .http(404)
            case .oversizeItem: .oversizeItem(100_000)
            case .oversizePage: .ignoreLimit(padding: 60_000)
            default: nil
            }
        }

        /// The event line injected into the Services watch.
        var watchLine: String? {
            let meta = #""metadata":{"name":"bad","namespace":"default","resourceVersion":"9999""#
            switch self {
            // A compilable object of another kind: an EndpointSlice giving app0 a new backend.
            case .watchObjectOfWrongKind:
                return #"{"type":"ADDED","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"app0-2","namespace":"default","resourceVersion":"9999","labels":{"kubernetes.io/service-name":"app0"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.99.99"]}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}}"#
            case .watchObjectWrongAPIVersion:
                return #"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v2",\#(meta)},"spec":{"clusterIP":"10.96.7.50","ports":[{"port":80}]}}}"#
            case .watchObjectWithoutNamespace:
                return #"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"bad","resourceVersion":"9999"},"spec":{"clusterIP":"10.96.7.50","ports":[{"port":80}]}}}"#
            case .watchOversizeObject:
                return #"{"type":"ADDED","object":{"kind":"Service","apiVersion":"v1",\#(meta),"annotations":{"pad":"\#(String(repeating: "x", count: 100_000))"}},"spec":{"clusterIP":"10.96.7.50","ports":[{"port":80}]}}}"#
            case .watchErrorEvent:
                return #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: leader changed","reason":"InternalError","code":500}}"#
            default:
                return nil
            }
        }

        var reason: String {
            switch self {
            case .listOfWrongKind, .itemOfWrongKind, .watchObjectOfWrongKind: "wrong_kind"
            case .statusIn200: "status_object"
            case .itemWithoutNamespace, .itemNameNotString, .watchObjectWithoutNamespace: "bad_identity"
            case .builtInNotFound: "http_404"
            case .oversizeItem, .oversizePage, .watchOversizeObject: "too_large"
            case .watchObjectWrongAPIVersion: "wrong_api_version"
            case .watchErrorEvent: "watch_error"
            case .watchHTTP500: "http_500"
            }
        }

        /// What the warning says was wrong.
        var logged: String {
            switch self {
            case .listOfWrongKind: #"the response is a "ConfigMapList", not a ServiceList"#
            case .statusIn200: "the response is a Status (code 500"
            case .itemOfWrongKind: #"is a "ConfigMap", not a Service"#
            case .itemWithoutNamespace: "has no metadata.namespace, but Service is a namespaced kind"
            case .itemNameNotString: "metadata.name is a number, not a string"
            case .builtInNotFound: "404 Not Found"
            case .oversizeItem: "raise --max-object-bytes"
            case .oversizePage: "raise --max-response-bytes"
            case .watchObjectOfWrongKind: #"the ADDED object is a "EndpointSlice", not a Service"#
            case .watchObjectWrongAPIVersion: #"has apiVersion "v2", not v1"#
            case .watchObjectWithoutNamespace: "has no metadata.namespace"
            case .watchOversizeObject: "raise --max-object-bytes"
            case .watchErrorEvent: "an ERROR event (code 500"
            case .watchHTTP500: "500 Internal Server Error"
            }
        }
    }

    @Test(arguments: Fault.allCases)
    func aBadResponseKeepsTheLastGoodImage(fault: Fault) async throws {
        let h = try Harness()
        h.start()
        #expect(try await h.converged(), "the first image")
        let good = try #require(h.latest())

        // The fault, and what makes the Services reflector meet it.
        if let listFault = fault.listFault {
            h.api.state.withLock { $0.listFaults[Self.servicesPath] = listFault }
            h.api.compact()  // every watch ends; resumed from a version now gone: 410, relist
        } else if let line = fault.watchLine {
            h.api.inject(Self.servicesPath, line)
        } else {
            h.api.state.withLock { $0.watchFaults[Self.servicesPath] = .http(500) }
            h.api.dropStreams()
        }
        // Until the reflector has met the fault, and for 1.5 s after, the image stays the last
        // good one (checked every 20 ms).
        var changed = 0
        func watchImage(until done: () -> Bool, seconds: Double) async {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && !done() {
                if h.latest() != good { changed += 1 }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        await watchImage(until: { h.errors(kind: "Service", reason: fault.reason) >= 1 }, seconds: 20)
        #expect(h.errors(kind: "Service", reason: fault.reason) >= 1, "balancer_api_errors_total{kind=Service,reason=\(fault.reason)}")
        let met = h.requests(Self.servicesPath)
        await watchImage(until: { false }, seconds: 1.5)
        #expect(changed == 0, "the image changed during the fault")
        // Backing off (50 ms doubling to 400 ms): a handful of attempts, not hundreds. A page over
        // the response cap is asked again with half as many objects before it is an error: a
        // server that ignores `limit` costs ten requests (500 down to 1) per attempt.
        let requests = h.requests(Self.servicesPath) - met
        let perAttempt = fault == .oversizePage ? 10 : 1
        #expect(requests <= 16 * perAttempt, "\(requests) requests to \(Self.servicesPath) in 1.5 s")
        if fault.persists {
            // Asked again, and refused again.
            await watchImage(until: { h.errors(kind: "Service", reason: fault.reason) >= 2 }, seconds: 10)
            #expect(h.errors(kind: "Service", reason: fault.reason) >= 2)
            #expect(changed == 0, "the image changed during the fault")
        }
        #expect(h.log.contains("warning", "Service", "http://127.0.0.1:\(h.api.port)\(Self.servicesPath)", fault.logged,
                               "the last good state of Service stays"), "\(h.log.matching("warning").prefix(3))")

        // Fixed, and changed meanwhile: the image follows.
        h.api.state.withLock {
            $0.listFaults = [:]
            $0.watchFaults = [:]
        }
        h.api.put(Self.servicesPath, kind: "Service", apiVersion: "v1", Self.service("late", "10.96.7.100"))
        h.api.put(Self.slicesPath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", Self.slice("late-1", service: "late", "10.244.7.100"))
        #expect(try await h.converged(), "after the fix: a full compile of the server's objects")
        await h.finish()
    }

    /// A server answering every watch with 410 Gone: the first 410 relists at once, a 410 after
    /// a 410 with no event in between backs off (0.8 s doubling, jittered) — a handful of
    /// requests in 3 s, not hundreds.
    @Test func goneOnEveryWatchBacksOff() async throws {
        let h = try Harness(backoff: .apiServer)
        h.start()
        #expect(try await h.converged(), "the first image")
        let good = try #require(h.latest())
        let paths = [Self.servicesPath, Self.slicesPath, "/api/v1/nodes", "/api/v1/pods"]
        h.api.state.withLock { s in for p in paths { s.watchFaults[p] = .gone } }
        let before = h.requests(Self.servicesPath)
        let beforeAll = paths.map(h.requests).reduce(0, +)
        h.api.dropStreams()
        try? await Task.sleep(for: .seconds(3))
        let services = h.requests(Self.servicesPath) - before
        let all = paths.map(h.requests).reduce(0, +) - beforeAll
        print("410 on every watch: \(services) requests to \(Self.servicesPath), \(all) to the four paths in 3 s")
        #expect(services >= 3 && services <= 12, "\(services) requests in 3 s")
        #expect(h.latest() == good)
        #expect(h.errors(kind: "Service", reason: "gone") >= 1)
        #expect(h.log.contains("warning", "410 Gone again with no event since the last", "the last good state of Service stays"))

        h.api.state.withLock { $0.watchFaults = [:] }
        h.api.put(Self.servicesPath, kind: "Service", apiVersion: "v1", Self.service("late", "10.96.7.100"))
        #expect(try await h.converged(), "after the fix")
        await h.finish()
    }

    /// A CustomResourceDefinition not installed (404 on the policies' paths) is no objects, not
    /// an error: the image compiles without them.
    @Test func aMissingCustomResourceIsEmpty() async throws {
        let h = try Harness(resources: KubeResource.all)
        h.start()
        #expect(try await h.converged(), "compiled without the policies")
        #expect(h.errors(kind: "LocalRedirectPolicy", reason: "http_404") == 0)
        #expect(h.log.contains("LocalRedirectPolicy: not served at /apis/balancing.elf.io/v1beta1/localredirectpolicies"))
        await h.finish()
    }

    /// ServiceCIDR objects (networking.k8s.io/v1) are read from the API like the other kinds; one
    /// added later reaches the image (a full compile: the incremental compiler hands it over).
    @Test func serviceCIDRsFromTheAPI() async throws {
        let h = try Harness(resources: KubeResource.all)
        let path = "/apis/networking.k8s.io/v1/servicecidrs"
        h.api.put(path, kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1", #"{"metadata":{"name":"kubernetes"},"spec":{"cidrs":["10.96.0.0/16"]}}"#)
        h.start()
        #expect(try await h.converged(), "compiled with the ServiceCIDR")
        #expect(try h.latest().map { try MapImage(bytes: $0).contents.serviceCIDRs.map(\.description) } == ["10.96.0.0/16"])
        h.api.put(path, kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1", #"{"metadata":{"name":"more"},"spec":{"cidrs":["fd00:10:96::/112"]}}"#)
        #expect(try await h.converged(), "followed the second ServiceCIDR")
        #expect(try h.latest().map { try MapImage(bytes: $0).contents.serviceCIDRs.count } == 2)
        await h.finish()
    }

    /// Under the ClusterRole of an earlier version (no servicecidrs), the watcher still compiles,
    /// with no ServiceCIDRs, and says which rule to add.
    @Test func forbiddenServiceCIDRsAreNone() async throws {
        let h = try Harness(resources: KubeResource.all)
        // Served (the double answers 404 for a path it holds nothing of), but forbidden.
        h.api.state.withLock {
            $0.crds.insert("/apis/networking.k8s.io/v1/servicecidrs")
            $0.listFaults["/apis/networking.k8s.io/v1/servicecidrs"] = .http(403)
        }
        h.start()
        #expect(try await h.converged(), "compiled without ServiceCIDRs")
        #expect(h.log.contains("ServiceCIDR: not served at /apis/networking.k8s.io/v1/servicecidrs (forbidden: grant get, list and watch on servicecidrs"),
                "\(h.log.matching("ServiceCIDR"))")
        #expect(h.errors(kind: "ServiceCIDR", reason: "http_403") == 0)
        await h.finish()
    }

    @Test func snapshotRefusesWhatTheWatcherRefuses() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        api.put(Self.servicesPath, kind: "Service", apiVersion: "v1", Self.service("web", "10.96.7.1"))
        let client = try KubeClient(config: KubeClientConfig(server: "http://127.0.0.1:\(api.port)", insecureSkipTLSVerify: false, token: "good", origin: "test"),
                                    limits: Self.limits)
        for (fault, text) in [(APIServerDouble.ListFault.wrongKind, #"list Service (http://127.0.0.1:\#(api.port)/api/v1/services): the response is a "ConfigMapList", not a ServiceList"#),
                              (.statusIn200, "the response is a Status (code 500"), (.http(404), "404 Not Found"),
                              (.oversizeItem(100_000), "raise --max-object-bytes")] {
            api.state.withLock { $0.listFaults[Self.servicesPath] = fault }
            do {
                _ = try await ClusterSnapshot.take(client: client)
                Issue.record("snapshot with \(fault) succeeded")
            } catch {
                #expect("\(error)".contains(text), "\(error)")
            }
        }
        api.state.withLock { $0.listFaults = [:] }
        let (_, counts) = try await ClusterSnapshot.take(client: client)
        #expect(counts["Service"] == 1 && counts["BalancingPolicy"] == 0)
        await client.shutdown()
    }
}
