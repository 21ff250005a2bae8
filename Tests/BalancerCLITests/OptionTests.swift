import Foundation
import Testing

/// The options the commands share: one declaration each (Sources/balancer/Options), parsed by
/// ArgumentParser, so every command that takes one accepts and refuses the same values.
extension CLITests {
    /// A wrong --host-mode or --log-level is a usage error (64) that lists the accepted values,
    /// refused before anything is read or touched.
    @Test func enumOptionsRefuseUnknownValues() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/a"]).status == 0)
        let message = "The value 'edge' is invalid for '--host-mode <host-mode>'. Please provide one of 'pod' and 'nodeport'."
        let resolve = try run(["resolve", dir + "/a", "10.96.0.10:53", "--host-mode", "edge"])
        #expect(resolve.status == 64)
        #expect(resolve.stderr.contains(message), "\(resolve.stderr)")
        let load = try run(["load", dir + "/nope", "--pin-dir", dir + "/pins", "--host-mode", "edge"])
        #expect(load.status == 64)
        #expect(load.stderr.contains(message) && !load.stderr.contains("cannot read image"), "\(load.stderr)")
        // A missing kubeconfig: were the level accepted, the command would end there (status 1).
        let watch = try run(["watch", "--kubeconfig", dir + "/no-kubeconfig", "--output-dir", dir + "/out", "--log-level", "loud"])
        #expect(watch.status == 64)
        #expect(watch.stderr.contains("The value 'loud' is invalid for '--log-level <log-level>'"), "\(watch.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a"])

        let nodeport = try run(["resolve", dir + "/a", "10.96.100.10:80", "--host-mode", "nodeport"])
        #expect(nodeport.status == 0)
        #expect(nodeport.stdout.hasPrefix("10.96.100.10:80/TCP from a host that is not a node (host mode nodeport): translate"), "\(nodeport.stdout)")
    }

    /// `--node-name` (what the DaemonSet passes to `watch`) is the same option as `--node`.
    @Test func nodeNameIsNode() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(["compile", "fixtures/example", "-o", dir + "/a"]).status == 0)
        let byNode = try run(["resolve", dir + "/a", "10.96.100.30:24224", "--node", "demo-worker"])
        let byName = try run(["resolve", dir + "/a", "10.96.100.30:24224", "--node-name", "demo-worker"])
        #expect(byNode.status == 0 && byName.status == 0)
        #expect(byNode.stdout.hasPrefix("10.96.100.30:24224/TCP from node demo-worker: translate"), "\(byNode.stdout)")
        #expect(byName.stdout == byNode.stdout)
    }
}
