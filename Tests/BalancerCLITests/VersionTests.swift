import Foundation
import MapImage
import Testing

/// `balancer version` and `version --check`, run as a process.
extension CLITests {
    /// The numbers printed are the ones the binary reads and writes images with, the commit is
    /// the checkout's, and libbpf's version is the one the build linked.
    @Test func versionSaysWhatItIs() throws {
        let r = try run(["version", "-o", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(info["version"] as? String == BalancerVersion.string)
        #expect(info["imageFormat"] as? Int == Int(ImageLayout.formatVersion))
        #expect(info["datapathABI"] as? Int == Int(ABI.version))
        #expect(info["kernelCheck"] == nil, "the kernel is examined only with --check")
        let head = try execute("/usr/bin/git", ["rev-parse", "HEAD"])
        if head.status == 0 {
            let commit = try #require(info["commit"] as? String)
            #expect(commit.hasPrefix(head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(commit)")
        }
        let pkg = try execute("/usr/bin/pkg-config", ["--modversion", "libbpf"])
        if pkg.status == 0 {
            let linked = try #require(info["libbpf"] as? String)
            #expect(pkg.stdout.hasPrefix(linked + "."), "pkg-config says \(pkg.stdout), the binary \(linked)")
        }
        let text = try run(["version"])
        #expect(text.stdout.hasPrefix("balancer \(BalancerVersion.string)\ncommit:"))
        #expect(text.stdout.contains("datapath ABI:  \(ABI.version)\n"))
    }

    /// As root the datapath is loaded through the verifier and the verdict is ready (this
    /// kernel runs the kernel suites); without privilege nothing is loaded and the verdict is
    /// unknown, exit status 2, never "ready" or "not ready".
    @Test func versionCheckGivesAVerdict() throws {
        guard getuid() == 0 else { return }
        let root = try run(["version", "--check", "-o", "json"])
        #expect(root.status == 0, "\(root.stdout)\(root.stderr)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(root.stdout.utf8)) as? [String: Any])
        #expect(["ready", "ready-with-limits"].contains(info["verdict"] as? String))
        let items = try #require((info["kernelCheck"] as? [String: Any])?["items"] as? [[String: Any]])
        let load = try #require(items.first { $0["name"] as? String == "datapath load" })
        #expect(load["outcome"] as? String == "ok", "\(load)")
        #expect((load["detail"] as? String)?.contains("programs verified") == true)

        let nobody = try run(["version", "--check"], as: 65534)
        #expect(nobody.status == 2, "\(nobody.stdout)\(nobody.stderr)")
        #expect(nobody.stdout.contains("datapath load           UNKNOWN  not tried: needs CAP_BPF"), "\(nobody.stdout)")
        #expect(nobody.stdout.contains("verdict: unknown:"))
    }
}

/// `watch --log-format`: JSON lines a pipeline parses, text lines that split back into fields.
extension CLITests {
    @Test func logLinesInBothFormats() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        // A broken Service: the error field holds spaces, quotes and a colon.
        try "apiVersion: v1\nkind: Service\nmetadata: {name: \"x\"}\nspec: {clusterIP: \"not an IP\", ports: [{port: 1}]}\n"
            .write(toFile: dir + "/tree/broken.yaml", atomically: true, encoding: .utf8)
        let json = try shell("timeout 2 \"$B\" watch --dir \(dir)/tree --output-dir \(dir)/out --log-format json; true")
        let lines = json.stderr.split(separator: "\n")
        #expect(!lines.isEmpty, "\(json.stderr)")
        let timestamp = try Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"#)
        var sawError = false
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            let ts = try #require(object["ts"] as? String)
            #expect(ts.wholeMatch(of: timestamp) != nil, "\(ts)")
            #expect(line.hasPrefix("{\"ts\":"), "ts first, as Kubernetes' JSON lines")
            #expect(object["logger"] as? String == "balancer.watch")
            #expect(object["msg"] is String)
            if object["level"] as? String == "error" {
                sawError = true
                #expect((object["first"] as? String)?.contains("spec.clusterIP: invalid IP address \"not an IP\"") == true, "\(line)")
            }
        }
        #expect(sawError, "\(json.stderr)")

        let text = try shell("timeout 2 \"$B\" watch --dir \(dir)/tree --output-dir \(dir)/out; true")
        let error = try #require(text.stderr.split(separator: "\n").first { $0.contains(" error balancer.watch: ") }, "\(text.stderr)")
        // The value with spaces is one JSON string: quotes inside escaped, nothing else split.
        #expect(error.contains(#"invalid IP address \"not an IP\""#), "\(error)")
        #expect(error.contains(" errors=1 "), "\(error)")
        let bad = try run(["watch", "--dir", dir + "/tree", "--log-format", "xml"])
        #expect(bad.status == 64 && bad.stderr.contains("--log-format"), "\(bad.stderr)")
    }
}
