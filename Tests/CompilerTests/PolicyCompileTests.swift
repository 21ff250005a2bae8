@testable import Compiler
@testable import Manifests
import MapImage
import Testing

/// Policies compiled and resolved: the rule chain, errors, conflicts, updates (docs/policies.md).
@Suite struct PolicyCompileTests {
    static let cluster = """
    apiVersion: v1
    kind: Service
    metadata: {name: dns, namespace: kube-system, creationTimestamp: "2024-01-01T00:00:00Z"}
    spec:
      clusterIP: 10.96.0.10
      clusterIPs: [10.96.0.10]
      ports:
      - {name: dns, port: 53, protocol: UDP, targetPort: 53}
      - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
    addressType: IPv4
    endpoints:
    - addresses: [10.244.2.5]
      nodeName: node-b
    ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: node-a, labels: {edge: "true"}, annotations: {balancing.elf.io/nodeProxyIpv4: 192.0.2.1}}
    status: {addresses: [{type: InternalIP, address: 172.18.0.3}]}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: node-b}
    status: {addresses: [{type: InternalIP, address: 172.18.0.4}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: cache-a, namespace: kube-system, labels: {app: cache}}
    spec: {nodeName: node-a}
    status:
      phase: Running
      conditions: [{type: Ready, status: "True"}]
      podIPs: [{ip: 10.244.1.7}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: cache-b, namespace: kube-system, labels: {app: cache}}
    spec: {nodeName: node-b}
    status:
      phase: Running
      conditions: [{type: Ready, status: "False"}]
      podIPs: [{ip: 10.244.2.7}]
    """

    static func lrp(_ name: String, created: String = "2025-01-01T00:00:00Z", frontend: String, extra: String = "",
                    ports: String = "[{port: \"5353\", protocol: UDP, name: dns}, {port: \"5353\", protocol: TCP, name: dns-tcp}]") -> String {
        """
        apiVersion: balancing.elf.io/v1beta1
        kind: LocalRedirectPolicy
        metadata: {name: \(name), creationTimestamp: "\(created)"}
        spec:
          frontend: \(frontend)
          backend:
            endpointSelector: {matchLabels: {app: cache}}
            toPorts: \(ports)
        \(extra)
        """
    }

    static let serviceFrontend = "{serviceMatcher: {serviceName: dns, namespace: kube-system}}"

    func image(_ docs: [String], options: CompileOptions = CompileOptions()) throws -> (Resolver, CompileResult) {
        let files = docs.enumerated().map { ("f\($0.offset).yaml", $0.element) }
        let (snapshot, diags) = try InputLoader.load(contents: files.map { ($0.0, Array($0.1.utf8)) })
        let result = Compiler.compile(snapshot, inputDiagnostics: diags, options: options)
        let img = try MapImage(bytes: ImageEncoder.encode(result.contents))
        return (Resolver(img.contents), result)
    }

    func answer(_ r: Resolver, _ dest: String, udp: Bool = true, node: String?, mode: HostMode = .pod) throws -> String {
        let id = try node.map { try r.nodeID(named: $0) } ?? 0
        let res = r.resolve(SocketAddress(dest)!, proto: udp ? .udp : .tcp, nodeID: id, hostMode: mode)
        return ([res.result.rawValue] + res.backends.map(\.description)).joined(separator: " ")
    }

    @Test func localRedirectFallsThroughToTheService() throws {
        let (r, result) = try image([Self.cluster, Self.lrp("cache", frontend: Self.serviceFrontend)])
        #expect(!result.diagnostics.contains { $0.severity == .error })
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        #expect(try answer(r, "10.96.0.10:53", udp: false, node: "node-a") == "translate 10.244.1.7:5353")
        // node-b's pod is not ready: the Service serves there, and on hosts that are not nodes.
        #expect(try answer(r, "10.96.0.10:53", node: "node-b") == "translate 10.244.2.5:53")
        #expect(try answer(r, "10.96.0.10:53", node: nil) == "translate 10.244.2.5:53")
        #expect(try answer(r, "10.96.0.10:54", node: "node-a") == "reject")
    }

    @Test func addressFrontendPassesThroughWithoutALocalPod() throws {
        let f = "{addressMatcher: {ip: 169.254.20.10, toPorts: [{port: \"53\", protocol: UDP}]}}"
        let (r, _) = try image([Self.cluster, Self.lrp("nl", frontend: f, ports: "[{port: \"5353\", protocol: UDP}]")])
        #expect(try answer(r, "169.254.20.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        #expect(try answer(r, "169.254.20.10:53", node: "node-b") == "passthrough")
        #expect(try answer(r, "169.254.20.10:54", node: "node-a") == "passthrough")
    }

