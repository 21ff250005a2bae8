import MapImage
import Testing

/// Table-driven: one row per rule of the Resolver, over hand-built images.
@Suite struct ResolverTests {
    struct Row: Sendable, CustomStringConvertible {
        var name: String
        var node: UInt32
        var proto: TransportProtocol
        var destination: String
        var hostMode: HostMode = .pod
        var result: Resolution.Result
        var backends: [String] = []
        var description: String { name }
    }

    static let nodeA: UInt32 = 0x1111_0001
    static let nodeB: UInt32 = 0x2222_0002

    static func image() -> ImageContents {
        var c = sampleContents()
        // A Local-only service: 10.96.1.1:80 with a local set on node A only.
        let local: UInt32 = 0xBEEF_0001
        let be = Backend(id: 0x0400_0001, address: SocketAddress("10.244.1.9:8080")!, proto: .tcp, nodeID: nodeA)
        c.backends.append(be)
        c.sets.append(BackendSet(key: SetKey(groupID: local, scope: .cluster, scopeID: 0), flags: [], backends: [be.id]))
        c.sets.append(BackendSet(key: SetKey(groupID: local, scope: .local, scopeID: nodeA), flags: [], backends: [be.id]))
        c.frontends.append(Frontend(key: FrontendKey(address: IPAddress("10.96.1.1")!, port: 80, proto: .tcp), id: 9,
                                    rules: [Rule(groupID: local, ownerID: 78, origin: .service, kind: .clusterIP, action: .translate,
                                                 flags: [.localOnly, .internalLocal])]))
        // A service with no endpoints.
        c.frontends.append(Frontend(key: FrontendKey(address: IPAddress("10.96.2.2")!, port: 80, proto: .tcp), id: 10,
                                    rules: [Rule(groupID: 0xDEAD_0001, ownerID: 79, origin: .service, kind: .clusterIP, action: .reject, flags: [])]))
        // A fall-through rule in front of a service rule (the policies' shape).
        c.frontends.append(Frontend(key: FrontendKey(address: IPAddress("10.96.3.3")!, port: 80, proto: .tcp), id: 11,
                                    rules: [Rule(groupID: 0xFEED_0001, ownerID: 80, origin: .localRedirect, kind: .policyService, action: .translate,
                                                 flags: [.localOnly, .fallThrough]),
                                            Rule(groupID: local, ownerID: 78, origin: .service, kind: .clusterIP, action: .translate, flags: [])]))
        c.sets.append(BackendSet(key: SetKey(groupID: 0xFEED_0001, scope: .local, scopeID: nodeB), flags: [], backends: [c.backends[1].id]))
        return c
    }

