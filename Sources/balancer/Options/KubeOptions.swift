import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import KubeAPI
import Manifests
import Watcher

/// The API server to read (`watch`, `snapshot`): a kubeconfig's, or the cluster's this pod runs in.
struct KubeSourceOptions: ParsableArguments {
    @Option(help: "The kubeconfig naming the API server (default: KUBECONFIG, else ~/.kube/config; its current-context, or --context).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use instead of its current-context.")
    var context: String?

    @Flag(help: "Use the API server of the cluster this pod runs in, with the pod's service account.")
    var inCluster = false

    /// `say` hears the kubeconfig's notes (fields balancer does not use): `watch` logs them.
    func clientConfig(say: (String) -> Void = sayWarning) throws(CommandError) -> KubeClientConfig {
        let env = ProcessInfo.processInfo.environment
        let config = try CommandError.wrapping {
            inCluster ? try Kubeconfig.inCluster(environment: env)
                : try Kubeconfig.load(paths: kubeconfig.map { [$0] } ?? Kubeconfig.paths(environment: env), context: context)
        }
        config.notes.forEach(say)
        return config
    }
}

/// The caps on what the API server sends (`watch` and `snapshot`); KubeLimits explains the defaults.
struct APILimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Refuse an object (a list item or watch event) larger than this. The default, 4 MiB, is above the "
                               + "apiserver's 3 MiB request limit and etcd's 1.5 MiB: raise it only for a cluster whose etcd allows more.",
                               valueName: "BYTES"))
    var maxObjectBytes = ByteSize(bytes: KubeLimits.defaultMaxObjectBytes)

    @Option(help: ArgumentHelp("Refuse a list response larger than this. Pages ask for 500 objects (as client-go); "
                               + "a page over this is asked again with half as many, so objects within the object cap always fit.",
                               valueName: "BYTES"))
    var maxResponseBytes = ByteSize(bytes: KubeLimits.defaultMaxResponseBytes)

    func validate() throws {
        guard maxObjectBytes.bytes >= 1024 else { throw ValidationError("--max-object-bytes must be at least 1024") }
        guard maxResponseBytes.bytes >= maxObjectBytes.bytes else { throw ValidationError("--max-response-bytes must be at least --max-object-bytes") }
    }

    func limits() throws -> KubeLimits {
        try validate()
        return KubeLimits(maxObjectBytes: maxObjectBytes.bytes, maxResponseBytes: maxResponseBytes.bytes)
    }

    /// A client for `config` within these caps; `observe` sees every request (the metrics).
    func client(_ config: KubeClientConfig, observe: @escaping @Sendable (_ kind: String, _ verb: String) -> Void = { _, _ in }) throws -> KubeClient {
        let caps = try limits()
        return try CommandError.wrapping { try KubeClient(config: config, limits: caps, observe: observe) }
    }
}

/// `--cluster NAME=SOURCE` of `watch` and `snapshot` (docs/multicluster.md): SOURCE is a
/// directory of manifests (watch only), or a kubeconfig with an optional `@CONTEXT`; an empty
/// kubeconfig (`NAME=@CONTEXT`) is the default one (KUBECONFIG, else ~/.kube/config).
struct ClusterSourcesOption: ParsableArguments {
    @Option(name: .customLong("cluster"), parsing: .singleValue,
            help: ArgumentHelp("One cluster to follow (repeatable): a directory of manifests, or a kubeconfig and context.",
                               valueName: "NAME=DIR|NAME=[KUBECONFIG][@CONTEXT]"))
    var texts: [String] = []

    enum Source {
        case directory(String)
        case api(KubeClientConfig)
    }

    /// Each cluster's source, in order; an error names the argument.
    func sources(directories: Bool, say: (String) -> Void = sayWarning) throws(CommandError) -> [(name: String, source: Source)] {
        let inputs: [ClusterInput]
        do { inputs = try ClusterInput.parse(texts) } catch { throw CommandError(description: error.diagnostics.map(\.description).joined(separator: "\n")) }
        var out: [(name: String, source: Source)] = []
        let env = ProcessInfo.processInfo.environment
        for input in inputs {
            guard input.paths.count == 1, let text = input.paths.first else {
                throw CommandError(description: "--cluster \(input.name): given \(input.paths.count) times; one source per cluster")
            }
            var st = stat()
            if stat(text, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                guard directories else { throw CommandError(description: "--cluster \(input.name)=\(text): a directory; give a kubeconfig[@context]") }
                out.append((input.name, .directory(text)))
                continue
            }
            var path = text, context: String?
            if let at = text.lastIndex(of: "@") {
                path = String(text[..<at])
                context = String(text[text.index(after: at)...])
                if context?.isEmpty == true { context = nil }
            }
            let config = try CommandError.wrapping("--cluster \(input.name): ") {
                try Kubeconfig.load(paths: path.isEmpty ? Kubeconfig.paths(environment: env) : [path], context: context)
            }
            for note in config.notes { say("--cluster \(input.name): \(note)") }
            out.append((input.name, .api(config)))
        }
        return out
    }
}

/// What a kubeconfig holds that balancer does not use, said once at start: a field ignored in
/// silence could be one the cluster's access depends on.
func sayWarning(_ note: String) {
    printError("warning: \(note)")
}

/// A duration as `30s`, `5m`, `1h` or `1h30m` (a plain number is seconds).
func parseDuration(_ text: String) -> Duration? {
    if let n = Int(text), n >= 0 { return .seconds(n) }
    var total = 0, number = ""
    for c in text {
        if c.isNumber { number.append(c); continue }
        guard let n = Int(number) else { return nil }
        switch c {
        case "s": total += n
        case "m": total += n * 60
        case "h": total += n * 3600
        default: return nil
        }
        number = ""
    }
    return number.isEmpty && !text.isEmpty ? .seconds(total) : nil
}
