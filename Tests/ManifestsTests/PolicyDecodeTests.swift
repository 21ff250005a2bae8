@testable import Manifests
import MapImage
import TestSupport
import Testing

/// The policies are decoded and validated in this release (compiled in the policies issue).
@Suite struct PolicyDecodeTests {
    /// The seed document's two LocalRedirectPolicy examples, unchanged.
    static let seedExamples = """
    apiVersion: balancing.elf.io/v1beta1
    kind: LocalRedirectPolicy
    metadata:
      name: test-service
    spec:
      enabled: true
      frontend:
        serviceMatcher:
          serviceName: http-server-v4
          namespace: default
          toPorts:
            - port: "8080"
              protocol: TCP
              name: p1
            - port: "80"
              protocol: TCP
              name: p2
      backend:
        endpointSelector:
          matchLabels:
            app: http-redirect
        toPorts:
          - port: "80"
            protocol: TCP
            name: p1
          - port: "80"
            protocol: TCP
            name: p2
    ---
    apiVersion: balancing.elf.io/v1beta1
    kind: LocalRedirectPolicy
    metadata:
      name: test-addr
      annotations:
         balancing.elf.io/serviceId: "10091"
    spec:
      enabled: true
      frontend:
        addressMatcher:
          ip: "169.254.0.90"
          toPorts:
            - port: "8080"
              protocol: TCP
              name: p1
            - port: "80"
              protocol: TCP
              name: p2
      backend:
        endpointSelector:
          matchLabels:
            app: http-redirect
        toPorts:
          - port: "80"
            protocol: TCP
            name: p1
          - port: "80"
            protocol: TCP
            name: p2
    ---
    apiVersion: balancing.elf.io/v1beta1
    kind: BalancingPolicy
    metadata:
      name: nodeproxy
    spec:
      frontend:
        serviceMatcher:
          serviceName: http-server-v4
          namespace: default
      backend:
        serviceEndpoint:
          endpointSelector:
            matchExpressions:
            - {key: app, operator: In, values: [proxy]}
          redirectMode: nodeProxy
          toPorts:
          - {port: "8080", protocol: TCP, name: p1}
      config:
        nodeLabelSelector:
          matchLabels: {zone: edge}
        enableOutCluster: false
    ---
    apiVersion: balancing.elf.io/v1beta1
    kind: BalancingPolicy
    metadata:
      name: addresses
    spec:
      frontend:
        addressMatcher:
          ip: "fd00::90"
          toPorts: [{port: 53, protocol: UDP}]
      backend:
        addressEndpoint:
          addresses: ["192.0.2.10", "192.0.2.11"]
          toPorts: [{port: "5353", protocol: UDP}]
    """

    @Test func seedExamplesDecode() throws {
        let (snap, diags) = try InputLoader.load(contents: [("p.yaml", Array(Self.seedExamples.utf8))])
        #expect(diags.isEmpty)
        #expect(snap.localRedirectPolicies.count == 2)
        #expect(snap.balancingPolicies.count == 2)
        let lrp = snap.localRedirectPolicies.first { $0.meta.name == "test-service" }
        #expect(lrp?.frontend == .service(namespace: "default", name: "http-server-v4",
                                          toPorts: [PolicyPort(port: 8080, proto: .tcp, name: "p1"), PolicyPort(port: 80, proto: .tcp, name: "p2")]))
        #expect(lrp?.selector.matches(["app": "http-redirect"]) == true)
        #expect(lrp?.enabled == true)
        let addr = snap.localRedirectPolicies.first { $0.meta.name == "test-addr" }
        #expect(addr?.meta.annotations["balancing.elf.io/serviceId"] == "10091")
        let np = snap.balancingPolicies.first { $0.meta.name == "nodeproxy" }
        #expect(np?.config.enableOutCluster == false)
        #expect(np?.config.nodeSelector?.matches(["zone": "edge"]) == true)
        if case .serviceEndpoint(let sel, _, let mode)? = np?.backend {
            #expect(mode == .nodeProxy)
            #expect(sel.matches(["app": "proxy"]) && !sel.matches(["app": "web"]))
        } else {
            Issue.record("expected a serviceEndpoint backend")
        }
        let ab = snap.balancingPolicies.first { $0.meta.name == "addresses" }
        #expect(ab?.frontend == .address(ip: IPAddress("fd00::90")!, toPorts: [PolicyPort(port: 53, proto: .udp, name: "")]))
    }

    @Test func invalidPoliciesAreReported() {
        let yaml = """
        apiVersion: balancing.elf.io/v1beta1
        kind: LocalRedirectPolicy
        metadata: {name: both}
        spec:
          frontend:
            addressMatcher: {ip: 169.254.0.9, toPorts: [{port: "53", protocol: UDP}]}
            serviceMatcher: {serviceName: dns}
          backend:
            endpointSelector: {matchLabels: {app: x}}
            toPorts: [{port: "70000", protocol: TCP}, {port: "53", protocol: SCTP, name: b}]
        """
        let errs = compileErrors([("p.yaml", yaml)])
        #expect(errs.contains { $0.field == "spec.frontend" && $0.message.contains("mutually exclusive") })
        #expect(errs.contains { $0.field == "spec.backend.toPorts[0].port" && $0.message.contains("70000") })
        #expect(errs.contains { $0.field == "spec.backend.toPorts[1].protocol" })
        #expect(errs.allSatisfy { $0.object == "LocalRedirectPolicy both" })
    }
}
