import ArgumentParser
import HostSystem
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
        """)

    @OptionGroup var kube: KubeSourceOptions

    @Option(name: .shortAndLong, help: "Where to write the snapshot.")
    var output: String

    @OptionGroup var limits: APILimitOptions

    func run() async throws {
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
}
