import Foundation
import HostSystem
@testable import KubeAPI
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// `watch --cluster`: one image of several clusters, each followed on its own. The API servers
/// are doubles (APIServerDouble: there is no API server on this machine).
@Suite(.serialized) struct ClusterSetWatchTests {
    static let services = "/api/v1/services", slices = "/apis/discovery.k8s.io/v1/endpointslices", nodes = "/api/v1/nodes"

    static func putService(_ api: APIServerDouble, _ name: String, _ ip: String, port: Int) {
        api.put(services, kind: "Service", apiVersion: "v1",
                #"{"metadata":{"name":"\#(name)","namespace":"default"},"spec":{"clusterIP":"\#(ip)","clusterIPs":["\#(ip)"],"ports":[{"name":"p","port":\#(port),"protocol":"TCP"}]}}"#)
    }

    static func putSlice(_ api: APIServerDouble, _ service: String, _ ips: [String]) {
        let eps = ips.map { #"{"addresses":["\#($0)"]}"# }.joined(separator: ",")
        api.put(slices, kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1",
                #"{"metadata":{"name":"\#(service)-1","namespace":"default","labels":{"kubernetes.io/service-name":"\#(service)"}},"addressType":"IPv4","endpoints":[\#(eps)],"ports":[{"name":"p","port":8080,"protocol":"TCP"}]}"#)
    }

    static func fail(_ api: APIServerDouble, _ failing: Bool) {
        api.state.withLock { s in
            for path in APIServerDouble.kinds.keys {
                s.listFaults[path] = failing ? .http(503) : nil
                s.watchFaults[path] = failing ? .http(503) : nil
            }
        }
        api.dropStreams()
    }

    /// What the image in `dir` answers for a connect to `dest` from cluster `cluster` (nil:
    /// outside every cluster).
    static func answer(_ dir: String, _ dest: String, cluster: String? = nil) -> String? {
        guard let bytes = try? FileContents.read(dir + "/latest"), let image = try? MapImage(bytes: bytes) else { return nil }
        let r = Resolver(image.contents)
        guard let id = cluster.map({ try? r.clusterID(named: $0) }) ?? 0 else { return "no cluster \(cluster ?? "")" }
        let res = r.resolve(SocketAddress(dest)!, proto: .tcp, cluster: id)
        return ([res.result.rawValue] + res.backends.map(\.description)).joined(separator: " ")
    }

    /// Waits (long: the whole test suite shares two cores with this) for an answer.
    static func waitFor(_ dir: String, _ dest: String, cluster: String? = nil, _ want: String, seconds: Double = 60) async -> String? {
        var got: String?
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            got = answer(dir, dest, cluster: cluster)
            if got == want { return got }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return got
    }

    @Test func twoAPIServersOneFailingAndComingBack() async throws {
        let a = try APIServerDouble(), b = try APIServerDouble()
        defer { a.stop(); b.stop() }
        Self.putService(a, "kubernetes", "10.96.0.1", port: 443)
        Self.putSlice(a, "kubernetes", ["10.244.1.1"])
        Self.putService(b, "kubernetes", "10.96.0.1", port: 443)
        Self.putSlice(b, "kubernetes", ["10.244.2.1"])
        Self.putService(b, "api", "10.96.0.7", port: 80)
        Self.putSlice(b, "api", ["10.244.2.7"])
        let base = NSTemporaryDirectory() + "balancer-clusterset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        func config(_ port: Int) -> KubeClientConfig {
            KubeClientConfig(server: "http://127.0.0.1:\(port)", insecureSkipTLSVerify: false, token: "good", origin: "test")
        }
        let ca = try KubeClient(config: config(a.port)), cb = try KubeClient(config: config(b.port))
        let ttl = Duration.seconds(6)
        let watcher = ClusterSetWatcher(clusters: [.init(name: "a", source: .api(ca)), .init(name: "b", source: .api(cb))],
                                        options: .init(debounce: .milliseconds(30)), sink: DirectorySink(directory: base), ttl: ttl)
        let stop = Atomic<Bool>(false)
        let task = Task { await watcher.run(shouldStop: { stop.load(ordering: .relaxed) }) }

        // Both clusters: each its own ClusterIP, the first for hosts outside.
        #expect(await Self.waitFor(base, "10.96.0.1:443", cluster: "b", "translate 10.244.2.1:8080") == "translate 10.244.2.1:8080")
        #expect(Self.answer(base, "10.96.0.1:443", cluster: "a") == "translate 10.244.1.1:8080")
        #expect(Self.answer(base, "10.96.0.1:443") == "translate 10.244.1.1:8080")

        // b's API server fails: its last state is kept, and a change in a still goes through.
        Self.fail(b, true)
        let failed = ContinuousClock.now
        Self.putSlice(a, "kubernetes", ["10.244.1.1", "10.244.1.2"])
        #expect(await Self.waitFor(base, "10.96.0.1:443", cluster: "a", "translate 10.244.1.1:8080 10.244.1.2:8080")
                == "translate 10.244.1.1:8080 10.244.1.2:8080")
        // (Within the TTL: on a machine so loaded that a's change took longer, b may be gone already.)
        if ContinuousClock.now - failed < ttl - .seconds(1) {
            #expect(Self.answer(base, "10.96.0.7:80", cluster: "b") == "translate 10.244.2.7:8080")
        }

        // Past the TTL (6 s), b's endpoints are dropped: its services refuse rather than reach stale backends.
        #expect(await Self.waitFor(base, "10.96.0.7:80", cluster: "b", "reject") == "reject")
        #expect(Self.answer(base, "10.96.0.1:443", cluster: "b") == "reject")
        #expect(Self.answer(base, "10.96.0.1:443", cluster: "a") == "translate 10.244.1.1:8080 10.244.1.2:8080")

        // b answers again (with a change made meanwhile): its endpoints are back.
        Self.putSlice(b, "api", ["10.244.2.8"])
        Self.fail(b, false)
        #expect(await Self.waitFor(base, "10.96.0.7:80", cluster: "b", "translate 10.244.2.8:8080") == "translate 10.244.2.8:8080")
        #expect(Self.answer(base, "10.96.0.1:443", cluster: "b") == "translate 10.244.2.1:8080")

        stop.store(true, ordering: .relaxed)
        await task.value
        await ca.shutdown()
        await cb.shutdown()
    }

    @Test func aDirectoryClusterBesideAnAPICluster() async throws {
        let a = try APIServerDouble()
        defer { a.stop() }
        Self.putService(a, "web", "10.96.0.5", port: 80)
        Self.putSlice(a, "web", ["10.244.1.5"])
        let base = NSTemporaryDirectory() + "balancer-clusterset-\(UUID().uuidString)"
        let tree = base + "/edge", out = base + "/out"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        func write(_ ip: String) throws {
            let yaml = """
            apiVersion: v1
            kind: List
            items:
            - {apiVersion: v1, kind: Service, metadata: {name: web, namespace: default}, spec: {clusterIP: 10.96.0.5, clusterIPs: [10.96.0.5], ports: [{name: p, port: 80, protocol: TCP}]}}
            - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}, endpoints: [{addresses: [\(ip)]}], ports: [{name: p, port: 8080, protocol: TCP}]}
            """
            try FileContents.writeAtomically(Array(yaml.utf8), to: tree + "/objects.yaml")
        }
        try write("10.244.9.5")
        let ca = try KubeClient(config: KubeClientConfig(server: "http://127.0.0.1:\(a.port)", insecureSkipTLSVerify: false, token: "good", origin: "test"))
        let watcher = ClusterSetWatcher(clusters: [.init(name: "a", source: .api(ca)), .init(name: "edge", source: .directory(tree))],
                                        options: .init(debounce: .milliseconds(30)), sink: DirectorySink(directory: out))
        let stop = Atomic<Bool>(false)
        let task = Task { await watcher.run(shouldStop: { stop.load(ordering: .relaxed) }) }
        #expect(await Self.waitFor(out, "10.96.0.5:80", cluster: "edge", "translate 10.244.9.5:8080") == "translate 10.244.9.5:8080")
        #expect(Self.answer(out, "10.96.0.5:80", cluster: "a") == "translate 10.244.1.5:8080")
        try write("10.244.9.6")
        #expect(await Self.waitFor(out, "10.96.0.5:80", cluster: "edge", "translate 10.244.9.6:8080") == "translate 10.244.9.6:8080")
        stop.store(true, ordering: .relaxed)
        await task.value
        await ca.shutdown()
    }

    /// `balancer snapshot --cluster NAME=KUBECONFIG@CONTEXT ...`: one file per cluster, which the
    /// printed compile command turns into one image of both (the binary, against two doubles).
    @Test func snapshotOfTwoClustersCompilesToOneImage() throws {
        let a = try APIServerDouble(), b = try APIServerDouble()
        defer { a.stop(); b.stop() }
        Self.putService(a, "kubernetes", "10.96.0.1", port: 443)
        Self.putSlice(a, "kubernetes", ["10.244.1.1"])
        Self.putService(b, "kubernetes", "10.96.0.1", port: 443)
        Self.putSlice(b, "kubernetes", ["10.244.2.1"])
        let base = NSTemporaryDirectory() + "balancer-clusterset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let kubeconfig = """
        apiVersion: v1
        kind: Config
        clusters:
        - {name: a, cluster: {server: "http://127.0.0.1:\(a.port)"}}
        - {name: b, cluster: {server: "http://127.0.0.1:\(b.port)"}}
        users:
        - {name: u, user: {token: good}}
        contexts:
        - {name: ctx-a, context: {cluster: a, user: u}}
        - {name: ctx-b, context: {cluster: b, user: u}}
        current-context: ctx-a
        """
        try FileContents.writeAtomically(Array(kubeconfig.utf8), to: base + "/kubeconfig")
        func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
            var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
            parts.removeLast(3)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: parts.joined(separator: "/") + "/.build/debug/balancer")
            p.arguments = args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
        let snap = try run(["snapshot", "--cluster", "a=\(base)/kubeconfig@ctx-a", "--cluster", "b=\(base)/kubeconfig@ctx-b", "-o", base + "/fleet"])
        #expect(snap.status == 0, "\(snap.err)")
        #expect(snap.out.contains("compile with: balancer compile --cluster a=\(base)/fleet/a.yaml --cluster b=\(base)/fleet/b.yaml -o IMAGE"))
        let compile = try run(["compile", "--cluster", "a=\(base)/fleet/a.yaml", "--cluster", "b=\(base)/fleet/b.yaml", "-o", base + "/fleet.image"])
        #expect(compile.status == 0, "\(compile.err)")
        let image = try MapImage(bytes: try FileContents.read(base + "/fleet.image"))
        let r = Resolver(image.contents)
        #expect(r.resolve(SocketAddress("10.96.0.1:443")!, proto: .tcp, cluster: try r.clusterID(named: "b")).backends.map(\.description) == ["10.244.2.1:8080"])
        // A context the kubeconfig lacks, and a directory given to snapshot, are refused by name.
        let bad = try run(["snapshot", "--cluster", "a=\(base)/kubeconfig@nowhere", "-o", base + "/x"])
        #expect(bad.status != 0 && bad.err.contains("--cluster a:"))
        let dir = try run(["snapshot", "--cluster", "a=\(base)", "-o", base + "/y"])
        #expect(dir.status != 0 && dir.err.contains("a directory"))
    }
}
