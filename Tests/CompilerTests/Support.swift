import Compiler
import FoundationEssentials
import Manifests
import MapImage
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Compiles a fixture folder (or any paths) into image bytes, failing the test on errors.
func compileImage(_ paths: [String]) throws -> (bytes: [UInt8], result: CompileResult) {
    let (snapshot, diags) = try InputLoader.load(paths: paths)
    let result = Compiler.compile(snapshot, inputDiagnostics: diags)
    return (ImageEncoder.encode(result.contents), result)
}

/// Compiles a fixture case as `make golden` does: its `! clusters` (sub-directories, in order) as
/// `--cluster NAME=DIR/NAME`, else the folder as one unnamed cluster.
func compileFixture(_ dir: String) throws -> (bytes: [UInt8], result: CompileResult) {
    let directives = try FixtureDirectives.parse(readText(dir + "/expect.txt") ?? "")
    guard !directives.clusters.isEmpty else { return try compileImage([dir]) }
    let (snapshot, diags) = try InputLoader.load(clusters: directives.clusters.map { ClusterInput(name: $0, paths: [dir + "/" + $0]) })
    let result = Compiler.compile(snapshot, inputDiagnostics: diags)
    return (ImageEncoder.encode(result.contents), result)
}

/// Compiles in-memory files.
func compileContents(_ files: [(String, String)]) throws -> (bytes: [UInt8], result: CompileResult) {
    let (snapshot, diags) = try InputLoader.load(contents: files.map { ($0.0, Array($0.1.utf8)) })
    let result = Compiler.compile(snapshot, inputDiagnostics: diags)
    return (ImageEncoder.encode(result.contents), result)
}

/// One probe of a fixture's expect.txt: `<node|-> <tcp|udp> <addr:port> => <result> [backends…]`.
/// In a multi-cluster case `<from>` is `<cluster>/<node>`, `<cluster>/-` (a host of that cluster
/// that is not a node) or `-` (outside every cluster).
struct Probe: CustomStringConvertible, Sendable {
    var line: Int
    var node: String?
    var proto: TransportProtocol
    var destination: SocketAddress
    var result: Resolution.Result
    var backends: [SocketAddress]
    var text: String

    var description: String { "expect.txt:\(line): \(text)" }

    static func parse(_ content: String) throws -> [Probe] {
        var out: [Probe] = []
        for (i, raw) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.isEmpty || words[0] == "!" { continue }
            guard words.count >= 5, words[3] == "=>", let dest = SocketAddress(words[2]),
                  let result = Resolution.Result(rawValue: words[4]) else {
                throw ProbeError(message: "expect.txt:\(i + 1): cannot parse \"\(raw)\"")
            }
            let proto: TransportProtocol
            switch words[1] {
            case "tcp": proto = .tcp
            case "udp": proto = .udp
            default: throw ProbeError(message: "expect.txt:\(i + 1): protocol must be tcp or udp")
            }
            var backends: [SocketAddress] = []
            for w in words.dropFirst(5) {
                guard let b = SocketAddress(w) else { throw ProbeError(message: "expect.txt:\(i + 1): bad backend \(w)") }
                backends.append(b)
            }
            out.append(Probe(line: i + 1, node: words[0] == "-" ? nil : words[0], proto: proto, destination: dest,
                             result: result, backends: backends.sorted(), text: String(raw)))
        }
        return out
    }
}

/// The `!` lines of an expect.txt: how the case is compiled and what it must report.
struct FixtureDirectives: Sendable {
    var keepGoing = false
    /// (severity, text the message contains)
    var diagnostics: [(Diagnostic.Severity, String)] = []
    /// `! clusters NAME...`: a multi-cluster case, one sub-directory per cluster, in this order.
    var clusters: [String] = []
    /// `! cluster-mode NAME=MODE`: how every probe's host reaches that cluster's backends.
    var clusterModes: [String: HostMode] = [:]

    static func parse(_ content: String) throws -> FixtureDirectives {
        var out = FixtureDirectives()
        for (i, raw) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw.drop { $0 == " " || $0 == "\t" })
            guard line.hasPrefix("! ") else { continue }
            let rest = line.dropFirst(2)
            let word = rest.prefix { $0 != " " }
            let text = String(rest.dropFirst(word.count).drop { $0 == " " })
            switch word {
            case "keep-going": out.keepGoing = true
            case "error": out.diagnostics.append((.error, text))
            case "warning": out.diagnostics.append((.warning, text))
            case "note": out.diagnostics.append((.note, text))
            case "clusters": out.clusters = text.split(separator: " ").map(String.init)
            case "cluster-mode":
                guard let eq = text.firstIndex(of: "="), let mode = HostMode(rawValue: String(text[text.index(after: eq)...])) else {
                    throw ProbeError(message: "expect.txt:\(i + 1): expected ! cluster-mode NAME=pod|nodeport")
                }
                out.clusterModes[String(text[..<eq])] = mode
            default: throw ProbeError(message: "expect.txt:\(i + 1): unknown directive \"\(line)\"")
            }
        }
        return out
    }
}

struct ProbeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
