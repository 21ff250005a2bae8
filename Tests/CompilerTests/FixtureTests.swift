import Compiler
import FoundationEssentials
import HostSystem
import Manifests
import MapImage
import TestSupport
import Testing

/// Every fixture is compiled and checked twice: against its golden files (bytes and text, so an
/// unreviewed change of output fails), and against its expect.txt, answers derived by hand from
/// Kubernetes semantics (so the semantics themselves are tested, not just their stability).
@Suite struct FixtureTests {
    @Test(arguments: Repo.fixtureCases)
    func goldenImage(_ name: String) throws {
        let (bytes, _) = try compileFixture(Repo.fixtures + "/" + name)
        let image = try MapImage(bytes: bytes)
        let text = TextRenderer.render(image)
        let goldenText = readText(Repo.golden + "/\(name).txt")
        let goldenBytes = try? FileContents.read(Repo.golden + "/\(name).image")
        #expect(goldenText != nil && goldenBytes != nil, "golden/\(name).{image,txt} missing: run `make golden`")
        guard let goldenText, let goldenBytes else { return }
        #expect(text == goldenText, "golden/\(name).txt differs (run `make golden` and review):\n\(lineDiff(expected: goldenText, actual: text))")
        let sameBytes = bytes == goldenBytes
        #expect(sameBytes, "golden/\(name).image differs from a fresh compile (\(bytes.count) vs \(goldenBytes.count) bytes)")
    }

    @Test(arguments: Repo.fixtureCases.filter { readText(Repo.fixtures + "/\($0)/expect.txt") != nil })
    func expectations(_ name: String) throws {
        let dir = Repo.fixtures + "/" + name
        let text = readText(dir + "/expect.txt") ?? ""
        let probes = try Probe.parse(text)
        let directives = try FixtureDirectives.parse(text)
        let (bytes, result) = try compileFixture(dir)
        // Every expected diagnostic is reported, and every error is expected.
        for (severity, text) in directives.diagnostics {
            #expect(result.diagnostics.contains { $0.severity == severity && $0.description.contains(text) },
                    "\(name): no \(severity) containing \"\(text)\"; got:\n\(result.diagnostics.map(\.description).joined(separator: "\n"))")
        }
        let errors = result.diagnostics.filter { $0.severity == .error }
        for e in errors {
            #expect(directives.diagnostics.contains { $0.0 == .error && e.description.contains($0.1) }, "\(name): unexpected error \(e)")
        }
        // Without --keep-going a compile with errors writes nothing: no probes to check.
        if !errors.isEmpty && !directives.keepGoing {
            #expect(probes.isEmpty, "\(name): the compile fails without `! keep-going`, so its probes cannot be checked")
            return
        }
        #expect(!probes.isEmpty)
        let image = try MapImage(bytes: bytes)
        let resolver = Resolver(image.contents)
        for p in probes {
            // `cluster/-`: a host of the cluster that is not a node; `cluster/node`: the node.
            var host = HostSettings(node: p.node, clusterModes: directives.clusterModes)
            if let n = p.node, n.hasSuffix("/-") {
                host.node = nil
                host.cluster = String(n.dropLast(2))
            }
            let placement = try host.place(nodes: image.contents.metadata.nodes, clusters: image.contents.metadata.clusters ?? [])
            let r = resolver.resolve(p.destination, proto: p.proto, nodeID: placement.nodeID, cluster: placement.clusterID,
                                     clusterModes: placement.clusterModes)
            #expect(r.result == p.result, "\(name) \(p): got \(r.result) (\(r.reason))")
            if p.result == .translate {
                #expect(r.backends == p.backends, "\(name) \(p): got \(r.backends.map(\.description).joined(separator: " "))")
            }
        }
    }
}