    @Test func aChangedSpecCompilesToTheNewBehaviour() throws {
        let f1 = "{addressMatcher: {ip: 169.254.20.10, toPorts: [{port: \"53\", protocol: UDP}]}}"
        let f2 = "{addressMatcher: {ip: 169.254.20.11, toPorts: [{port: \"53\", protocol: UDP}]}}"
        let ports = "[{port: \"5353\", protocol: UDP}]"
        let (before, _) = try image([Self.cluster, Self.lrp("nl", frontend: f1, ports: ports)])
        let (after, _) = try image([Self.cluster, Self.lrp("nl", frontend: f2, ports: "[{port: \"5454\", protocol: UDP}]")])
        #expect(try answer(before, "169.254.20.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        #expect(try answer(after, "169.254.20.10:53", node: "node-a") == "passthrough")
        #expect(try answer(after, "169.254.20.11:53", node: "node-a") == "translate 10.244.1.7:5454")
    }

    @Test func twoPoliciesOfOneKindOnAFrontendAreAnErrorAndTheOlderWins() throws {
        let f = "{addressMatcher: {ip: 169.254.20.10, toPorts: [{port: \"53\", protocol: UDP}]}}"
        let (r, result) = try image([Self.cluster,
                                     Self.lrp("newer", created: "2025-06-01T00:00:00Z", frontend: f, ports: "[{port: \"6000\", protocol: UDP}]"),
                                     Self.lrp("older", created: "2025-01-01T00:00:00Z", frontend: f, ports: "[{port: \"5353\", protocol: UDP}]")])
        let errors = result.diagnostics.filter { $0.severity == .error }
        #expect(errors.count == 1)
        let e = try #require(errors.first)
        #expect(e.object == "LocalRedirectPolicy newer")
        #expect(e.message.contains("also claimed by LocalRedirectPolicy older"))
        #expect(e.file == "f1.yaml" && e.line == 1 && e.column == 1)
        #expect(try answer(r, "169.254.20.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        // The error is kept in the image's metadata (what --keep-going writes).
        #expect(result.contents.metadata.diagnostics.contains { $0.severity == "error" && $0.message.contains("older") })
    }

    @Test(arguments: [
        ("{serviceMatcher: {serviceName: nope, namespace: kube-system}}", "[{port: \"53\", protocol: UDP}]", "Service kube-system/nope not found"),
        ("{serviceMatcher: {serviceName: dns, namespace: kube-system, toPorts: [{port: \"54\", protocol: UDP}]}}", "[{port: \"53\", protocol: UDP}]",
         "port 54/UDP is not a port of Service kube-system/dns"),
        (serviceFrontend, "[{port: \"5353\", protocol: UDP, name: other}, {port: \"5353\", protocol: TCP, name: dns-tcp}]", "no backend port pairs with"),
        ("{addressMatcher: {ip: 169.254.20.10, toPorts: [{port: \"53\", protocol: UDP}]}}", "[{port: \"5353\", protocol: TCP}]", "protocols differ"),
    ])
    func policyErrorsLeaveThePolicyOut(frontend: String, ports: String, message: String) throws {
        let (r, result) = try image([Self.cluster, Self.lrp("bad", frontend: frontend, ports: ports)])
        let errors = result.diagnostics.filter { $0.severity == .error }
        #expect(errors.count == 1 && errors.first?.message.contains(message) == true, "\(errors)")
        #expect(errors.first?.description.hasPrefix("f1.yaml:1:1: error: LocalRedirectPolicy bad: ") == true)
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.2.5:53")
        #expect(try answer(r, "169.254.20.10:53", node: "node-a") == "passthrough")
    }

