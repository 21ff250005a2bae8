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
