import ArgumentParser
import FoundationEssentials
import HostSystem
import KubeAPI
import MapImage
import Watcher

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Write the cluster's objects the compiler reads to one YAML file that `balancer compile` reads.",
        discussion: """
        Lists Services, EndpointSlices, Nodes, Pods (trimmed to the fields the compiler reads), \
        LocalRedirectPolicies and BalancingPolicies once, from --kubeconfig (or KUBECONFIG, with \
        --context) or --in-cluster, and writes them atomically to -o: the bridge to air-gapped \
        hosts and GitOps repositories (`balancer compile SNAPSHOT -o IMAGE`).

        With --cluster NAME=[KUBECONFIG][@CONTEXT] (repeatable), every cluster is listed, with \
        its ServiceImports and ServiceExports, into -o as a directory: NAME.yaml each, for \
        `balancer compile --cluster NAME=DIR/NAME.yaml ...` (docs/multicluster.md).
        """)

    @OptionGroup var kube: KubeSourceOptions

    @OptionGroup var clusterSources: ClusterSourcesOption

    @Option(name: .shortAndLong, help: "Where to write the snapshot (with --cluster: a directory).")
    var output: String

    @OptionGroup var limits: APILimitOptions

    func validate() throws {
        if !clusterSources.texts.isEmpty && (kube.kubeconfig != nil || kube.context != nil || kube.inCluster) {
            throw ValidationError("--cluster names each cluster's kubeconfig: it cannot be mixed with --kubeconfig, --context or --in-cluster")
        }
    }

    func run() async throws {
        if !clusterSources.texts.isEmpty { return try await runClusters() }
        let config = try kube.clientConfig()
        let client = try limits.client(config)
        let taken: Result<(yaml: [UInt8], counts: [String: Int]), any Error>
        do {
            taken = .success(try await ClusterSnapshot.take(client: client))
        } catch {
            taken = .failure(error)
        }
        await client.shutdown()
        let snapshot = try CommandError.wrapping { try taken.get() }
        try CommandError.wrapping("cannot write \(output): ") { try FileContents.writeAtomically(snapshot.yaml, to: output) }
        print("wrote \(output): " + keyValues(snapshot.counts) + " from \(config.server)")
    }

    /// Every cluster into its own file; nothing is written unless every cluster could be listed.
    func runClusters() async throws {
        var taken: [(name: String, server: String, yaml: [UInt8], counts: [String: Int])] = []
        for (name, source) in try clusterSources.sources(directories: false) {
            guard case .api(let config) = source else { continue }
            let client = try limits.client(config)
            let result: Result<(yaml: [UInt8], counts: [String: Int]), any Error>
            do {
                result = .success(try await ClusterSnapshot.take(client: client, resources: KubeResource.multiCluster))
            } catch {
                result = .failure(error)
            }
            await client.shutdown()
            let s = try CommandError.wrapping("cluster \(name) (\(config.server)): ") { try result.get() }
            taken.append((name, config.server, s.yaml, s.counts))
        }
        try CommandError.wrapping("cannot create \(output): ") { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        var compile: [String] = []
        for t in taken {
            let path = "\(output)/\(t.name).yaml"
            try CommandError.wrapping("cannot write \(path): ") { try FileContents.writeAtomically(t.yaml, to: path) }
            print("wrote \(path): " + keyValues(t.counts) + " from \(t.server)")
            compile.append("--cluster \(t.name)=\(path)")
        }
        print("compile with: balancer compile \(compile.joined(separator: " ")) -o IMAGE")
    }
}
