import Compiler
import Manifests
import MapImage
import Testing

/// `--allowed-external-cidrs` (CompileOptions.allowedExternalCIDRs): externalIPs, LoadBalancer
/// ingress IPs and policy addresses outside the list are errors naming the object and field, and
/// are left out of the image (what --keep-going writes); the rest of each object stays. An
/// incremental change that adds one takes a full compile, where the error decides.
@Suite struct GuardrailTests {
    static let manifests = """
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec:
      type: LoadBalancer
      clusterIP: 10.96.0.10
      clusterIPs: [10.96.0.10]
      externalIPs: [192.0.2.10, 198.51.100.7]
      ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30080}]
    status:
      loadBalancer:
        ingress: [{ip: 192.0.2.20}, {ip: 203.0.113.9}]
    ---
    apiVersion: balancing.elf.io/v1beta1
    kind: LocalRedirectPolicy
    metadata: {name: capture}
    spec:
      frontend:
        addressMatcher:
          ip: 8.8.8.8
          toPorts: [{port: "53", protocol: UDP, name: dns}]
      backend:
        endpointSelector: {matchLabels: {app: dns}}
        toPorts: [{port: "53", protocol: UDP, name: dns}]
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: n1}
    status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: dns-1, namespace: kube-system, labels: {app: dns}}
    spec: {nodeName: n1}
    status: {phase: Running, podIP: 10.244.1.5, podIPs: [{ip: 10.244.1.5}], conditions: [{type: Ready, status: "True"}]}
    """

    func compile(_ allowed: [String]?) throws -> CompileResult {
        let (snapshot, diags) = try InputLoader.load(contents: [("objects.yaml", Array(Self.manifests.utf8))])
        let options = CompileOptions(allowedExternalCIDRs: allowed.map { $0.compactMap { IPPrefix($0) } })
        return Compiler.compile(snapshot, inputDiagnostics: diags, options: options)
    }

    func addresses(_ r: CompileResult) -> Set<String> {
        Set(r.contents.frontends.map { "\($0.key.address)" })
    }

    @Test func addressesOutsideTheListAreRefusedAndLeftOut() throws {
        let open = try compile(nil)
        #expect(addresses(open).isSuperset(of: ["192.0.2.10", "198.51.100.7", "192.0.2.20", "203.0.113.9", "8.8.8.8"]))
        #expect(!open.diagnostics.contains { $0.severity == .error })

        let guarded = try compile(["192.0.2.0/24"])
        let errors = guarded.diagnostics.filter { $0.severity == .error }.map { "\($0.object) \($0.field): \($0.message)" }
        #expect(errors.count == 3, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("Service shop/web spec.externalIPs[1]: 198.51.100.7 is outside --allowed-external-cidrs (192.0.2.0/24)") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("Service shop/web status.loadBalancer.ingress[1].ip: 203.0.113.9 is outside") }, "\(errors)")
        #expect(errors.contains { $0.contains("spec.frontend.addressMatcher.ip: 8.8.8.8 is outside") && $0.contains("CVE-2020-8554") }, "\(errors)")
        // What is inside stays, and the ClusterIP and NodePort are not external addresses.
        let kept = addresses(guarded)
        #expect(kept.isSuperset(of: ["192.0.2.10", "192.0.2.20", "10.96.0.10"]))
        #expect(kept.isDisjoint(with: ["198.51.100.7", "203.0.113.9", "8.8.8.8"]))
        #expect(guarded.contents.frontends.contains { $0.key.port == 30080 })
    }

    @Test func anIncrementalChangeOutsideTheListTakesAFullCompile() throws {
        let (snapshot, diags) = try InputLoader.load(contents: [("objects.yaml", Array(Self.manifests.utf8))])
        var trimmed = snapshot
        trimmed.localRedirectPolicies = []
        trimmed.services = trimmed.services.map { s in
            var s = s
            s.externalIPs = []
            s.ingress = []
            return s
        }
        let options = CompileOptions(allowedExternalCIDRs: [IPPrefix("192.0.2.0/24")!])
        let (_, maybe) = Compiler.compileIncrementally(trimmed, inputDiagnostics: diags, options: options)
        var inc = try #require(maybe)
        var one = Snapshot()
        one.services = [snapshot.services[0]]
        switch inc.apply([ObjectChange(kind: "Service", namespace: "shop", name: "web", objects: one)]) {
        case .needsFullCompile(let why): #expect(why.contains("spec.externalIPs[1]"), "\(why)")
        case .delta: Issue.record("an address outside the list was applied as a delta")
        }
    }
}
