import Foundation
import HostSystem
import MapImage
import Testing

/// The image boundary from the command line: no image past the datapath's capacity is written,
/// a forged image's strings cannot forge a line of output, every refused image is named.
extension CLITests {
    /// Strings that try to end a line, forge a record or drive the terminal (no NUL: the node's
    /// name is also an argument).
    static let hostileNode = "demo-worker\nNODE 0xdeadbeef forged zone=- ipv4=6.6.6.6 ipv6=-\u{1b}[2J"
    static let hostileService = "kube-dns\u{202e}\u{85}\r\nVIP 10.0.0.1 service=forged"

    /// fixtures/example compiled, with its metadata's names replaced by hostile ones and the
    /// image encoded (and sealed) again: what a forger with the encoder makes.
    func forgedImage(in dir: String) throws -> (clean: String, forged: String) {
        let compiled = dir + "/compiled.image"
        #expect(try run(["compile", "fixtures/example", "-o", compiled]).status == 0)
        var c = try MapImage(bytes: FileContents.read(compiled)).contents
        // The clean image has a plain diagnostic where the forged one has a hostile one.
        var plain = c
        plain.metadata.diagnostics.append(DiagnosticInfo(severity: "warning", object: "Service a/b", field: "x", message: "one"))
        let clean = dir + "/clean.image"
        try FileContents.writeAtomically(ImageEncoder.encode(plain), to: clean)
        for i in c.metadata.nodes.indices where c.metadata.nodes[i].name == "demo-worker" { c.metadata.nodes[i].name = Self.hostileNode }
        for i in c.metadata.zones.indices { c.metadata.zones[i].name += "\u{9b}1;31m\u{7f}" }
        for i in c.metadata.services.indices where c.metadata.services[i].name == "kube-dns" {
            c.metadata.services[i].name = Self.hostileService
        }
        for i in c.metadata.groups.indices where c.metadata.groups[i].ownerName == "kube-system/kube-dns" {
            c.metadata.groups[i].ownerName = "kube-system/" + Self.hostileService
        }
        c.metadata.diagnostics.append(DiagnosticInfo(severity: "warning", object: "Service a/b\n", field: "x\u{2028}", message: "one\ntwo\\n\u{0}"))
        let forged = dir + "/forged.image"
        try FileContents.writeAtomically(ImageEncoder.encode(c), to: forged)
        return (clean, forged)
    }

    static func unsafe(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { $0 != "\n" && PrintableText.isUnsafe($0) }
    }

