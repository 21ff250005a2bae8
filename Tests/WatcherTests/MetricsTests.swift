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
        // An EndpointSlice whose last change was triggered 3 s ago, and one whose change was
        // triggered before the watcher started (stated: 10 s ago), which is not a programming
        // latency: a restart would otherwise record the agent's downtime.
        func slice(_ name: String, ip: String, triggered: Date) -> String {
            DirectoryWatchTests.service(backend: "10.244.9.1", name: name, ip: ip).replacingOccurrences(
                of: "labels: {kubernetes.io/service-name: \(name)}",
                with: "labels: {kubernetes.io/service-name: \(name)}, annotations: {endpoints.kubernetes.io/last-change-trigger-time: \"\(triggered.ISO8601Format())\"}")
        }
        try slice("web", ip: "10.96.0.50", triggered: Date().addingTimeInterval(-3)).write(toFile: tree + "/web.yaml", atomically: true, encoding: .utf8)
        try slice("old", ip: "10.96.0.51", triggered: Date().addingTimeInterval(-60)).write(toFile: tree + "/old.yaml", atomically: true, encoding: .utf8)

        let metrics = WatchMetrics(processStart: Date().addingTimeInterval(-10))
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
        #expect(m.body.contains("balancer_objects{kind=\"EndpointSlice\"} 2"))
        #expect(m.body.contains("balancer_live_image_info{sha256=\""))
        #expect(metric(m.body, "balancer_network_programming_duration_seconds_count") == 1)
        let sum = metric(m.body, "balancer_network_programming_duration_seconds_sum") ?? 0
        #expect(sum >= 3 && sum < 30, "\(sum)")
        // Milliseconds resolve: kube-proxy's buckets start at 250 ms, these at 1 ms.
        #expect(m.body.contains("balancer_network_programming_duration_seconds_bucket{le=\"0.001\"} 0"))
        let last = metric(m.body, "balancer_sync_proxy_rules_last_timestamp_seconds") ?? 0
        #expect(abs(last - Date().timeIntervalSince1970) < 60, "\(last)")
        #expect(metric(m.body, "balancer_sync_proxy_rules_duration_seconds_count") == 1)
        #expect(m.body.contains("balancer_build_info{version=\"\(BalancerVersion.string)\",commit=\"\(BalancerVersion.commit)\""))
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
            #expect(metric(m.body, name) != nil, "\(name)")
        }
        try Self.checkExposition(m.body)

        // A broken file: syncs fail; after the grace time /healthz says 503; the fix brings 200 back.
        try "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: nope, ports: [{port: 1}]}\n"
            .write(toFile: tree + "/broken.yaml", atomically: true, encoding: .utf8)
        #expect(waitHealth(503) == 503)
        #expect((metric(get(endpoint.port, "/metrics").body, "balancer_sync_errors_total") ?? 0) >= 1)
        try FileManager.default.removeItem(atPath: tree + "/broken.yaml")
        #expect(waitHealth(200) == 200)
        #expect(get(endpoint.port, "/nope").status == 404)
    }

    /// The exposition as Prometheus reads it: `promtool check metrics` (its parser and its lint:
    /// names, units, counter suffixes), when installed (`make deps` installs it), and Python's
    /// prometheus_client parser, which must find every family.
    static func checkExposition(_ body: String) throws {
        let file = NSTemporaryDirectory() + "balancer-metrics-\(UUID().uuidString).txt"
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        func run(_ program: String, _ args: [String]) -> (status: Int32, output: String)? {
            guard FileManager.default.isExecutableFile(atPath: program) else { return nil }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = args
            p.standardInput = FileHandle(forReadingAtPath: file)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            guard (try? p.run()) != nil else { return nil }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        if let promtool = run("/usr/bin/promtool", ["check", "metrics"]) {
            #expect(promtool.status == 0 && promtool.output.isEmpty, "promtool check metrics: \(promtool.output)")
        }
        let script = """
        import sys
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            print("skipped"); sys.exit(0)
        names = sorted(f.name for f in text_string_to_metric_families(sys.stdin.read()))
        print(" ".join(names))
        """
        if let parsed = run("/usr/bin/python3", ["-c", script]), parsed.output != "skipped\n" {
            #expect(parsed.status == 0, "\(parsed.output)")
            for family in ["balancer_network_programming_duration_seconds", "balancer_sync_proxy_rules_duration_seconds",
                           "balancer_sync_proxy_rules_last_timestamp_seconds", "balancer_sync_proxy_rules_endpoint_changes",
                           "balancer_build_info", "process_cpu_seconds"] {
                #expect(parsed.output.contains(family), "\(family) not in \(parsed.output)")
            }
        }
    }
}
