import ArgumentParser
import Compiler
import FoundationEssentials
import Loader
import Manifests
import MapImage

#if canImport(Glibc)
import Glibc
#endif

@main
struct Balancer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balancer",
        abstract: "Kubernetes service resolution at the socket: compile objects into a map image, inspect and query it.",
        version: BalancerVersion.string,
        subcommands: [Compile.self, Inspect.self, Diff.self, Resolve.self, Load.self, Rollback.self, CheckLive.self, Attach.self, Detach.self, Status.self, Watch.self, SnapshotCommand.self]
    )
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Writes to standard error (Swift 6 forbids touching the C `stderr` global).
func printError(_ s: String) {
    StandardError.write(s.hasSuffix("\n") ? s : s + "\n")
}

/// A runtime failure (not a usage mistake): printed as `Error: …`, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String
}

func readImageBytes(_ path: String) throws(CommandError) -> [UInt8] {
    do {
        return try ImageFile.read(path)
    } catch {
        throw CommandError(description: "cannot read image \(PrintableText.escape(error.description))")
    }
}

/// Reads and verifies an image; the error names the file, for a read and a verification failure.
func loadImage(_ path: String) throws(CommandError) -> MapImage {
    let bytes = try readImageBytes(path)
    do {
        return try MapImage(bytes: bytes)
    } catch {
        throw CommandError(description: "\(PrintableText.escape(path)): \(error)")
    }
}

