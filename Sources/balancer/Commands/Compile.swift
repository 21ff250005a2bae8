import ArgumentParser
import Compiler
import HostSystem
import Manifests
import MapImage

#if canImport(Glibc)
import Glibc
#endif

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

        Several clusters in one image (docs/multicluster.md): --cluster NAME=PATH for each \
        (repeatable, also per NAME); their names, services, nodes and backends stay apart, \
        ServiceImports (multicluster.x-k8s.io) gather every exporting cluster's endpoints, and \
        an address two clusters offer is reported. Positional inputs are one unnamed cluster and \
        cannot be mixed with --cluster.
        """)

    @Argument(help: "Manifest files or directories (one unnamed cluster); - reads standard input.")
    var inputs: [String] = []

    @Option(name: .customLong("cluster"), parsing: .singleValue,
            help: ArgumentHelp("One cluster's manifest file or directory (repeatable).", valueName: "NAME=PATH"))
    var clusterTexts: [String] = []

    @Option(name: .shortAndLong, help: "Where to write the image; - writes it to standard output (the summary goes to standard error).")
    var output: String

    @Flag(help: "Print notes (things skipped on purpose) as well as warnings.")
    var verbose = false

    @Flag(help: "Print one JSON line of timings and sizes to standard error.")
    var timings = false

    @OptionGroup var manifests: ManifestOptions

    func validate() throws {
        if inputs.isEmpty && clusterTexts.isEmpty { throw ValidationError("give manifest files or directories, or --cluster NAME=PATH") }
        if !inputs.isEmpty && !clusterTexts.isEmpty {
            throw ValidationError("positional inputs (one unnamed cluster) and --cluster cannot be mixed: name every cluster")
        }
    }

    func run() throws {
        let clock = ContinuousClock()
        let t0 = clock.now
        let snapshot: Snapshot
        let inputDiagnostics: [Diagnostic]
        do {
            if clusterTexts.isEmpty {
                (snapshot, inputDiagnostics) = try InputLoader.load(paths: inputs, limits: manifests.inputLimits)
            } else {
                (snapshot, inputDiagnostics) = try InputLoader.load(clusters: try ClusterInput.parse(clusterTexts), limits: manifests.inputLimits)
            }
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
        let t1 = clock.now
        let result = Compiler.compile(snapshot, inputDiagnostics: inputDiagnostics, options: manifests.compileOptions)
        let t2 = clock.now
        let errors = result.diagnostics.filter { $0.severity == .error }.count
        if errors > 0 && (!manifests.keepGoing || result.exceedsCapacity) {
            printDiagnostics(result)
            printError("\(counted(errors, "error")); no image written"
                       + (result.exceedsCapacity ? " (the image would not fit the datapath)" : " (--keep-going writes it without what failed)"))
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
            printDiagnostics(result)
            for line in error.description.split(separator: "\n") { printError("error: \(line)") }
            printError("no image written")
            throw ExitCode(1)
        }
        let tVerified = clock.now
        if output == "-" {
            // A binary image on a terminal is only noise (as gzip and oras refuse it).
            guard isatty(1) == 0 else {
                printDiagnostics(result)
                printError("error: refusing to write a binary image to a terminal: redirect standard output, or give -o FILE")
                throw ExitCode(1)
            }
            do {
                try StandardOutput.write(bytes)
            } catch {
                printError("error: cannot write the image: \(error)")
                throw ExitCode(1)
            }
        } else {
            do {
                try FileContents.writeAtomically(bytes, to: output)
            } catch {
                printError("error: cannot write image: \(error)")
                throw ExitCode(1)
            }
        }
        let t3 = clock.now
        printDiagnostics(result)
        let c = result.contents
        let digest = (try? ImageDecoder.decodeHeader(bytes).digestHex) ?? "?"
        if !timings {
            let summary = "wrote \(output == "-" ? "the image to standard output" : output): \(c.frontends.count) frontends, \(c.sets.count) backend sets, \(c.backends.count) backends, \(c.nodes.count) nodes; \(bytes.count) bytes, sha256 \(digest)"
            if output == "-" { printError(summary) } else { print(summary) }
        }
        if timings {
            var usage = rusage()
            getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
            let objects = snapshot.counts.filter { !$0.key.hasPrefix("skipped/") }.values.reduce(0, +)
            var line = TimingsLine()
            line.add("parse_seconds", seconds: t1 - t0)
            line.add("model_seconds", seconds: t2 - t1)
            line.add("image_seconds", seconds: tEncoded - t2)
            line.add("verify_seconds", seconds: tVerified - tEncoded)
            line.add("write_seconds", seconds: t3 - tVerified)
            line.add("total_seconds", seconds: t3 - t0)
            line.add("peak_rss_bytes", Int(usage.ru_maxrss) * 1024)
            line.add("image_bytes", bytes.count)
            line.add("objects", objects)
            line.print()
        }
        // A large cluster leaves hundreds of MB of objects to free; the process is done, so skip
        // tearing them down (as compilers do). exit() still flushes standard output.
        Glibc.exit(0)
    }

    /// The warnings and errors (and with --verbose the notes), whether or not an image is written.
    func printDiagnostics(_ result: CompileResult) {
        for d in result.diagnostics where verbose || d.severity != .note { printError(d.description) }
    }
}
