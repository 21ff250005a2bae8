import Compiler
import FoundationEssentials
import Manifests
import MapImage
import TestSupport
import Testing

/// Service CIDRs and loadBalancerSourceRanges (issue 13 part 4): decoded as the API server
/// validates them, compiled into their tables, followed incrementally, and answered by the
/// Resolver as the datapath answers them (the kernel side: hosttest and e2e/run.sh).
@Suite struct KubeProxyParityTests {
    static let lb = """
    apiVersion: v1
    kind: Service
    metadata: {name: lb, namespace: shop}
    spec:
      type: LoadBalancer
      clusterIP: 10.96.7.7
      clusterIPs: [10.96.7.7]
      loadBalancerSourceRanges: [" 203.0.113.9/24 ", 2001:db8::/64]
      ports: [{name: http, port: 443, protocol: TCP, targetPort: 8443, nodePort: 30443}]
    status:
      loadBalancer:
        ingress: [{ip: 192.0.2.80}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: lb-1, namespace: shop, labels: {kubernetes.io/service-name: lb}}
    addressType: IPv4
    endpoints: [{addresses: [10.244.1.5], conditions: {ready: true}}]
    ports: [{name: http, port: 8443, protocol: TCP}]
    """

    @Test func prefixes() {
        #expect(IPPrefix("10.96.0.0/12")?.description == "10.96.0.0/12")
        #expect(IPPrefix("10.96.0.1/12") == nil)            // host bits: not canonical
        #expect(IPPrefix("10.96.0.0/33") == nil)
        #expect(IPPrefix("fd00:10:96::/108")?.storedLength == 108)
        #expect(IPPrefix("10.96.0.0/12")?.storedLength == 108)
        #expect(IPPrefix.masking(IPAddress("10.96.7.7")!, prefixLength: 12)?.description == "10.96.0.0/12")
        let p = IPPrefix("10.96.0.0/12")!
        #expect(p.contains(IPAddress("10.111.255.255")!) && !p.contains(IPAddress("10.112.0.0")!))
        #expect(!p.contains(IPAddress("::ffff:10.96.0.1")!) == false)  // the mapped form is IPv4
        #expect(!IPPrefix("::/0")!.contains(IPAddress("10.96.0.1")!))   // families never mix
        #expect(IPPrefix("0.0.0.0/0")!.contains(IPAddress("203.0.113.1")!))
    }

    @Test func serviceCIDRObjectsAreValidatedAsTheAPIServerDoes() {
        func errors(_ cidrs: String) -> [String] {
            compileErrors([("c.yaml", "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: x}\nspec: {cidrs: \(cidrs)}\n")])
                .map { "\($0.field): \($0.message)" }
        }
        #expect(errors("[10.96.0.0/12, fd00::/108]").isEmpty)
        #expect(errors("[10.96.0.1/12]").first?.contains("invalid CIDR \"10.96.0.1/12\"") == true)
        #expect(errors("[10.96.0.0/12, 10.97.0.0/16]").first?.contains("at most one per IP family") == true)
        #expect(errors("[]").first?.contains("one or two") == true)
        #expect(errors("[10.96.0.0/12, fd00::/108, fd01::/108]").contains { $0.contains("one or two") })
    }

    @Test func sourceRangesAreValidatedAsTheAPIServerDoes() {
        let onClusterIP = Self.lb.replacingOccurrences(of: "type: LoadBalancer", with: "type: ClusterIP")
        #expect(compileErrors([("s.yaml", onClusterIP)]).contains { $0.field == "spec.loadBalancerSourceRanges" && $0.message.contains("only") })
        let bad = Self.lb.replacingOccurrences(of: "2001:db8::/64", with: "2001:db8::/129")
        #expect(compileErrors([("s.yaml", bad)]).contains { $0.message.contains("invalid CIDR \"2001:db8::/129\"") })
    }

