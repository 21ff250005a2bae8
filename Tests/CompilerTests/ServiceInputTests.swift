import Compiler
import Manifests
import MapImage
import Testing

/// What a Service read from a source tree (not the API) may lack.
@Suite struct ServiceInputTests {
    /// No spec.clusterIP: a manifest before the API server allocated one. A warning that says so;
    /// `clusterIP: None` stays a headless Service, noted as skipped.
    @Test func aServiceWithoutAClusterIPIsWarnedAboutNotCalledHeadless() throws {
        let (_, result) = try compileContents([
            ("a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: fresh, namespace: default}\nspec: {ports: [{port: 80}]}\n"),
            ("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: default}\nspec: {clusterIP: None, ports: [{port: 53}]}\n"),
        ])
        let fresh = result.diagnostics.filter { $0.object == "Service default/fresh" }
        #expect(fresh.count == 1)
        #expect(fresh.first?.severity == .warning)
        #expect(fresh.first?.description.contains("no spec.clusterIP") == true)
        #expect(fresh.first?.description.contains("headless (no cluster IP)") == false)
        let dns = result.diagnostics.filter { $0.object == "Service default/dns" }
        #expect(dns.map(\.severity) == [.note])
        #expect(dns.first?.description.contains("headless") == true)
    }
}