/// Prints one line of text output with the image's (or the host's) strings in it escaped, so
/// that it stays one line (PrintableText).
func printLine(_ s: String) {
    print(PrintableText.escape(s))
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile Kubernetes objects into a map image.",
        discussion: """
        INPUT is a file or a directory (read recursively: *.yaml, *.yml, *.json) of objects as \
        `kubectl get -o yaml|json` prints them, List wrappers included, with LocalRedirectPolicies \
        and BalancingPolicies (docs/policies.md). Every error of every file is reported; on error \
        no image is written. With --keep-going, errors of policies (two on one frontend, a missing \
        Service, an unpaired port) leave that policy's frontend out (a conflict: the older policy \
        keeps it) and the image is written; its metadata lists the errors. Malformed input always \
        fails.
        """)

    @Argument(help: "Manifest files or directories.")
    var inputs: [String]

    @Option(name: .shortAndLong, help: "Where to write the image.")
    var output: String

    @Flag(help: "Print notes (things skipped on purpose) as well as warnings.")
    var verbose = false

    @Flag(help: "Print one JSON line of timings and sizes to standard error.")
    var timings = false

    @Flag(help: "Write the image despite policy errors, leaving the offending policy frontends out.")
    var keepGoing = false

    @Option(help: "Redirects per second per node for LocalRedirectPolicies without spec.redirectRateLimit (0: none).")
    var redirectRateLimit: UInt32 = 0

    @Option(help: "Refuse an input file larger than this (bytes, or with Ki/Mi/Gi).")
    var maxFileBytes = ByteSize(bytes: InputLimits.defaultMaxFileBytes)

    func run() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let snapshot: Snapshot
        let inputDiagnostics: [Diagnostic]
        do {
            (snapshot, inputDiagnostics) = try InputLoader.load(paths: inputs, limits: InputLimits(maxFileBytes: maxFileBytes.bytes))
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        let t1 = clock.now
        let result = Compiler.compile(snapshot, inputDiagnostics: inputDiagnostics,
                                      options: CompileOptions(defaultRedirectRateLimit: redirectRateLimit))
        let t2 = clock.now
        let errors = result.diagnostics.filter { $0.severity == .error }.count
        if errors > 0 && (!keepGoing || result.exceedsCapacity) {
            for d in result.diagnostics where verbose || d.severity != .note { printError(d.description) }
            printError("\(errors) error\(errors == 1 ? "" : "s"); no image written"
                       + (result.exceedsCapacity ? " (the image would not fit the datapath)" : " (--keep-going writes it without the failing policies)"))
            throw ExitCode(1)
        }
        // Checked against every capacity and verified as `inspect` and `load` verify it, before
        // anything is written: no image file a reader would refuse.
        let bytes: [UInt8]
        var tEncoded = clock.now
        do {
            bytes = try ImageEncoder.encodeChecked(result.contents)
            tEncoded = clock.now
            try ImageEncoder.verifyEncoded(bytes)
        } catch {
            for d in result.diagnostics where verbose || d.severity != .note { printError(d.description) }
            for line in error.description.split(separator: "\n") { printError("error: \(line)") }
            printError("no image written")
            throw ExitCode(1)
        }
        let tVerified = clock.now
        do {
            try ImageFile.writeAtomically(bytes, to: output)
        } catch {
            printError("error: cannot write image: \(error)")
            throw ExitCode(1)
        }
        let t3 = clock.now
        for d in result.diagnostics where verbose || d.severity != .note {
            printError(d.description)
        }
        let c = result.contents
        let digest = (try? ImageDecoder.decodeHeader(bytes).digestHex) ?? "?"
        if !timings {
            print("wrote \(output): \(c.frontends.count) frontends, \(c.sets.count) backend sets, \(c.backends.count) backends, \(c.nodes.count) nodes; \(bytes.count) bytes, sha256 \(digest)")
        }
        if timings {
            func s(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
            var usage = rusage()
            getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
            let objects = snapshot.counts.filter { !$0.key.hasPrefix("skipped/") }.values.reduce(0, +)
            let line = "{\"parse_seconds\":\(s(t1 - t0)),\"model_seconds\":\(s(t2 - t1)),\"image_seconds\":\(s(tEncoded - t2)),"
                + "\"verify_seconds\":\(s(tVerified - tEncoded)),\"write_seconds\":\(s(t3 - tVerified)),\"total_seconds\":\(s(t3 - t0)),\"peak_rss_bytes\":\(Int(usage.ru_maxrss) * 1024),\"image_bytes\":\(bytes.count),"
                + "\"objects\":\(objects)}"
            printError(line)
        }
        // A large cluster leaves hundreds of MB of objects to free; the process is done, so skip
        // tearing them down (as compilers do). exit() still flushes standard output.
        Glibc.exit(0)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every table of an image, one line per record, with names next to ids.")

    @Argument(help: "The image file.")
    var image: String

    @Option(name: .shortAndLong, help: "text (for reading and diffing) or json.")
    var output: OutputFormat = .text

    func run() throws {
        let img = try loadImage(image)
        print(output == .text ? TextRenderer.render(img) : JSONRenderer.render(img), terminator: "")
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changes between two images, per service and node.",
        discussion: "Exit status: 0 when the images are identical, 1 when they differ, 2 on error.")

    @Argument(help: "The old image.")
    var old: String

    @Argument(help: "The new image.")
    var new: String

    func run() throws {
        let a: MapImage, b: MapImage
        do {
            a = try loadImage(old)
            b = try loadImage(new)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let diff = ImageDiff(old: a, new: b)
        print(diff.render(), terminator: "")
        if !diff.isEmpty { throw ExitCode(1) }
    }
}

struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Where would a connect to ADDRESS:PORT go? The Resolver's answer over an image.",
        discussion: """
        Without --node the client is a host that is not a node of the cluster. IPv6 as [addr]:port.
        Results: translate (with every backend it may reach), reject (ECONNREFUSED), \
        unreachable (EHOSTUNREACH), passthrough (not a service address).
        """)

    @Argument(help: "The image file.")
    var image: String

    @Argument(help: "Destination, e.g. 10.96.0.10:53 or [fd00::10]:443.")
    var destination: String

    @Flag(help: "UDP instead of TCP.")
    var udp = false

    @Option(help: "The node the connect starts on.")
    var node: String?

    @Option(help: "For hosts that are not nodes: pod (reach backends directly) or nodeport (the backend's node address and NodePort).")
    var hostMode: String = "pod"

    @Option(name: .shortAndLong, help: "text or json.")
    var output: OutputFormat = .text

    func run() throws {
        guard let dest = SocketAddress(destination) else {
            throw ValidationError("\"\(destination)\" is not ADDRESS:PORT (IPv6 as [addr]:port)")
        }
        guard let mode = HostMode(rawValue: hostMode) else {
            throw ValidationError("--host-mode must be pod or nodeport")
        }
        let img = try loadImage(image)
        let resolver = Resolver(img.contents)
        var nodeID: UInt32 = 0
        if let node {
            do { nodeID = try resolver.nodeID(named: node) } catch { throw CommandError(description: error.description) }
        }
        let r = resolver.resolve(dest, proto: udp ? .udp : .tcp, nodeID: nodeID, hostMode: mode)
        let names = ImageNames(img.contents)
        switch output {
        case .json:
            struct RuleView: Encodable {
                var index: Int
                var origin: String
                var kind: String
                var group: String
                var flags: [String]
            }
            struct View: Encodable {
                var result: String
                var backends: [String]
                var destination: String
                var `protocol`: String
                var node: String?
                var hostMode: String
                var frontend: String?
                var rule: RuleView?
                var reason: String
            }
            let view = View(result: r.result.rawValue, backends: r.backends.map(\.description), destination: dest.description,
                            protocol: udp ? "UDP" : "TCP", node: node, hostMode: mode.rawValue, frontend: r.frontend?.description,
                            rule: r.rule.map { RuleView(index: r.ruleIndex ?? 0, origin: $0.origin.description, kind: $0.kind.description,
                                                         group: names.group($0.groupID), flags: $0.flags.names) },
                            reason: r.reason)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(view)
            print(PrintableText.escapeJSON(String(decoding: data, as: UTF8.self)))
        case .text:
            let from = node.map { "node \($0)" } ?? "a host that is not a node (host mode \(mode.rawValue))"
            printLine("\(dest)/\(udp ? "UDP" : "TCP") from \(from): \(r.result.rawValue)")
            if let f = r.frontend, let rule = r.rule, let i = r.ruleIndex {
                printLine("  frontend \(f), rule \(i): \(rule.origin) \(names.group(rule.groupID)) \(rule.kind) flags=\(rule.flags)")
            }
            printLine("  \(r.reason)")
            if !r.backends.isEmpty {
                printLine("  backends: " + r.backends.map(\.description).joined(separator: " "))
            }
        }
    }
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an image into the datapath's pinned maps: fill the standby generation, then flip.",
        discussion: """
        The image is verified completely before any map is touched. The standby generation gets new \
        tables, then one update of bl_config makes it live; the previous generation stays as the \
        rollback target. The datapath's maps must be pinned under PIN-DIR/maps (`balancer attach` \
        does that). Loading the live image again changes nothing.
        """)

    @Argument(help: "The image file.")
    var image: String

    @Option(help: "The bpffs directory holding maps/bl_*.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    @Option(help: "This host's node name in the image; omit on a host that is not a node.")
    var node: String?

    @Option(help: "For hosts that are not nodes: pod or nodeport.")
    var hostMode: String = "pod"

    @Flag(help: "Print one JSON line of per-step timings to standard error.")
    var timings = false

    @Option(help: ArgumentHelp(
        "With --node: the cgroup whose processes' network namespaces are searched for the backend pods of skipRedirectFromBackend policies (default: the cgroup2 root).",
        valueName: "CGROUP"))
    var netnsScope: String?

    func run() throws {
        guard let mode = HostMode(rawValue: hostMode) else { throw ValidationError("--host-mode must be pod or nodeport") }
        let clock = ContinuousClock()
        let t0 = clock.now
        let bytes = try readImageBytes(image)
        let t1 = clock.now
        do {
            let datapath = try Datapath(pinDir: pinDir)
            let report = try datapath.load(imageBytes: bytes, node: node, hostMode: mode)
            if timings {
                func s(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
                var fields = ["\"read_seconds\":\(s(t1 - t0))"]
                fields += report.phases.map { "\"\($0.0.replacingOccurrences(of: " ", with: "_"))_seconds\":\($0.1)" }
                fields.append("\"total_seconds\":\(s(clock.now - t0))")
                printError("{" + fields.joined(separator: ",") + "}")
            }
            let counts = report.records.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            var skipNote = ""
            if node != nil {
                guard let scope = netnsScope ?? Attachment.cgroup2Root() else {
                    throw CommandError(description: "no cgroup2 mount found: give --netns-scope")
                }
                let sr = try datapath.syncSkips(report.skipTargets, scope: scope)
                if !report.skipTargets.isEmpty {
                    skipNote = "; skipRedirectFromBackend: \(sr.entries) namespace entr\(sr.entries == 1 ? "y" : "ies") (\(sr.namespacesVisited) namespace\(sr.namespacesVisited == 1 ? "" : "s") searched under \(scope))"
                    if !sr.unmatched.isEmpty { skipNote += ", no namespace holds \(sr.unmatched.map(\.description).joined(separator: " "))" }
                }
            }
            if report.unchanged {
                print("generation \(report.generation) already live with this image (sha256 \(report.digestHex)): nothing changed\(skipNote)")
            } else {
                print("generation \(report.generation) live: sha256 \(report.digestHex); \(counts)\(skipNote)")
            }
        } catch let error as LoadError {
            switch error {
            case .image, .node: throw CommandError(description: "\(PrintableText.escape(image)): \(error)")
            default: break
            }
            throw CommandError(description: error.description)
        } catch {
            throw CommandError(description: "\(error)")
        }
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make the previous generation live again, in one flip.")

    @Option(help: "The bpffs directory holding maps/bl_*.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    func run() throws {
        do {
            let generation = try Datapath(pinDir: pinDir).rollback()
            print("generation \(generation) live")
        } catch {
            throw CommandError(description: error.description)
        }
    }
}

struct CheckLive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-live",
        abstract: "Compare the live generation's tables with an image, record by record.",
        discussion: """
        Reads every record of the live generation's eight tables from the kernel and compares \
        them with the image's (verified first): prints one verdict line, then up to 20 \
        differences (table, key, live and image values in hex; missing = the image has the key \
        and the datapath not, extra = the reverse). It checks what the kernel holds, however it \
        was written (whole loads, incremental writes by `watch`, rollbacks). Exit status: 0 when \
        equal, 1 when they differ, 2 on error (an unreadable or invalid image, no datapath).
        """)

    @Argument(help: "The image file.")
    var image: String

    @Option(help: "The bpffs directory holding maps/bl_*.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    func run() throws {
        let verified: VerifiedImage
        do {
            let bytes = try readImageBytes(image)
            do {
                verified = try ImageDecoder.verify(bytes, nodes: false)
            } catch {
                throw CommandError(description: "\(PrintableText.escape(image)): \(error)")
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let result: Datapath.LiveComparison
        do {
            result = try Datapath(pinDir: pinDir).compareLive(with: verified, limit: 20)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let named = result.liveDigest.map { $0 == verified.header.digestHex ? "; recorded as this image" : "; recorded as sha256 \($0)" }
            ?? "; no image digest recorded"
        if result.isEqual {
            printLine("equal: live generation \(result.generation) holds exactly the \(result.imageRecords) records of \(image) (sha256 \(verified.header.digestHex))\(named)")
            return
        }
        printLine("different: live generation \(result.generation) differs from \(image) (sha256 \(verified.header.digestHex)) in \(result.differenceCount) record\(result.differenceCount == 1 ? "" : "s"): "
              + "\(result.missing) missing, \(result.extra) extra, \(result.changed) changed (\(result.liveRecords) live, \(result.imageRecords) in the image)\(named)")
        for d in result.differences {
            let key = d.key.map { hexByteString($0) }.joined()
            switch (d.live, d.image) {
            case (nil, let i?): print("  \(d.table) \(key): missing; image \(i.map { hexByteString($0) }.joined())")
            case (let l?, nil): print("  \(d.table) \(key): extra; live \(l.map { hexByteString($0) }.joined())")
            case (let l?, let i?): print("  \(d.table) \(key): live \(l.map { hexByteString($0) }.joined()) image \(i.map { hexByteString($0) }.joined())")
            case (nil, nil): break
            }
        }
        if result.differenceCount > result.differences.count { print("  … \(result.differenceCount - result.differences.count) more") }
        throw ExitCode(1)
    }
}

func hexByteString(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach every datapath program to a cgroup, through bpf_links pinned in the pin dir.",
        discussion: """
        Loads the datapath object built into balancer, reusing the maps pinned under PIN-DIR/maps \
        (pinning them on first use; PIN-DIR is created on a bpffs, which is mounted on its parent \
        when absent). The links are pinned under PIN-DIR/links, so the programs stay attached when \
        no balancer process runs. Attaching again is a no-op. The cgroup is always explicit.
        """)

    @Option(help: "The cgroup (v2) directory to attach to.")
    var cgroup: String

    @Option(help: "The bpffs directory for maps and links.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    func run() throws {
        do {
            let r = try Attachment.attach(cgroup: cgroup, pinDir: pinDir)
            print("attached \(r.attached.count) programs to \(cgroup)" + (r.alreadyAttached.isEmpty ? "" : "; \(r.alreadyAttached.count) already attached"))
        } catch {
            throw CommandError(description: error.description)
        }
    }
}

struct Detach: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Detach the programs balancer attached to a cgroup and remove their link pins.")

    @Option(help: "The cgroup (v2) directory to detach from.")
    var cgroup: String

    @Option(help: "The bpffs directory for maps and links.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    func run() throws {
        do {
            let names = try Attachment.detach(cgroup: cgroup, pinDir: pinDir)
            print("detached \(names.count) programs from \(cgroup)")
        } catch {
            throw CommandError(description: error.description)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The live generation, node, host mode, table sizes, attach points and counters.",
        discussion: "With --image (the live image), counters are named by frontend instead of by id.")

    @Option(help: "The bpffs directory for maps and links.")
    var pinDir: String = "/sys/fs/bpf/balancer"

    @Option(help: "The image that is live, to name frontends and the node.")
    var image: String?

    @Option(name: .shortAndLong, help: "text or json.")
    var output: OutputFormat = .text

    func run() throws {
        // The image first: a bad one is named whatever state the datapath is in.
        let img = try image.map { (path: String) throws(CommandError) -> MapImage in try loadImage(path) }
        let st: Datapath.Status
        do {
            st = try Datapath(pinDir: pinDir).status(links: Attachment.links(pinDir: pinDir))
        } catch {
            throw CommandError(description: error.description)
        }
        let frontendNames = Dictionary((img?.contents.frontends ?? []).map { ($0.id, $0.key.description) }, uniquingKeysWith: { a, _ in a })
        let nodeName = img?.contents.metadata.node(id: st.config.nodeID)?.name
        switch output {
        case .json:
            struct CounterView: Encodable {
                var frontend: UInt32
                var name: String?
                var translated: UInt64
                var rejected: UInt64
                var unreachable: UInt64
                var fallThrough: UInt64
            }
            struct View: Encodable {
                var pinDir: String
                var generation: UInt32
                var previousGeneration: Bool
                var nodeID: UInt32
                var node: String?
                var hostMode: String
                var tables: [String: Int]
                var image: String?
                var links: [String]
                var skipRedirectFromBackendEntries: Int
                var counters: [CounterView]
            }
            let view = View(pinDir: pinDir, generation: st.config.activeGeneration, previousGeneration: st.previousGeneration,
                            nodeID: st.config.nodeID, node: nodeName, hostMode: st.config.hostMode.rawValue, tables: st.tables,
                            image: st.liveImage, links: st.links, skipRedirectFromBackendEntries: st.skipEntries,
                            counters: st.counters.sorted { $0.key < $1.key }.map {
                                CounterView(frontend: $0.key, name: frontendNames[$0.key], translated: $0.value[0], rejected: $0.value[1],
                                            unreachable: $0.value[2], fallThrough: $0.value[3])
                            })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(PrintableText.escapeJSON(String(decoding: try encoder.encode(view), as: UTF8.self)))
        case .text:
            // The node's name is the image's; link names are the bpffs directory's entries.
            printLine("pin dir \(pinDir): generation \(st.config.activeGeneration) live\(st.previousGeneration ? ", previous kept for rollback" : "")")
            let nodeLabel: String
            if let nodeName {
                nodeLabel = " (\(nodeName))"
            } else {
                nodeLabel = st.config.nodeID == 0 ? " (not a node)" : ""
            }
            printLine("node id \(st.config.nodeID)\(nodeLabel), host mode \(st.config.hostMode.rawValue)")
            printLine("image: \(st.liveImage.map { "sha256 \($0)" } ?? "not recorded (written record by record since the last whole image, or not by balancer; `balancer check-live IMAGE` compares)")")
            printLine("tables: " + st.tables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            printLine("links: \(st.links.isEmpty ? "none" : st.links.joined(separator: " "))")
            if st.skipEntries > 0 { printLine("skipRedirectFromBackend: \(st.skipEntries) backend namespace entr\(st.skipEntries == 1 ? "y" : "ies")") }
            for (id, c) in st.counters.sorted(by: { $0.key < $1.key }) {
                let label = id == 0 ? "(unknown ports)" : frontendNames[id] ?? hex(id)
                printLine("counters \(label): translated \(c[0]) rejected \(c[1]) unreachable \(c[2]) fallthrough \(c[3])")
            }
        }
    }
}