    /// A table past its capacity (the nodes table, the smallest: BL_MAX_NODES + 1 Node
    /// objects): the error names the table, the count, the limit and the constant; nothing is
    /// written, not even with --keep-going, and an older image stays as it was.
    @Test func compileBeyondCapacityWritesNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = ABI.maxEntries(.nodes) + 1
        let items = (0..<n).map { "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n\($0)\"}}" }
        try ("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[" + items.joined(separator: ",") + "]}")
            .write(toFile: dir + "/nodes.json", atomically: true, encoding: .utf8)
        try "old".write(toFile: dir + "/kept.image", atomically: true, encoding: .utf8)
        for extra in [[], ["--keep-going"]] {
            let r = try run(["compile", dir + "/nodes.json", "-o", dir + "/kept.image"] + extra)
            #expect(r.status == 1)
            #expect(r.stderr == """
                error: nodes: \(n) records exceed the datapath's capacity of \(n - 1) (BL_MAX_NODES in bpf/include/balancer_abi.h; \
                raise it and rebuild balancer (swift build compiles the datapath with it)); \(n) Node objects and 0 node names that only endpoints mention
                1 error; no image written (the image would not fit the datapath)

                """, "\(r.stderr)")
            #expect(try String(contentsOfFile: dir + "/kept.image", encoding: .utf8) == "old")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["kept.image", "nodes.json"])
        }
    }

    /// inspect, diff and resolve of a forged image: as many lines as for the clean image, each
    /// the same record, no control character; JSON stays valid and carries the strings exactly.
    @Test func forgedNamesCannotForgeLines() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (clean, forged) = try forgedImage(in: dir)

        let a = try run(["inspect", clean]), b = try run(["inspect", forged])
        #expect(a.status == 0 && b.status == 0)
        #expect(Self.unsafe(b.stdout).isEmpty)
        let al = a.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let bl = b.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(al.count == bl.count)
        for (x, y) in zip(al, bl) { #expect(x.split(separator: " ").first == y.split(separator: " ").first, "\(y)") }
        #expect(b.stdout.contains("NODE 0x653108e9 demo-worker\\nNODE 0xdeadbeef forged zone=- ipv4=6.6.6.6 ipv6=-\\x1b[2J zone=zone-b\\u{9b}1;31m\\x7f"))
        #expect(!bl.contains { $0.hasPrefix("NODE 0xdeadbeef") || $0.hasPrefix("VIP 10.0.0.1") })

        let json = try run(["inspect", forged, "-o", "json"])
        #expect(Self.unsafe(json.stdout).isEmpty)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let services = (object?["metadata"] as? [String: Any])?["services"] as? [[String: Any]]
        #expect(services?.contains { $0["name"] as? String == Self.hostileService } == true)

        let diff = try run(["diff", clean, forged])
        #expect(diff.status == 1)
        #expect(Self.unsafe(diff.stdout).isEmpty)
        for line in diff.stdout.split(separator: "\n") {
            let ok = ["--- old sha256 ", "+++ new sha256 ", "+ ", "- ", "~ ", "    + ", "    - "].contains { line.hasPrefix($0) }
            #expect(ok, "\(line)")
        }
        #expect(diff.stdout.contains("+ node demo-worker\\nNODE 0xdeadbeef"))

        let r = try run(["resolve", forged, "10.96.0.10:53", "--udp", "--node", Self.hostileNode])
        let rc = try run(["resolve", clean, "10.96.0.10:53", "--udp", "--node", "demo-worker"])
        #expect(r.status == 0 && rc.status == 0)
        #expect(Self.unsafe(r.stdout).isEmpty)
        #expect(r.stdout.split(separator: "\n").count == rc.stdout.split(separator: "\n").count)
        #expect(r.stdout.contains("from node demo-worker\\nNODE 0xdeadbeef"))
        let rj = try run(["resolve", forged, "10.96.0.10:53", "--udp", "--node", Self.hostileNode, "-o", "json"])
        #expect(Self.unsafe(rj.stdout).isEmpty)
        let view = try JSONSerialization.jsonObject(with: Data(rj.stdout.utf8)) as? [String: Any]
        #expect(view?["node"] as? String == Self.hostileNode)
        #expect((view?["rule"] as? [String: Any])?["group"] as? String == "kube-system/\(Self.hostileService):dns/UDP IPv4")

        // The error for an unknown node lists the image's names, escaped: one line.
        let unknown = try run(["resolve", forged, "10.96.0.10:53", "--node", "nope"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.split(separator: "\n").count == 1, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("demo-worker\\nNODE 0xdeadbeef"))
    }

    /// Every command that reads an image names the file it refused, for a missing file and for
    /// one that fails verification, whichever argument it was.
    @Test func refusedImagesAreNamed() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good.image", corrupt = dir + "/corrupt.image"
        #expect(try run(["compile", "fixtures/example", "-o", good]).status == 0)
        var bytes = try FileContents.read(good)
        bytes[bytes.count - 9] ^= 1
        try FileContents.writeAtomically(bytes, to: corrupt)

        for (args, culprit) in [([good, corrupt], corrupt), ([corrupt, good], corrupt)] {
            let r = try run(["diff"] + args)
            #expect(r.status == 2)
            #expect(r.stderr.hasPrefix("error: \(culprit): invalid image: digest mismatch"), "\(r.stderr)")
        }
        let missing = try run(["diff", good, dir + "/nope"])
        #expect(missing.status == 2)
        #expect(missing.stderr == "error: cannot read image \(dir)/nope: No such file or directory\n", "\(missing.stderr)")

        // check-live and status --image verify the image before they look at the datapath.
        let live = try run(["check-live", corrupt, "--pin-dir", dir + "/no-pins"])
        #expect(live.status == 2)
        #expect(live.stderr.hasPrefix("error: \(corrupt): invalid image: digest mismatch"), "\(live.stderr)")
        let liveMissing = try run(["check-live", dir + "/nope", "--pin-dir", dir + "/no-pins"])
        #expect(liveMissing.stderr == "error: cannot read image \(dir)/nope: No such file or directory\n", "\(liveMissing.stderr)")
        let status = try run(["status", "--pin-dir", dir + "/no-pins", "--image", corrupt])
        #expect(status.status == 1)
        #expect(status.stderr.contains("\(corrupt): invalid image: digest mismatch"), "\(status.stderr)")
    }
}
