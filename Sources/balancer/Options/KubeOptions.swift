import ArgumentParser
import FoundationEssentials
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

    func clientConfig() throws(CommandError) -> KubeClientConfig {
        let env = ProcessInfo.processInfo.environment
        return try CommandError.wrapping {
            inCluster ? try Kubeconfig.inCluster(environment: env)
                : try Kubeconfig.load(paths: kubeconfig.map { [$0] } ?? Kubeconfig.paths(environment: env), context: context)
        }
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