    @Test func balancingModesAndPriority() throws {
        let bp = { (name: String, backend: String) in
            """
            apiVersion: balancing.elf.io/v1beta1
            kind: BalancingPolicy
            metadata: {name: \(name)}
            spec:
              frontend: {serviceMatcher: {serviceName: dns, namespace: kube-system, toPorts: [{port: "53", protocol: UDP}]}}
              backend: \(backend)
            """
        }
        let cluster = Self.cluster + """

        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: proxy-b, namespace: default, labels: {app: proxy}}
        spec: {nodeName: node-b}
        status: {phase: Running, conditions: [{type: Ready, status: "True"}], podIPs: [{ip: 10.244.2.9}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: proxy-a, namespace: default, labels: {app: proxy}}
        spec: {nodeName: node-a}
        status: {phase: Running, conditions: [{type: Ready, status: "True"}], podIPs: [{ip: 10.244.1.9}]}
        """
        let modes: [(String, String)] = [
            ("{serviceEndpoint: {endpointSelector: {matchLabels: {app: proxy}}, toPorts: [{port: \"8053\", protocol: UDP}]}}",
             "translate 10.244.1.9:8053 10.244.2.9:8053"),
            ("{serviceEndpoint: {endpointSelector: {matchLabels: {app: proxy}}, redirectMode: hostPort, toPorts: [{port: \"8053\", protocol: UDP}]}}",
             "translate 172.18.0.3:8053 172.18.0.4:8053"),
            ("{serviceEndpoint: {endpointSelector: {matchLabels: {app: proxy}}, redirectMode: nodeProxy, toPorts: [{port: \"8053\", protocol: UDP}]}}",
             "translate 172.18.0.4:8053 192.0.2.1:8053"),
            ("{addressEndpoint: {addresses: [192.0.2.10, \"2001:db8::1\"], toPorts: [{port: \"8053\", protocol: UDP}]}}",
             "translate 192.0.2.10:8053"),
        ]
        for (backend, want) in modes {
            let (r, result) = try image([cluster, bp("bp", backend)])
            #expect(!result.diagnostics.contains { $0.severity == .error })
            #expect(try answer(r, "10.96.0.10:53", node: "node-b") == want, "\(backend)")
            // Host mode nodeport: node and external addresses are used as they are; pods are not
            // reachable, so the Service (without a NodePort) rejects.
            let nodeport = try answer(r, "10.96.0.10:53", node: nil, mode: .nodeport)
            #expect(nodeport == (backend.contains("hostPort") || backend.contains("nodeProxy") || backend.contains("addressEndpoint") ? want : "reject"),
                    "\(backend)")
            // TCP 53 is not listed: the Service serves it.
            #expect(try answer(r, "10.96.0.10:53", udp: false, node: "node-b") == "translate 10.244.2.5:53")
        }
        // LocalRedirectPolicy > BalancingPolicy > Service.
        let (r, _) = try image([cluster, bp("bp", modes[3].0), Self.lrp("cache", frontend: Self.serviceFrontend)])
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        #expect(try answer(r, "10.96.0.10:53", node: "node-b") == "translate 192.0.2.10:8053")
        #expect(try answer(r, "10.96.0.10:53", udp: false, node: "node-b") == "translate 10.244.2.5:53")
    }

    @Test func nodeSelectionRateLimitAndSkipAreCompiled() throws {
        let extra = """
          redirectRateLimit: 50
          skipRedirectFromBackend: true
          config: {nodeLabelSelector: {matchLabels: {edge: "true"}}, enableOutCluster: false}
        """
        let (r, result) = try image([Self.cluster, Self.lrp("cache", frontend: Self.serviceFrontend, extra: extra)])
        #expect(!result.diagnostics.contains { $0.severity == .error })
        let rule = try #require(result.contents.frontends.first { $0.key.port == 53 && $0.key.proto == .udp }?.rules.first)
        #expect(rule.origin == .localRedirect && rule.rateLimit == 50)
        #expect(rule.flags.isSuperset(of: [.localOnly, .fallThrough, .skipFromBackend, .nodeGated]))
        #expect(!rule.flags.contains(.outCluster))
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.1.7:5353")
        // The default rate limit applies to LocalRedirectPolicies without their own.
        let (_, defaulted) = try image([Self.cluster, Self.lrp("cache", frontend: Self.serviceFrontend)],
                                       options: CompileOptions(defaultRedirectRateLimit: 7))
        #expect(defaulted.contents.frontends.first { $0.key.port == 53 }?.rules.first?.rateLimit == 7)
    }

    @Test func nodeSelectorLimitsWhereThePolicyApplies() throws {
        let extra = "  config: {nodeLabelSelector: {matchLabels: {edge: \"false\"}}}"
        let (r, _) = try image([Self.cluster, Self.lrp("cache", frontend: Self.serviceFrontend, extra: extra)])
        // node-a has the pod but not the label: the Service serves.
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.2.5:53")
    }

    @Test func disabledPoliciesAndExplicitIDs() throws {
        let disabled = Self.lrp("off", frontend: Self.serviceFrontend, extra: "  enabled: false")
        let (r, result) = try image([Self.cluster, disabled])
        #expect(try answer(r, "10.96.0.10:53", node: "node-a") == "translate 10.244.2.5:53")
        #expect(result.diagnostics.contains { $0.severity == .note && $0.message.contains("disabled") })
        let withID = Self.lrp("cache", frontend: Self.serviceFrontend).replacingOccurrences(
            of: "metadata: {name: cache,", with: "metadata: {name: cache, annotations: {balancing.elf.io/serviceId: \"10091\"},")
        let (_, ided) = try image([Self.cluster, withID])
        #expect(ided.contents.frontends.first { $0.key.port == 53 }?.rules.first?.ownerID == 10091)
    }
}