    /// Ranges of each family restrict that family's ingress IPs; host bits and spaces are
    /// forgiven as net.ParseCIDR and the API server forgive them.
    @Test func sourceRangesCompileAndResolve() throws {
        let (_, result) = try compileContents([("lb.yaml", Self.lb)])
        let c = result.contents
        #expect(c.sourceRanges.map(\.prefix.description).sorted() == ["2001:db8::/64", "203.0.113.0/24"])
        let lbFrontend = try #require(c.frontends.first { $0.key.address == IPAddress("192.0.2.80") })
        #expect(lbFrontend.rules.first?.flags.contains(.sourceRanges) == true)
        let clusterIP = try #require(c.frontends.first { $0.key.address == IPAddress("10.96.7.7") })
        #expect(clusterIP.rules.first?.flags.contains(.sourceRanges) == false)
        let r = Resolver(c)
        let dest = SocketAddress("192.0.2.80:443")!
        #expect(r.resolve(dest, proto: .tcp, from: IPAddress("203.0.113.200")).result == .translate)
        #expect(r.resolve(dest, proto: .tcp, from: IPAddress("198.51.100.1")).result == .reject)
        #expect(r.resolve(dest, proto: .tcp, from: IPAddress("2001:db8::1")).result == .reject)   // an IPv6 range for an IPv4 LB
        #expect(r.resolve(dest, proto: .tcp).reason.contains("give --from"))
        #expect(r.resolve(SocketAddress("10.96.7.7:443")!, proto: .tcp, from: IPAddress("198.51.100.1")).result == .translate)
        // Round trip through the image.
        let image = try MapImage(bytes: ImageEncoder.encode(c))
        #expect(image.contents.sourceRanges.sorted() == c.sourceRanges.sorted())
    }

    @Test func serviceCIDRsCompileFromObjectsAndOptionsOnce() throws {
        let (snapshot, diags) = try InputLoader.load(contents: [("c.yaml", Array("""
            apiVersion: networking.k8s.io/v1
            kind: ServiceCIDR
            metadata: {name: kubernetes}
            spec: {cidrs: [10.96.0.0/16]}
            """.utf8))])
        let result = Compiler.compile(snapshot, inputDiagnostics: diags,
                                      options: CompileOptions(serviceCIDRs: [IPPrefix("10.96.0.0/16")!, IPPrefix("fd00::/108")!]))
        #expect(result.contents.serviceCIDRs.map(\.description).sorted() == ["10.96.0.0/16", "fd00::/108"])  // once each
        let image = try MapImage(bytes: ImageEncoder.encode(result.contents))
        #expect(image.contents.serviceCIDRs == result.contents.serviceCIDRs)
        let r = Resolver(image.contents)
        #expect(r.resolve(SocketAddress("10.96.3.3:80")!, proto: .tcp).result == .reject)
        #expect(r.resolve(SocketAddress("[fd00::ff]:80")!, proto: .udp).result == .reject)
        #expect(r.resolve(SocketAddress("10.97.0.1:80")!, proto: .tcp).result == .passthrough)
    }

    /// A Service's ranges changed and removed through the incremental compiler: each delta gives
    /// exactly the tables of a full compile.
    @Test func sourceRangesFollowIncrementally() throws {
        func snapshot(_ yaml: String) throws -> Snapshot { try InputLoader.load(contents: [("lb.yaml", Array(yaml.utf8))]).0 }
        let first = try snapshot(Self.lb)
        var inc = try #require(Compiler.compileIncrementally(first).1)
        var before = try imageTables(Compiler.compile(first).contents)
        for yaml in [Self.lb.replacingOccurrences(of: "\" 203.0.113.9/24 \", ", with: "198.51.100.0/25, "),
                     Self.lb.replacingOccurrences(of: "  loadBalancerSourceRanges: [\" 203.0.113.9/24 \", 2001:db8::/64]\n", with: "")] {
            let next = try snapshot(yaml)
            var one = Snapshot()
            one.services = next.services
            let full = try imageTables(Compiler.compile(next).contents)
            switch inc.apply([ObjectChange(kind: "Service", namespace: "shop", name: "lb", objects: one)]) {
            case .delta(let d): #expect(d.applied(to: before) == full)
            case .needsFullCompile(let why): Issue.record("handed over: \(why)")
            }
            before = full
        }
    }
}
