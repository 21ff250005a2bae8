import Compiler
import Foundation
import HostSystem
@testable import KubeAPI
import Manifests
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// `watch` against the API server double: recorded objects (fixtures/realistic-kind: a kind
/// cluster's captured EndpointSliceList, Services and Node) listed in pages and watched through
/// chunked streams with bookmarks, broken streams and 410s; the images follow, and after
/// quiescence equal a full compile of the server's objects.
@Suite(.serialized) struct ApiWatchTests {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// The recorded objects as (path, kind, apiVersion, item JSON without kind/apiVersion).
    static func recorded() throws -> [(String, String, String, String)] {
        let script = """
        import json, sys, yaml
        d = sys.argv[1]
        paths = {"Service": "/api/v1/services", "Node": "/api/v1/nodes", "EndpointSlice": "/apis/discovery.k8s.io/v1/endpointslices"}
        def emit(kind, api, item):
            item = dict(item); item.pop("kind", None); item.pop("apiVersion", None)
            print("\\t".join([paths[kind], kind, api, json.dumps(item, separators=(",", ":"))]))
        for f, kind, api in [("services.yaml", "Service", "v1"), ("nodes.yaml", "Node", "v1")]:
            for item in yaml.safe_load(open(d + "/" + f))["items"]:
                emit(kind, api, item)
        for item in json.load(open(d + "/endpointslices.json"))["items"]:
            emit("EndpointSlice", "discovery.k8s.io/v1", item)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, root + "/fixtures/realistic-kind"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            let f = $0.split(separator: "\t", maxSplits: 3).map(String.init)
            return (f[0], f[1], f[2], f[3])
        }
    }

    func config(_ port: Int, token: String) -> KubeClientConfig {
        KubeClientConfig(server: "http://127.0.0.1:\(port)", insecureSkipTLSVerify: false, token: token, origin: "test")
    }

    @Test func authErrorsAreClear() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        for (token, want) in [("bad", "401 Unauthorized (the credentials were refused)"), ("limited", "403 Forbidden (the ClusterRole must allow get, list and watch)")] {
            let client = try KubeClient(config: config(api.port, token: token))
            do {
                _ = try await client.list(.services)
                Issue.record("list with token \(token) succeeded")
            } catch {
                #expect(error.description.contains(want), "\(error)")
                #expect(error.description.contains(token == "bad" ? "Unauthorized" : "cannot list resource"))
            }
            await client.shutdown()
        }
    }

    @Test func pagedListGivesEveryItemWithItsKind() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        for i in 0..<7 {
            api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                    #"{"metadata":{"name":"s\#(i)","namespace":"default"},"spec":{"clusterIP":"10.96.0.\#(i + 1)","ports":[{"port":80}]}}"#)
        }
        let client = try KubeClient(config: config(api.port, token: "good"))
        let (items, rv) = try await client.list(.services, pageSize: 3)
        await client.shutdown()
        #expect(items.count == 7 && api.state.withLock { $0.listRequests } == 3)
        #expect(rv == "\(api.state.withLock { $0.rv })")
        let (snapshot, _) = try InputLoader.load(contents: items.map { ("\($0.name).json", $0.object) })
        #expect(snapshot.services.count == 7)
    }

    /// A page over the response cap is asked again with half as many objects: the list is whole,
    /// every response stays under the cap, and no error is counted.
    @Test func aPageOverTheResponseCapIsAskedAgainSmaller() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        let padding = String(repeating: "x", count: 3000)
        for i in 0..<20 {
            api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                    #"{"metadata":{"name":"s\#(i)","namespace":"default","annotations":{"pad":"\#(padding)"}},"spec":{"clusterIP":"10.96.0.\#(i + 1)","ports":[{"port":80}]}}"#)
        }
        // About 3.2 KB per item: a page of 8 fits 32 KiB, a page of 16 does not.
        let client = try KubeClient(config: config(api.port, token: "good"), limits: KubeLimits(maxObjectBytes: 8 << 10, maxResponseBytes: 32 << 10))
        let listed: Result<(items: [RawListPage.Item], resourceVersion: String), KubeError>
        do { listed = .success(try await client.list(.services, pageSize: 16)) } catch { listed = .failure(error) }
        await client.shutdown()
        let (items, _) = try listed.get()
        #expect(items.count == 20)
        #expect(Set(items.map(\.name)).count == 20)
        // 16 (over the cap), then 8, 8, 4 (the last page holds the remaining 4).
        #expect(api.state.withLock { $0.listRequests } == 4)
    }

    @Test func snapshotCompilesLikeTheCluster() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        var objects: [(path: String, bytes: [UInt8])] = []
        for (path, kind, version, json) in try Self.recorded() {
            api.put(path, kind: kind, apiVersion: version, json)
        }
        let client = try KubeClient(config: config(api.port, token: "good"))
        let (yaml, counts) = try await ClusterSnapshot.take(client: client)
        await client.shutdown()
        #expect(counts["Service"] == 2 && counts["EndpointSlice"] == 2 && counts["Node"] == 1 && counts["Pod"] == 0)
        #expect(counts["LocalRedirectPolicy"] == 0, "a kind the server does not serve is empty")
        // The snapshot is YAML that compile reads, and compiles to the image of the server's objects.
        api.state.withLock { s in
            let kinds = ["/api/v1/services": ("Service", "v1"), "/api/v1/nodes": ("Node", "v1"),
                         "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
                         "/apis/networking.k8s.io/v1/servicecidrs": ("ServiceCIDR", "networking.k8s.io/v1")]
            for (path, items) in s.objects {
                guard let (kind, version) = kinds[path] else { continue }
                for (name, json) in items {
                    // As the watcher keeps them: Nodes and Pods trimmed (the image's input digest
                    // covers the objects it compiled).
                    objects.append(("\(path)/\(name).json", trimmedJSON(Array(("{\"kind\":\"\(kind)\",\"apiVersion\":\"\(version)\"," + json.dropFirst()).utf8), kind: kind)))
                }
            }
        }
        let (fromSnapshot, d1) = try InputLoader.load(contents: [("snapshot.yaml", yaml)])
        let (fromServer, d2) = try InputLoader.load(contents: objects)
        let a = ImageEncoder.encode(Compiler.compile(fromSnapshot, inputDiagnostics: d1).contents)
        let b = ImageEncoder.encode(Compiler.compile(fromServer, inputDiagnostics: d2).contents)
        let same = a == b
        #expect(same)
        #expect(String(decoding: yaml.prefix(40), as: UTF8.self).hasPrefix("apiVersion: v1\nkind: List\nitems:\n- {"))
    }

    @Test func imagesFollowTheServerThroughFaults() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        for (path, kind, version, json) in try Self.recorded() { api.put(path, kind: kind, apiVersion: version, json) }
        let base = NSTemporaryDirectory() + "balancer-apiwatch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }

        let client = try KubeClient(config: config(api.port, token: "good"))
        let watcher = ApiWatcher(client: client, resources: [.services, .endpointSlices, .nodes, .pods],
                                 options: .init(debounce: .milliseconds(30)), sink: DirectorySink(directory: base))
        let stop = Atomic<Bool>(false)
        let task = Task { await watcher.run(shouldStop: { stop.load(ordering: .relaxed) }) }

        func answer(_ dest: String, node: String? = nil) -> String? {
            guard let bytes = try? FileContents.read(base + "/latest"), let image = try? MapImage(bytes: bytes) else { return nil }
            let r = Resolver(image.contents)
            let id = node.flatMap { try? r.nodeID(named: $0) } ?? 0
            let res = r.resolve(SocketAddress(dest)!, proto: .tcp, nodeID: id)
            return ([res.result.rawValue] + res.backends.map(\.description)).joined(separator: " ")
        }
        func waitFor(_ dest: String, _ want: String) async -> String? {
            var got: String?
            for _ in 0..<500 {
                got = answer(dest)
                if got == want { return got }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return got
        }
        // The recorded cluster: the apiserver's Service (fixtures/realistic-kind/expect.txt).
        let apiserver = "translate 172.18.0.2:6443"
        #expect(await waitFor("10.96.0.1:443", apiserver) == apiserver)

        // A new Service and its slice, through the watch.
        api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                #"{"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.96.5.5","clusterIPs":["10.96.5.5"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#)
        api.put("/apis/discovery.k8s.io/v1/endpointslices", kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                #"{"metadata":{"name":"web-1","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.0.50"]}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}"#)
        #expect(await waitFor("10.96.5.5:80", "translate 10.244.0.50:8080") == "translate 10.244.0.50:8080")

        // Streams that break in the middle of an event: resumed, nothing lost.
        api.state.withLock { $0.cutNextWatches = 4 }
        api.put("/apis/discovery.k8s.io/v1/endpointslices", kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                #"{"metadata":{"name":"web-1","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.0.51"]},{"addresses":["10.244.0.52"]}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}"#)
        #expect(await waitFor("10.96.5.5:80", "translate 10.244.0.51:8080 10.244.0.52:8080") == "translate 10.244.0.51:8080 10.244.0.52:8080")

        // A compaction: the watches' versions are gone (410), the reflectors relist.
        let listsBefore = api.state.withLock { $0.listRequests }
        api.compact()
        api.delete("/api/v1/services", kind: "Service", apiVersion: "v1", name: "web")
        // Make every reflector reconnect (its next stream breaks), so it meets the 410.
        api.state.withLock { $0.cutNextWatches = 8 }
        api.put("/api/v1/nodes", kind: "Node", apiVersion: "v1",
                #"{"metadata":{"name":"extra","labels":{}},"status":{"addresses":[{"type":"InternalIP","address":"172.18.0.99"}]}}"#)
        #expect(await waitFor("10.96.5.5:80", "passthrough") == "passthrough")
        for _ in 0..<250 where api.state.withLock({ $0.listRequests }) == listsBefore { try? await Task.sleep(for: .milliseconds(20)) }
        #expect(api.state.withLock { $0.listRequests } > listsBefore, "a 410 leads to a relist")

        // Quiescence (reflectors may be backing off after the broken streams, up to a few
        // seconds): the image comes to equal a full compile of the server's objects.
        let serverObjects = api.state.withLock { s -> [(path: String, bytes: [UInt8])] in
            var out: [(path: String, bytes: [UInt8])] = []
            let kinds = ["/api/v1/services": ("Service", "v1"), "/api/v1/nodes": ("Node", "v1"),
                         "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
                         "/apis/networking.k8s.io/v1/servicecidrs": ("ServiceCIDR", "networking.k8s.io/v1")]
            for (path, objects) in s.objects {
                guard let (kind, version) = kinds[path] else { continue }
                for (name, json) in objects {
                    out.append(("\(path)/\(name).json", trimmedJSON(Array(("{\"kind\":\"\(kind)\",\"apiVersion\":\"\(version)\"," + json.dropFirst()).utf8), kind: kind)))
                }
            }
            return out
        }
        let (snapshot, diags) = try InputLoader.load(contents: serverObjects)
        let expected = ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diags).contents)
        var got = try FileContents.read(base + "/latest")
        for _ in 0..<1000 where got != expected {
            try? await Task.sleep(for: .milliseconds(20))
            got = try FileContents.read(base + "/latest")
        }
        let same = got == expected
        if !same, let a = try? MapImage(bytes: got), let b = try? MapImage(bytes: expected) {
            let ta = TextRenderer.render(a).split(separator: "\n"), tb = TextRenderer.render(b).split(separator: "\n")
            let diff = Set(ta).symmetricDifference(Set(tb)).sorted().prefix(20).joined(separator: "\n")
            Issue.record("the watcher's image differs from a full compile of the server's objects:\n\(diff)")
        }
        #expect(same)

        stop.store(true, ordering: .relaxed)
        await task.value
        await client.shutdown()
    }

    /// The server's objects as manifests the compiler reads.
    static func serverObjects(_ api: APIServerDouble) -> [(path: String, bytes: [UInt8])] {
        api.state.withLock { s -> [(path: String, bytes: [UInt8])] in
            var out: [(path: String, bytes: [UInt8])] = []
            let kinds = ["/api/v1/services": ("Service", "v1"), "/api/v1/nodes": ("Node", "v1"),
                         "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
                         "/apis/networking.k8s.io/v1/servicecidrs": ("ServiceCIDR", "networking.k8s.io/v1")]
            for (path, objects) in s.objects {
                guard let (kind, version) = kinds[path] else { continue }
                for (name, json) in objects {
                    out.append(("\(path)/\(name).json", trimmedJSON(Array(("{\"kind\":\"\(kind)\",\"apiVersion\":\"\(version)\"," + json.dropFirst()).utf8), kind: kind)))
                }
            }
            return out
        }
    }

    /// EndpointSlice, Service and Node changes go through the incremental compiler as deltas (a
    /// Node with an id annotation through a full compile); after quiescence the records equal a full compile of the
    /// server's objects, and the background full compile confirms them.
    @Test func sliceChangesAreWrittenAsDeltas() async throws {
        let api = try APIServerDouble()
        defer { api.stop() }
        for (path, kind, version, json) in try Self.recorded() { api.put(path, kind: kind, apiVersion: version, json) }
        let slicePath = "/apis/discovery.k8s.io/v1/endpointslices"
        for svc in ["web", "api"] {
            api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                    #"{"metadata":{"name":"\#(svc)","namespace":"default"},"spec":{"clusterIP":"10.96.5.\#(svc == "web" ? 10 : 11)","clusterIPs":["10.96.5.\#(svc == "web" ? 10 : 11)"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#)
        }
        func slice(_ name: String, _ svc: String, _ hosts: [Int], notReady: Set<Int> = []) -> String {
            let eps = hosts.map { #"{"addresses":["10.244.1.\#($0)"],"conditions":{"ready":\#(!notReady.contains($0))},"nodeName":"kind-control-plane"}"# }
            return #"{"metadata":{"name":"\#(name)","namespace":"default","labels":{"kubernetes.io/service-name":"\#(svc)"}},"addressType":"IPv4","endpoints":[\#(eps.joined(separator: ","))],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}"#
        }
        api.put(slicePath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", slice("web-1", "web", [1, 2, 3]))
        let sink = TablesSink()
        let client = try KubeClient(config: config(api.port, token: "good"))
        let watcher = ApiWatcher(client: client, resources: [.services, .endpointSlices, .nodes, .pods],
                                 options: .init(debounce: .milliseconds(20)), sink: sink)
        let stop = Atomic<Bool>(false)
        let task = Task { await watcher.run(shouldStop: { stop.load(ordering: .relaxed) }) }
        for _ in 0..<500 where sink.state.withLock({ $0.images }) == 0 { try? await Task.sleep(for: .milliseconds(10)) }
        #expect(sink.state.withLock { $0.images } == 1)

        var rng = SystemRandomNumberGenerator()
        for step in 0..<40 {
            let hosts = (1...12).filter { _ in Bool.random(using: &rng) }
            let notReady = Set(hosts.filter { _ in Int.random(in: 0..<5, using: &rng) == 0 })
            let name = ["web-1", "web-2", "api-1"][step % 3]
            if step % 11 == 10 {
                api.delete(slicePath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", name: name)
            } else {
                api.put(slicePath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", slice(name, name.hasPrefix("web") ? "web" : "api", hosts, notReady: notReady))
            }
            try? await Task.sleep(for: .milliseconds(step % 2 == 0 ? 2 : 40))
        }
        // A Service changed, added and deleted: deltas too.
        api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                #"{"metadata":{"name":"api","namespace":"default"},"spec":{"clusterIP":"10.96.5.11","clusterIPs":["10.96.5.11"],"ports":[{"name":"http","port":81,"protocol":"TCP"}]}}"#)
        try? await Task.sleep(for: .milliseconds(60))
        api.put("/api/v1/services", kind: "Service", apiVersion: "v1",
                #"{"metadata":{"name":"new","namespace":"default"},"spec":{"type":"NodePort","clusterIP":"10.96.5.12","clusterIPs":["10.96.5.12"],"ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":30123}]}}"#)
        api.put(slicePath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", slice("new-1", "new", [20, 21]))
        try? await Task.sleep(for: .milliseconds(60))
        api.delete("/api/v1/services", kind: "Service", apiVersion: "v1", name: "web")
        try? await Task.sleep(for: .milliseconds(60))
        // A Node added: a delta too.
        api.put("/api/v1/nodes", kind: "Node", apiVersion: "v1",
                #"{"metadata":{"name":"extra-node","labels":{"topology.kubernetes.io/zone":"z9"}},"status":{"addresses":[{"type":"InternalIP","address":"172.18.0.99"}]}}"#)
        try? await Task.sleep(for: .milliseconds(60))
        let imagesBeforeNode = sink.state.withLock { $0.images }
        #expect(imagesBeforeNode == 1, "Service and Node changes are deltas: \(imagesBeforeNode) whole images")
        // A Node with an explicit id takes a full compile, and slice changes after it are deltas again.
        api.put("/api/v1/nodes", kind: "Node", apiVersion: "v1",
                #"{"metadata":{"name":"pinned-node","annotations":{"balancing.elf.io/nodeId":"77"}},"status":{"addresses":[{"type":"InternalIP","address":"172.18.0.98"}]}}"#)
        try? await Task.sleep(for: .milliseconds(100))
        api.put(slicePath, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", slice("api-1", "api", [7, 8]))

        let (snapshot, diags) = try InputLoader.load(contents: Self.serverObjects(api))
        let expected = try ImageRecords.tables(of: ImageEncoder.encode(Compiler.compile(snapshot, inputDiagnostics: diags).contents))
        for _ in 0..<500 where sink.state.withLock({ $0.tables != expected || $0.confirmed == 0 }) { try? await Task.sleep(for: .milliseconds(10)) }
        let (tables, images, deltas, confirmed, refused) = sink.state.withLock { ($0.tables, $0.images, $0.deltas, $0.confirmed, $0.refused) }
        for t in ImageTable.allCases where tables[t] ?? [:] != expected[t] ?? [:] {
            Issue.record("\(t): the records after the watcher's syncs differ from a full compile")
        }
        #expect(deltas >= 10, "\(deltas) deltas, \(images) images")
        #expect(images >= 2, "the annotated Node is a full compile")
        #expect(confirmed >= 1 && refused == 0, "confirmed \(confirmed), refused \(refused)")
        stop.store(true, ordering: .relaxed)
        await task.value
        await client.shutdown()
    }
}

/// A sink that keeps the tables a datapath would hold: images replace them, deltas patch them.
final class TablesSink: IncrementalSink, Sendable {
    struct State {
        var tables: [ImageTable: RecordTable] = [:]
        var images = 0, deltas = 0, confirmed = 0, refused = 0
    }
    let state = Mutex(State())

    func deliver(_ bytes: [UInt8], digest: String) throws -> String {
        let t = try ImageRecords.tables(of: bytes)
        state.withLock {
            $0.tables = t
            $0.images += 1
        }
        return "tables"
    }

    func apply(_ delta: RecordDelta) throws -> String {
        state.withLock {
            $0.tables = delta.applied(to: $0.tables)
            $0.deltas += 1
        }
        return "tables"
    }

    func confirm(image bytes: [UInt8]) -> Bool {
        let t = try? ImageRecords.tables(of: bytes)
        return state.withLock {
            if t == $0.tables { $0.confirmed += 1; return true }
            $0.refused += 1
            return false
        }
    }
}
