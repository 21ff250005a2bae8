@testable import Compiler
@testable import Manifests
import MapImage
import Testing

/// The compiler's capacity errors name what fills the datapath. The contents are a small real
/// compile with sets padded past a limit (a real compile of half a million endpoints takes half
/// a minute in a debug build; the CLI test runs one real overflow end to end).
@Suite struct CompilerCapacityTests {
    static let manifests = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          clusterIP: 10.96.0.50
          ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: api, namespace: shop}
        spec:
          clusterIP: 10.96.0.51
          ports: [{name: grpc, port: 9000, protocol: TCP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-small, namespace: shop, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints: [{addresses: [10.1.0.1]}, {addresses: [10.1.0.2]}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-big, namespace: shop, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints: [{addresses: [10.1.1.1]}, {addresses: [10.1.1.2]}, {addresses: [10.1.1.3]}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: api-1, namespace: shop, labels: {kubernetes.io/service-name: api}}
        addressType: IPv4
        ports: [{name: grpc, port: 9000, protocol: TCP}]
        endpoints: [{addresses: [10.2.0.1]}]

        """

    func compiled() throws -> (ImageContents, Snapshot) {
        let (snapshot, diags) = try InputLoader.load(contents: [("shop.yaml", Array(Self.manifests.utf8))])
        let result = Compiler.compile(snapshot, inputDiagnostics: diags)
        #expect(!result.exceedsCapacity && result.diagnostics.filter { $0.severity == .error }.isEmpty)
        return (result.contents, snapshot)
    }

    func pad(_ c: inout ImageContents, owner: String, to n: Int) {
        let groups = Set(c.metadata.groups.filter { $0.ownerName == owner }.map(\.id))
        for i in c.sets.indices where groups.contains(c.sets[i].key.groupID) && c.sets[i].key.scope == .cluster {
            c.sets[i].backends = (1...UInt32(n)).map { $0 }
        }
    }

    /// A service port with more endpoints than a set holds: the error is at its largest
    /// EndpointSlice, names the service port, the count, the limit and the constant, and lists
    /// the slices its endpoints come from.
    @Test func oversizedSetNamesItsServiceAndSlices() throws {
        var (c, snapshot) = try compiled()
        let (limit, table) = ImageCapacity.maxSetSize
        pad(&c, owner: "shop/web", to: limit + 1)
        let d = Compiler.capacityDiagnostics(c, snapshot: snapshot)
        #expect(d.count == 1)
        #expect(d.first?.description == """
            shop.yaml:22:1: error: EndpointSlice shop/web-big: endpoints: Service shop/web port http/TCP (IPv4) has \(limit + 1) endpoints \
            in its cluster set; a backend set holds at most \(limit) (\(ImageCapacity.constant(table)) in bpf/include/balancer_abi.h; \
            raise it and rebuild balancer (swift build compiles the datapath with it)); its endpoints come from 2 EndpointSlices: web-big (3), web-small (2)
            """, "\(d)")
    }

    /// Tables over capacity with no set too large: one error per table, naming its largest
    /// users; and compile itself reports them and marks the result.
    @Test func overfullTablesNameTheirLargestUsers() throws {
        var (c, snapshot) = try compiled()
        let slots = ABI.maxEntries(.slots)
        pad(&c, owner: "shop/web", to: slots / 2)
        pad(&c, owner: "shop/api", to: slots / 2)
        // One more slot, in a set of its own: no set is past a set's limit.
        let api = try #require(c.metadata.groups.first { $0.ownerName == "shop/api" })
        c.sets.append(BackendSet(key: SetKey(groupID: api.id, scope: .zone, scopeID: 7), flags: [], backends: [1]))
        let d = Compiler.capacityDiagnostics(c, snapshot: snapshot).map(\.description)
        #expect(d == ["slots", "members"].map { t in
            "error: \(t): \(slots + 1) records exceed the datapath's capacity of \(slots) (\(t == "slots" ? "BL_MAX_SLOTS" : "BL_MAX_MEMBERS") "
                + "in bpf/include/balancer_abi.h; raise it and rebuild balancer (swift build compiles the datapath with it)); "
                + "the largest users: Service shop/api (\(slots / 2 + 1)), Service shop/web (\(slots / 2))"
        }, "\(d)")

        // Inside compile: past BL_MAX_NODES, by node names endpoints mention.
        let n = ABI.maxEntries(.nodes) + 1
        // In slices of at most 1000 endpoints, the API server's limit.
        var text = Self.manifests
        for start in stride(from: 0, to: n, by: 1000) {
            let endpoints = (start..<min(n, start + 1000)).map { "{addresses: [10.3.\($0 / 250).\($0 % 250 + 1)], nodeName: n\($0)}" }
            text += """
                ---
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata: {name: api-n\(start), namespace: shop, labels: {kubernetes.io/service-name: api}}
                addressType: IPv4
                ports: [{name: grpc, port: 9000, protocol: TCP}]
                endpoints: [\(endpoints.joined(separator: ", "))]

                """
        }
        let (big, diags) = try InputLoader.load(contents: [("shop.yaml", Array(text.utf8))])
        let result = Compiler.compile(big, inputDiagnostics: diags)
        #expect(result.exceedsCapacity)
        #expect(result.diagnostics.map(\.description).contains(
            "error: nodes: \(n) records exceed the datapath's capacity of \(n - 1) (BL_MAX_NODES in bpf/include/balancer_abi.h; "
                + "raise it and rebuild balancer (swift build compiles the datapath with it)); 0 Node objects and \(n) node names that only endpoints mention"))
    }
}
