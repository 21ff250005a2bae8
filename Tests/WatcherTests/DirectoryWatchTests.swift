import Compiler
import Foundation
import HostSystem
@testable import KubeAPI
import Manifests
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// `watch --dir` with a directory sink: every kind of change a checkout makes reaches the image.
@Suite(.serialized) struct DirectoryWatchTests {
    static func service(backend: String, name: String = "web", ip: String = "10.96.0.50") -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: default}
        spec:
          clusterIP: \(ip)
          clusterIPs: [\(ip)]
          ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: \(name)-1, namespace: default, labels: {kubernetes.io/service-name: \(name)}}
        addressType: IPv4
        endpoints:
        - addresses: [\(backend)]
        ports: [{name: http, port: 8080, protocol: TCP}]

        """
    }

    final class Harness: @unchecked Sendable {
        let base: String
        let tree: String
        let out: String
        let stop = Atomic<Bool>(false)
        let syncs = Mutex<[DirectoryWatcher.Sync]>([])
        var thread: Thread?

        init() throws {
            base = NSTemporaryDirectory() + "balancer-watch-\(UUID().uuidString)"
            tree = base + "/tree"
            out = base + "/out"
            try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        }

        func start(root: String? = nil) {
            let path = root ?? tree
            let t = Thread { [self] in
                let watcher = DirectoryWatcher(root: path, options: .init(debounce: .milliseconds(50)), sink: DirectorySink(directory: out))
                try? watcher.run(shouldStop: { self.stop.load(ordering: .relaxed) }) { s in self.syncs.withLock { $0.append(s) } }
            }
            thread = t
            t.start()
        }

        func finish() {
            stop.store(true, ordering: .relaxed)
            for _ in 0..<50 where thread?.isFinished == false { usleep(20_000) }
            try? FileManager.default.removeItem(atPath: base)
        }

        /// Writes a file the way checkouts do: a temporary file renamed over the old one.
        func write(_ path: String, _ text: String) throws {
            let tmp = (path as NSString).deletingLastPathComponent + "/.tmp-\(UUID().uuidString)"
            try text.write(toFile: tmp, atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: tmp, toPath: path) // fails if it exists
        }

        func replace(_ path: String, _ text: String) throws {
            let tmp = (path as NSString).deletingLastPathComponent + "/.tmp-\(UUID().uuidString)"
            try text.write(toFile: tmp, atomically: false, encoding: .utf8)
            guard rename(tmp, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        }

        /// The answer of the latest image for a TCP connect to `dest`, from a host.
        func latestAnswer(_ dest: String) -> String? {
            guard let bytes = try? FileContents.read(out + "/latest"), let image = try? MapImage(bytes: bytes) else { return nil }
            let r = Resolver(image.contents).resolve(SocketAddress(dest)!, proto: .tcp)
            return ([r.result.rawValue] + r.backends.map(\.description)).joined(separator: " ")
        }

        func waitFor(_ dest: String, _ want: String, seconds: Double = 10) -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            var last: String?
            while Date() < deadline {
                last = latestAnswer(dest)
                if last == want { return last }
                usleep(20_000)
            }
            return last
        }

        func syncCount() -> Int { syncs.withLock { $0.count } }
    }

    @Test func editsRenamesDeletionsBrokenFilesAndNewDirectories() throws {
        let h = try Harness()
        defer { h.finish() }
        try h.write(h.tree + "/web.yaml", Self.service(backend: "10.244.1.10"))
        h.start()
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.1.10:8080") == "translate 10.244.1.10:8080")

        // An edit (rename over the file).
        try h.replace(h.tree + "/web.yaml", Self.service(backend: "10.244.1.11"))
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.1.11:8080") == "translate 10.244.1.11:8080")

        // A rename changes no object: no new image. (The image file is there before its sync is
        // reported: wait for the report, so the rename's sync is the one counted next.)
        for _ in 0..<250 where h.syncs.withLock({ $0.filter { if case .delivered = $0.outcome { true } else { false } }.count }) < 2 { usleep(20_000) }
        let delivered = h.syncs.withLock { $0.filter { if case .delivered = $0.outcome { true } else { false } }.count }
        try FileManager.default.moveItem(atPath: h.tree + "/web.yaml", toPath: h.tree + "/renamed.yaml")
        let before = h.syncCount()
        for _ in 0..<250 where h.syncCount() == before { usleep(20_000) }
        #expect(h.syncCount() > before)
        #expect(h.syncs.withLock { $0.last?.outcome } == .unchanged(digest: h.syncs.withLock {
            $0.compactMap { if case .delivered(let d) = $0.outcome { d } else { nil } }.last ?? "" }))
        #expect(h.syncs.withLock { $0.filter { if case .delivered = $0.outcome { true } else { false } }.count } == delivered)

        // A broken file: the sync fails and the last image stays; its fix is picked up.
        try h.write(h.tree + "/broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}\n")
        for _ in 0..<250 where h.syncs.withLock({ $0.last.map { if case .failed = $0.outcome { false } else { true } } ?? true }) { usleep(20_000) }
        let failed = h.syncs.withLock { $0.last?.outcome }
        if case .failed(let why)? = failed { #expect(why.contains("invalid IP address")) } else { Issue.record("expected a failed sync, got \(String(describing: failed))") }
        #expect(h.latestAnswer("10.96.0.50:80") == "translate 10.244.1.11:8080")
        try FileManager.default.removeItem(atPath: h.tree + "/broken.yaml")
        try h.write(h.tree + "/fixed.yaml", Self.service(backend: "10.244.1.12", name: "web2", ip: "10.96.0.51"))
        #expect(h.waitFor("10.96.0.51:80", "translate 10.244.1.12:8080") == "translate 10.244.1.12:8080")

        // A new subdirectory, then a file in it.
        try FileManager.default.createDirectory(atPath: h.tree + "/sub/deeper", withIntermediateDirectories: true)
        usleep(200_000)
        try h.write(h.tree + "/sub/deeper/more.yaml", Self.service(backend: "10.244.1.13", name: "web3", ip: "10.96.0.52"))
        #expect(h.waitFor("10.96.0.52:80", "translate 10.244.1.13:8080") == "translate 10.244.1.13:8080")

        // A deletion.
        try FileManager.default.removeItem(atPath: h.tree + "/renamed.yaml")
        #expect(h.waitFor("10.96.0.50:80", "passthrough") == "passthrough")
    }

    @Test func directorySwappedInAtomically() throws {
        let h = try Harness()
        defer { h.finish() }
        // A symlink flipped to another directory (a Kubernetes ConfigMap volume's `..data`, or a
        // deploy tool's `current -> release-N`), then a directory renamed over by a checkout.
        let v1 = h.base + "/v1", v2 = h.base + "/v2", current = h.base + "/current"
        try FileManager.default.createDirectory(atPath: v1, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: v2, withIntermediateDirectories: true)
        try h.write(v1 + "/web.yaml", Self.service(backend: "10.244.2.1"))
        try h.write(v2 + "/web.yaml", Self.service(backend: "10.244.2.2"))
        try FileManager.default.createSymbolicLink(atPath: current, withDestinationPath: "v1")
        h.start(root: current)
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.2.1:8080") == "translate 10.244.2.1:8080")
        try FileManager.default.createSymbolicLink(atPath: h.base + "/current.tmp", withDestinationPath: "v2")
        #expect(rename(h.base + "/current.tmp", current) == 0)
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.2.2:8080") == "translate 10.244.2.2:8080")
        // An edit inside the directory the link now names.
        try h.replace(v2 + "/web.yaml", Self.service(backend: "10.244.2.3"))
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.2.3:8080") == "translate 10.244.2.3:8080")
    }

    @Test func rootDirectoryReplacedByRename() throws {
        let h = try Harness()
        defer { h.finish() }
        try h.write(h.tree + "/web.yaml", Self.service(backend: "10.244.3.1"))
        h.start()
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.3.1:8080") == "translate 10.244.3.1:8080")
        let next = h.base + "/tree.next"
        try FileManager.default.createDirectory(atPath: next, withIntermediateDirectories: true)
        try h.write(next + "/web.yaml", Self.service(backend: "10.244.3.2"))
        #expect(rename(h.tree, h.base + "/tree.old") == 0)
        #expect(rename(next, h.tree) == 0)
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.3.2:8080") == "translate 10.244.3.2:8080")
        // The new directory is watched too.
        try h.replace(h.tree + "/web.yaml", Self.service(backend: "10.244.3.3"))
        #expect(h.waitFor("10.96.0.50:80", "translate 10.244.3.3:8080") == "translate 10.244.3.3:8080")
    }
}