    static let rows: [Row] = [
        Row(name: "exact ClusterIP, topology: node A is in zone z1", node: nodeA, proto: .udp, destination: "10.96.0.10:53",
            result: .translate, backends: ["10.244.1.2:53"]),
        Row(name: "topology: node B has no zone, cluster set", node: nodeB, proto: .udp, destination: "10.96.0.10:53",
            result: .translate, backends: ["10.244.1.2:53", "10.244.2.3:53"]),
        Row(name: "not a node: cluster set", node: 0, proto: .udp, destination: "10.96.0.10:53",
            result: .translate, backends: ["10.244.1.2:53", "10.244.2.3:53"]),
        Row(name: "unknown port on a ClusterIP is refused", node: 0, proto: .udp, destination: "10.96.0.10:54", result: .reject),
        Row(name: "other protocol on a ClusterIP is refused", node: 0, proto: .tcp, destination: "10.96.0.10:53", result: .reject),
        Row(name: "NodePort on a node address", node: 0, proto: .udp, destination: "172.18.0.3:30053",
            result: .translate, backends: ["10.244.1.2:53", "10.244.2.3:53"]),
        Row(name: "NodePort on a non-node address passes", node: 0, proto: .udp, destination: "172.18.0.9:30053", result: .passthrough),
        Row(name: "other port on a node address passes", node: 0, proto: .udp, destination: "172.18.0.3:30054", result: .passthrough),
        Row(name: "IPv6 frontend, terminating fallback", node: 0, proto: .udp, destination: "[fd00:10:96::a]:53",
            result: .translate, backends: ["[fd00:10:244::5]:53"]),
        Row(name: "local-only with a local endpoint", node: nodeA, proto: .tcp, destination: "10.96.1.1:80",
            result: .translate, backends: ["10.244.1.9:8080"]),
        Row(name: "local-only without one", node: nodeB, proto: .tcp, destination: "10.96.1.1:80", result: .unreachable),
        Row(name: "local-only from a host that is not a node", node: 0, proto: .tcp, destination: "10.96.1.1:80", result: .unreachable),
        Row(name: "no endpoints", node: nodeA, proto: .tcp, destination: "10.96.2.2:80", result: .reject),
        Row(name: "fall-through rule serves where it can", node: nodeB, proto: .tcp, destination: "10.96.3.3:80",
            result: .translate, backends: ["10.244.2.3:53"]),
        Row(name: "fall-through rule hands over elsewhere", node: nodeA, proto: .tcp, destination: "10.96.3.3:80",
            result: .translate, backends: ["10.244.1.9:8080"]),
        Row(name: "not a service address", node: nodeA, proto: .tcp, destination: "8.8.8.8:53", result: .passthrough),
        Row(name: "host mode nodeport: node address and NodePort", node: 0, proto: .udp, destination: "10.96.0.10:53",
            hostMode: .nodeport, result: .translate, backends: ["172.18.0.2:30053", "172.18.0.3:30053"]),
        Row(name: "host mode nodeport without a NodePort rejects", node: 0, proto: .udp, destination: "[fd00:10:96::a]:53",
            hostMode: .nodeport, result: .reject),
    ]

    @Test(arguments: rows)
    func resolves(_ row: Row) throws {
        let contents = try MapImage(bytes: ImageEncoder.encode(Self.image())).contents
        let r = Resolver(contents).resolve(SocketAddress(row.destination)!, proto: row.proto, nodeID: row.node, hostMode: row.hostMode)
        #expect(r.result == row.result, "\(r.reason)")
        #expect(r.backends.map(\.description) == row.backends)
    }

    @Test func v4MappedDestinationTakesTheIPv4Path() {
        let r = Resolver(Self.image()).resolve(SocketAddress("[::ffff:10.96.0.10]:53")!, proto: .udp)
        #expect(r.result == .translate)
    }

    @Test func unknownNodeNameIsAnError() {
        #expect(throws: ResolverError.self) { try Resolver(Self.image()).nodeID(named: "nope") }
        #expect((try? Resolver(Self.image()).nodeID(named: "node-a")) == Self.nodeA)
    }
}

@Suite struct DiffTests {
    @Test func identicalImages() throws {
        let a = try MapImage(bytes: ImageEncoder.encode(sampleContents()))
        #expect(ImageDiff(old: a, new: a).isEmpty)
    }

    @Test func backendChangeIsReportedPerService() throws {
        let a = try MapImage(bytes: ImageEncoder.encode(sampleContents()))
        var c = sampleContents()
        c.sets[0].backends = [c.backends[0].id]
        let b = try MapImage(bytes: ImageEncoder.encode(c))
        let d = ImageDiff(old: a, new: b)
        #expect(!d.isEmpty)
        #expect(d.entities.count == 1)
        #expect(d.entities.first?.name == "service kube-system/kube-dns")
        #expect(d.entities.first?.removed == ["kube-system/kube-dns:dns/UDP IPv4 cluster: backend 10.244.2.3:53"])
        #expect(d.render().contains("- kube-system/kube-dns:dns/UDP IPv4 cluster: backend 10.244.2.3:53"))
    }
}
