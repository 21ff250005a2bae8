import Foundation
import HostSystem
import MapImage
import Testing

/// The command line, run as a process: exit statuses, files written (or not), output shapes.
@Suite(.serialized) struct CLITests {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    static var binary: String { root + "/.build/debug/balancer" }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary; with `uid`, as that user (through setpriv; needs root).
    func run(_ args: [String], as uid: Int? = nil, binary: String = CLITests.binary) throws -> Run {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build the balancer binary first (swift build)")
        if let uid {
            return try execute("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", binary] + args)
        }
        return try execute(Self.binary, args)
    }

    /// Runs a shell pipeline in the repository root, with `$B` the binary.
    func shell(_ script: String) throws -> Run {
        try execute("/bin/sh", ["-c", script], environment: ["B": Self.binary, "PATH": "/usr/bin:/bin"])
    }

    /// Runs a program in the repository root and collects its exit status and output.
    func execute(_ program: String, _ args: [String], environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        if let environment { p.environment = environment }
        p.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "balancer-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `-` reads standard input and `-o -` writes the image to standard output, so that
    /// `kubectl get … | balancer compile - -o - | balancer inspect -` works; the bytes are those of
    /// a compile of the same files, and errors name `<stdin>`.
    @Test func standardInputAndOutput() throws {
        let piped = try shell("for f in fixtures/example/*.yaml; do echo ---; cat $f; done | \"$B\" compile - -o - | \"$B\" inspect -")
        #expect(piped.status == 0, "\(piped.stderr)")
        let golden = try String(contentsOfFile: Self.root + "/golden/example.txt", encoding: .utf8)
        #expect(piped.stdout.split(separator: "\n").dropFirst(3) == golden.split(separator: "\n").dropFirst(3))
        #expect(piped.stderr.contains("wrote the image to standard output: 13 frontends"))
        let bad = try shell("printf 'apiVersion: v1\\nkind: Service\\nmetadata: {name: x}\\nspec: {clusterIP: nope}\\n' | \"$B\" compile - -o /dev/null")
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("<stdin>:4:"), "\(bad.stderr)")
        let image = try shell("echo junk | \"$B\" inspect -")
        #expect(image.status != 0 && image.stderr.contains("<stdin>: invalid image"), "\(image.stderr)")
    }

    /// `-o` naming something that is not a regular file (a FIFO here; `/dev/null` alike) is written
    /// into, not replaced by a file (the atomic rename would turn /dev/null into a file).
    @Test func anOutputThatIsNotAFileIsWrittenInto() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try shell("mkfifo \(dir)/fifo && { timeout 10 cat \(dir)/fifo > \(dir)/read & } && \"$B\" compile fixtures/example -o \(dir)/fifo && wait && test -p \(dir)/fifo")
        #expect(r.status == 0, "\(r.stderr)")
        let golden = try FileContents.read(Self.root + "/golden/example.image")
        #expect(try FileContents.read(dir + "/read") == golden)
    }

    /// `watch --dir` on a tree that is not there fails at once (exit 1), naming it, instead of
    /// retrying a compile for ever.
    @Test func watchOfAMissingDirectoryFailsAtOnce() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try shell("timeout 20 \"$B\" watch --dir \(dir)/missing --output-dir \(dir)")
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("--dir \(dir)/missing: No such file or directory"))
    }

    /// `-o yaml` wherever `-o json` is: the same data (PyYAML reads it back equal to the JSON),
    /// for a whole image with strings that need quoting (addresses, names with "/").
    @Test func yamlOutputIsTheJSONsData() throws {
        let check = """
        import json, subprocess, sys, yaml
        b = sys.argv[1]
        for args in (["inspect", "golden/multicluster-two.image"], ["inspect", "golden/example.image"],
                     ["resolve", "golden/example.image", "10.96.0.10:53", "--udp", "--node", "demo-worker"]):
            j = json.loads(subprocess.run([b] + args + ["-o", "json"], capture_output=True, check=True).stdout)
            y = yaml.safe_load(subprocess.run([b] + args + ["-o", "yaml"], capture_output=True, check=True).stdout)
            if j != y:
                sys.exit("differs: %s" % args)
        """
        let r = try shell("python3 -c '\(check)' \"$B\"")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    /// A usage mistake prints the subcommand's usage, not the top level's.
    @Test func usageMistakesShowTheSubcommandsUsage() throws {
        for (args, usage) in [(["resolve", "golden/example.image", "notanaddress"], "Usage: balancer resolve"),
                              (["resolve", "golden/example.image", "10.96.0.10:53", "--from", "x"], "Usage: balancer resolve"),
                              (["watch", "--dir", "/tmp", "--metrics-address", "nope"], "Usage: balancer watch")] {
            let r = try run(args)
            #expect(r.status == 64, "\(args): exit \(r.status)")
            #expect(r.stderr.contains(usage) && !r.stderr.contains("Usage: balancer <subcommand>"), "\(args): \(r.stderr)")
        }
    }

    @Test func compileWritesAVerifiedImage() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(["compile", "fixtures/example", "-o", dir + "/x.image"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("wrote \(dir)/x.image: 13 frontends"))
        let bytes = try FileContents.read(dir + "/x.image")
        #expect(throws: Never.self) { try MapImage(bytes: bytes) }
        // Same bytes as the golden image.
        let golden = try FileContents.read(Self.root + "/golden/example.image")
        let same = bytes == golden
        #expect(same)
    }

    @Test func compileErrorWritesNothingAndKeepsTheOldImage() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "/bad.yaml"
        try "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {addresses: [{type: InternalIP, address: nope}]}\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try run(["compile", bad, "-o", dir + "/new.image"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.yaml:5:14: error: Service default/x: spec.clusterIP: invalid IP address \"10.96.0.300\""))
        #expect(r.stderr.contains("error: Node n: status.addresses[0].address: invalid IP address \"nope\""))
        #expect(r.stderr.contains("2 errors; no image written"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bad.yaml"])

        // An existing image is left untouched by a failed compile.
        let good = try run(["compile", "fixtures/clusterip-basic", "-o", dir + "/img"])
        #expect(good.status == 0)
        let before = try FileContents.read(dir + "/img")
        let again = try run(["compile", bad, "-o", dir + "/img"])
        #expect(again.status == 1)
        let after = try FileContents.read(dir + "/img")
        let same = before == after
        #expect(same)
    }

    @Test func policyConflictFailsUnlessKeepGoing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func lrp(_ name: String, _ created: String) -> String {
            """
            apiVersion: balancing.elf.io/v1beta1
            kind: LocalRedirectPolicy
            metadata: {name: \(name), creationTimestamp: "\(created)"}
            spec:
              frontend: {addressMatcher: {ip: 169.254.20.10, toPorts: [{port: "53", protocol: UDP}]}}
              backend: {endpointSelector: {matchLabels: {app: x}}, toPorts: [{port: "53", protocol: UDP}]}

            """
        }
        try lrp("a", "2025-01-01T00:00:00Z").write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try lrp("b", "2025-02-01T00:00:00Z").write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        let failed = try run(["compile", dir, "-o", dir + "/img"])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("b.yaml:1:1: error: LocalRedirectPolicy b: spec.frontend: frontend 169.254.20.10:53/UDP is also claimed by LocalRedirectPolicy a"), "\(failed.stderr)")
        #expect(failed.stderr.contains("1 error; no image written"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/img"))
        let kept = try run(["compile", dir, "-o", dir + "/img", "--keep-going"])
        #expect(kept.status == 0, "\(kept.stderr)")
        #expect(kept.stderr.contains("also claimed by LocalRedirectPolicy a"))
        let shown = try run(["inspect", dir + "/img"])
        #expect(shown.stdout.contains("also claimed by LocalRedirectPolicy a"), "the image's metadata lists what was dropped")
    }

    /// Attach refuses what it cannot do before it mounts or creates anything.
    @Test func attachErrorsAreClearAndLeaveNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/keep", atomically: true, encoding: .utf8)
        let mountsBefore = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        let notCgroup = try run(["attach", "--cgroup", dir, "--pin-dir", dir + "/pins"])
        #expect(notCgroup.status == 1)
        #expect(notCgroup.stderr.contains("attach to \(dir): not a cgroup2 directory"), "\(notCgroup.stderr)")
        let missing = try run(["attach", "--cgroup", dir + "/no-such-cgroup", "--pin-dir", dir + "/pins"])
        #expect(missing.stderr.contains("open cgroup \(dir)/no-such-cgroup: No such file or directory"))
        // A pin dir whose parent has contents and is not a bpffs: no bpffs is mounted over it.
        if let cgroupRoot = Self.cgroup2Root() {
            let cg = cgroupRoot + "/balancer-clitest-\(UUID().uuidString.prefix(8))"
            if (try? FileManager.default.createDirectory(atPath: cg, withIntermediateDirectories: false)) != nil {
                defer { rmdir(cg) }
                let hidden = try run(["attach", "--cgroup", cg, "--pin-dir", dir + "/pins"])
                #expect(hidden.status == 1)
                #expect(hidden.stderr.contains("is not a bpffs and not an empty directory to mount one on"), "\(hidden.stderr)")
                // Without privileges: the kernel's refusal, with what is needed.
                if getuid() == 0 {
                    let empty = dir + "/empty"
                    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
                    chmod(dir, 0o755)
                    // A copy the unprivileged user can run wherever the checkout lives.
                    try FileManager.default.copyItem(atPath: Self.binary, toPath: dir + "/balancer")
                    chmod(dir + "/balancer", 0o755)
                    let r = try run(["attach", "--cgroup", cg, "--pin-dir", empty + "/pins"], as: 65534, binary: dir + "/balancer")
                    #expect(r.status == 1)
                    #expect(r.stderr.contains("mount bpffs on \(empty)") && r.stderr.contains("needs root"), "\(r.stderr)")
                }
            }
        }
        let mountsAfter = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        #expect(mountsBefore == mountsAfter)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted().filter { $0 != "empty" && $0 != "balancer" } == ["keep"])
    }

    static func cgroup2Root() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 2 && f[2] == "cgroup2" { return String(f[1]) }
        }
        return nil
    }

    @Test func diffExitStatuses() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/a"]).status == 0)
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/b"]).status == 0)
        #expect(try run(["compile", "fixtures/multiport", "-o", dir + "/c"]).status == 0)
        let same = try run(["diff", dir + "/a", dir + "/b"])
        #expect(same.status == 0)
        #expect(same.stdout.hasPrefix("images are identical"))
        let differ = try run(["diff", dir + "/a", dir + "/c"])
        #expect(differ.status == 1)
        #expect(differ.stdout.contains("- service kube-system/kube-dns"))
        let missing = try run(["diff", dir + "/a", dir + "/nope"])
        #expect(missing.status == 2)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/garbage"))
        let garbage = try run(["diff", dir + "/a", dir + "/garbage"])
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("invalid image"))
    }

    @Test func resolveJSON() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/a"]).status == 0)
        let r = try run(["resolve", dir + "/a", "[fd00:10:96::6432]:80", "--node", "demo-worker", "-o", "json"])
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["result"] as? String == "translate")
        #expect(object?["backends"] as? [String] == ["[fd00:10:244:1::7]:8080", "[fd00:10:244:2::6]:8080"])
        let refused = try run(["resolve", dir + "/a", "10.96.0.10:5353", "--udp", "-o", "json"])
        #expect(refused.stdout.contains("\"result\":\"reject\""))
        let unknownNode = try run(["resolve", dir + "/a", "10.96.0.10:53", "--node", "nope"])
        #expect(unknownNode.status != 0)
        #expect(unknownNode.stderr.contains("node \"nope\" is not in this image"))
        let badAddress = try run(["resolve", dir + "/a", "10.96.0.10"])
        #expect(badAddress.status != 0)
    }

    @Test func unreadableAndInvalidImagesFail() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try run(["inspect", dir + "/nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot read image \(dir)/nope: No such file or directory"))
        try Data([1, 2]).write(to: URL(fileURLWithPath: dir + "/bad"))
        let bad = try run(["resolve", dir + "/bad", "10.0.0.1:80"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("invalid image: truncated: 2 bytes, a header needs 64"))
    }

    @Test func inspectTextAndJSON() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/a"]).status == 0)
        let text = try run(["inspect", dir + "/a"])
        #expect(text.stdout == (try String(contentsOfFile: Self.root + "/golden/example.txt", encoding: .utf8)))
        let json = try run(["inspect", dir + "/a", "-o", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["frontends"] as? [Any])?.count == 13)
        #expect(object?["abi"] as? Int == Int(ABI.version))
    }
}
