import MapImage
import Testing

/// `diff` and `inspect` spell a rule, a service, a zone and a diagnostic the same way
/// (ImageNames): the lines a reviewer compares, written out here as they must read.
@Suite struct DiffLineTests {
    @Test func everyEntityLineOfAnAddedImage() throws {
        let old = try MapImage(bytes: ImageEncoder.encode(ImageContents()))
        var c = sampleContents()
        c.metadata.diagnostics = [DiagnosticInfo(severity: "warning", object: "Service a/b", field: "spec.x", message: "m"),
                                  DiagnosticInfo(severity: "error", object: "Node n", field: "", message: "bad")]
        let new = try MapImage(bytes: ImageEncoder.encode(c))
        let d = ImageDiff(old: old, new: new)
        func added(_ entity: String) -> [String] { d.entities.first { $0.name == entity }?.added ?? [] }

        let service = added("service kube-system/kube-dns")
        #expect(service.contains("frontend 10.96.0.10:53/UDP rule 0: service kube-system/kube-dns:dns/UDP IPv4 ClusterIP translate flags=topology,affinity affinity=10800s nodePort=30053"))
        #expect(service.contains("frontend *:30053/UDP rule 0: service kube-system/kube-dns:dns/UDP IPv4 NodePort translate flags=- nodePort=30053"))
        #expect(service.contains("vip 10.96.0.10 reject-unknown-port"))
        #expect(added("node node-a").contains("zone z1"))
        #expect(added("node node-b").contains("zone -"))
        #expect(added("diagnostics") == ["error Node n: bad", "warning Service a/b spec.x: m"])
    }

    @Test func inspectShowsTheSameRule() throws {
        let text = TextRenderer.render(try MapImage(bytes: ImageEncoder.encode(sampleContents())))
        #expect(text.contains("  RULE 0 service kube-system/kube-dns:dns/UDP IPv4 ClusterIP translate flags=topology,affinity affinity=10800s nodePort=30053\n"))
        #expect(text.contains("VIP 10.96.0.10 service=kube-system/kube-dns reject-unknown-port\n"))
        #expect(text.contains(" node-a zone=z1 ipv4=172.18.0.2 ipv6=-\n"))
        #expect(text.contains(" node-b zone=- ipv4=172.18.0.3 ipv6=fd00::3\n"))
    }
}
