import Compiler
import Foundation
@testable import KubeAPI
import Manifests
import MapImage
import Synchronization
import Testing
@testable import Watcher

/// `/metrics` and `/healthz` of a watcher, over real HTTP.
@Suite(.serialized) struct MetricsTests {
    func get(_ port: Int, _ path: String) -> (status: Int, body: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return (0, "") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let nl = text.lastIndex(of: "\n") else { return (0, text) }
        return (Int(text[text.index(after: nl)...]) ?? 0, String(text[..<nl]))
    }

    func metric(_ body: String, _ name: String) -> Double? {
        for line in body.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func healthMetricsAndNetworkProgrammingDuration() throws {
        let base = NSTemporaryDirectory() + "balancer-metrics-\(UUID().uuidString)"
        let tree = base + "/tree", out = base + "/out"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        // An EndpointSlice whose last change was triggered 3 s ago.
        let trigger = Date().addingTimeInterval(-3).ISO8601Format()
        try DirectoryWatchTests.service(backend: "10.244.9.1").replacingOccurrences(
            of: "labels: {kubernetes.io/service-name: web}",
            with: "labels: {kubernetes.io/service-name: web}, annotations: {endpoints.kubernetes.io/last-change-trigger-time: \"\(trigger)\"}")
            .write(toFile: tree + "/web.yaml", atomically: true, encoding: .utf8)

        let metrics = WatchMetrics()
        let endpoint = try MetricsEndpoint.start(host: "127.0.0.1", port: 0, metrics: metrics, unhealthyAfter: .milliseconds(300))
        defer { endpoint.stop() }
        #expect(get(endpoint.port, "/healthz").status == 503, "no image delivered yet")

        let stop = Atomic<Bool>(false)
        let thread = Thread {
            let w = DirectoryWatcher(root: tree, options: .init(debounce: .milliseconds(30)), sink: DirectorySink(directory: out), metrics: metrics)
            try? w.run(shouldStop: { stop.load(ordering: .relaxed) })
        }
        thread.start()
        defer {
            stop.store(true, ordering: .relaxed)
            for _ in 0..<50 where !thread.isFinished { usleep(20_000) }
        }
        func waitHealth(_ want: Int) -> Int {
            var got = 0
            for _ in 0..<250 {
                got = get(endpoint.port, "/healthz").status
                if got == want { break }
                usleep(20_000)
            }
            return got
        }
        #expect(waitHealth(200) == 200)
        let m = get(endpoint.port, "/metrics")
        #expect(m.status == 200)
        #expect(metric(m.body, "balancer_syncs_total") == 1)
        #expect(metric(m.body, "balancer_sync_errors_total") == 0)
        #expect(m.body.contains("balancer_objects{kind=\"EndpointSlice\"} 1"))
        #expect(m.body.contains("balancer_live_image_info{sha256=\""))
        #expect(metric(m.body, "network_programming_duration_seconds_count") == 1)
        let sum = metric(m.body, "network_programming_duration_seconds_sum") ?? 0
        #expect(sum >= 3 && sum < 30, "\(sum)")

        // A broken file: syncs fail; after the grace time /healthz says 503; the fix brings 200 back.
        try "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: nope, ports: [{port: 1}]}\n"
            .write(toFile: tree + "/broken.yaml", atomically: true, encoding: .utf8)
        #expect(waitHealth(503) == 503)
        #expect((metric(get(endpoint.port, "/metrics").body, "balancer_sync_errors_total") ?? 0) >= 1)
        try FileManager.default.removeItem(atPath: tree + "/broken.yaml")
        #expect(waitHealth(200) == 200)
        #expect(get(endpoint.port, "/nope").status == 404)
    }
}
