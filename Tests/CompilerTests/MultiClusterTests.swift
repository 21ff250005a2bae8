import Compiler
import Manifests
import MapImage
import Testing

/// Several clusters in one compile (docs/multicluster.md), beyond what the multicluster-*
/// fixtures show: conflicts and their severity, the order that decides, the MCS API's notes.
@Suite struct MultiClusterTests {
    static func service(_ ns: String, _ name: String, _ ip: String, port: Int = 80, type: String = "ClusterIP", nodePort: Int? = nil,
                        ingress: String? = nil, annotations: String = "") -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: \(ns), creationTimestamp: "2024-05-14T10:00:00Z"\(annotations.isEmpty ? "" : ", annotations: {\(annotations)}")}
        spec: {type: \(type), clusterIP: \(ip), clusterIPs: [\(ip)], ports: [{name: http, port: \(port), protocol: TCP, targetPort: 8080\(nodePort.map { ", nodePort: \($0)" } ?? "")}], selector: {app: \(name)}}
        status: {loadBalancer: {\(ingress.map { "ingress: [{ip: \($0)}]" } ?? "")}}
        """
    }

    static func slice(_ ns: String, _ svc: String, _ name: String, _ ips: [String], labels: String? = nil) -> String {
        """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        addressType: IPv4
        metadata: {name: \(name), namespace: \(ns), labels: {\(labels ?? "kubernetes.io/service-name: \(svc)")}}
        endpoints: [\(ips.map { "{addresses: [\($0)], conditions: {ready: true}}" }.joined(separator: ", "))]
        ports: [{name: http, port: 8080, protocol: TCP}]
        """
    }

    static func export(_ ns: String, _ name: String, at time: String = "2024-05-14T10:05:00Z") -> String {
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {name: \(name), namespace: \(ns), creationTimestamp: \"\(time)\"}\n"
    }

    static func serviceImport(_ ns: String, _ name: String, ips: [String], type: String = "ClusterSetIP") -> String {
        """
        apiVersion: multicluster.x-k8s.io/v1alpha1
        kind: ServiceImport
        metadata: {name: \(name), namespace: \(ns)}
        spec: {type: \(type), ips: [\(ips.joined(separator: ", "))], ports: [{name: http, port: 80, protocol: TCP}]}
        """
    }

    /// Compiles clusters given as (name, [file text]).
    static func compile(_ clusters: [(String, [String])]) throws -> CompileResult {
        var loaded: [(name: String, snapshot: Snapshot)] = []
        var diagnostics: [Diagnostic] = []
        for (name, files) in clusters {
            let (s, d) = try InputLoader.load(contents: files.enumerated().map { ("\(name)/\($0.offset).yaml", Array($0.element.utf8)) })
            loaded.append((name, s))
            diagnostics += d
        }
        let (snapshot, merged) = Clusters.merge(loaded)
        return Compiler.compile(snapshot, inputDiagnostics: diagnostics + merged)
    }

    static func resolve(_ r: CompileResult, _ dest: String, cluster: String? = nil) throws -> Resolution {
        let resolver = Resolver(r.contents)
        let id = try cluster.map { try resolver.clusterID(named: $0) } ?? 0
        return resolver.resolve(try #require(SocketAddress(dest)), proto: .tcp, cluster: id)
    }

    @Test func anExternalAddressTwoClustersClaimIsAnErrorAndTheFirstKeepsIt() throws {
        let a = [Self.service("default", "shop", "10.96.0.50", type: "LoadBalancer", ingress: "203.0.113.10"),
                 Self.slice("default", "shop", "shop-a", ["10.244.1.7"])]
        let b = [Self.service("default", "shop", "10.96.0.60", type: "LoadBalancer", ingress: "203.0.113.10"),
                 Self.slice("default", "shop", "shop-b", ["10.244.2.7"])]
        let r = try Self.compile([("a", a), ("b", b)])
        let errors = r.diagnostics.filter { $0.severity == .error }
        #expect(errors.count == 1)
        #expect(errors.first?.description.contains("offered by clusters a (Service a/default/shop) and b (Service b/default/shop)") == true)
        // What --keep-going writes: each cluster's clients their own, everyone else the first.
        #expect(try Self.resolve(r, "203.0.113.10:80").backends.map(\.description) == ["10.244.1.7:8080"])
        #expect(try Self.resolve(r, "203.0.113.10:80", cluster: "b").backends.map(\.description) == ["10.244.2.7:8080"])
        // In the other order, the other cluster is first.
        let swapped = try Self.compile([("b", b), ("a", a)])
        #expect(try Self.resolve(swapped, "203.0.113.10:80").backends.map(\.description) == ["10.244.2.7:8080"])
    }

    @Test func clusterIPsTwoClustersHaveAreAWarningAndServeEachItsOwn() throws {
        let r = try Self.compile([("a", [Self.service("default", "kubernetes", "10.96.0.1", port: 443), Self.slice("default", "kubernetes", "k", ["10.244.1.1"])]),
                                  ("b", [Self.service("default", "kubernetes", "10.96.0.1", port: 443), Self.slice("default", "kubernetes", "k", ["10.244.2.1"])]),
                                  ("c", [])])
        #expect(r.diagnostics.filter { $0.severity == .error }.isEmpty)
        #expect(r.diagnostics.contains { $0.severity == .warning && $0.description.contains("hosts outside every cluster reach a's") })
        #expect(try Self.resolve(r, "10.96.0.1:443", cluster: "b").backends.map(\.description) == ["10.244.2.1:8080"])
        #expect(try Self.resolve(r, "10.96.0.1:443").backends.map(\.description) == ["10.244.1.1:8080"])
        // A third cluster's client: the address is a ClusterIP of two clusters, none of them its
        // own; its refusal of what nothing answers is for every client.
        #expect(try Self.resolve(r, "10.96.0.1:443", cluster: "c").result == .reject)
        #expect(r.contents.metadata.clusters?.map(\.name) == ["a", "b", "c"])
    }

    @Test func theSameObjectsInAnyFileOrderGiveTheSameImage() throws {
        let a = [Self.service("default", "web", "10.96.0.5"), Self.slice("default", "web", "w", ["10.244.1.5"]), Self.export("default", "web"),
                 Self.serviceImport("default", "web", ips: ["10.97.0.5"])]
        let b = [Self.service("default", "web", "10.96.0.5"), Self.slice("default", "web", "w", ["10.244.1.5"]), Self.export("default", "web")]
        let x = try Self.compile([("a", a), ("b", b)])
        let y = try Self.compile([("a", a.reversed()), ("b", b.reversed())])
        #expect(ImageEncoder.encode(x.contents) == ImageEncoder.encode(y.contents))
        // The same pod address in two clusters is two backends.
        #expect(x.contents.backends.filter { $0.address.description == "10.244.1.5:8080" }.map(\.cluster).sorted() == [1, 2])
    }

    @Test func multiClusterServicesAPINotes() throws {
        let r = try Self.compile([
            ("a", [Self.service("default", "web", "10.96.0.5"), Self.export("default", "web"), Self.export("default", "ghost"),
                   Self.serviceImport("default", "dns", ips: [], type: "Headless"), Self.serviceImport("default", "pending", ips: [])]),
            ("b", [Self.slice("default", "inv", "imported", ["10.244.3.3"],
                              labels: "multicluster.kubernetes.io/service-name: inv, multicluster.kubernetes.io/source-cluster: nowhere"),
                   Self.serviceImport("default", "inv", ips: ["10.97.0.9"]),
                   Self.slice("default", "orphan", "stray", ["10.244.3.4"], labels: "multicluster.kubernetes.io/service-name: orphan")]),
        ])
        let text = r.diagnostics.map(\.description)
        #expect(text.contains { $0.contains("ServiceExport a/default/ghost") && $0.contains("cluster a has no Service default/ghost") })
        #expect(text.contains { $0.contains("exported by a but no cluster has a ServiceImport default/web") })
        #expect(text.contains { $0.contains("ServiceImport default/dns") && $0.contains("type Headless") })
        #expect(text.contains { $0.contains("ServiceImport default/pending") && $0.contains("no clusterset IP") })
        #expect(text.contains { $0.contains("endpoints of cluster \"nowhere\"") && $0.contains("belong to no --cluster") })
        #expect(text.contains { $0.contains("EndpointSlice b/default/stray") && $0.contains("no cluster has a ServiceImport default/orphan") })
        // The unknown cluster's endpoints still serve, remote to everyone.
        #expect(try Self.resolve(r, "10.97.0.9:80", cluster: "a").backends.map(\.description) == ["10.244.3.3:8080"])
    }

    @Test func anImportsNodePortIsKeptOnlyWhenEveryExportAgrees() throws {
        let a = [Self.service("default", "web", "10.96.0.5", type: "NodePort", nodePort: 30080), Self.export("default", "web"),
                 Self.serviceImport("default", "web", ips: ["10.97.0.5"])]
        let b = [Self.service("default", "web", "10.96.0.6", type: "NodePort", nodePort: 30081), Self.export("default", "web", at: "2024-05-14T11:00:00Z")]
        let r = try Self.compile([("a", a), ("b", b)])
        #expect(r.diagnostics.contains { $0.severity == .note && $0.description.contains("no single nodePort across the exporting clusters (30080, 30081)") })
        let rule = try #require(r.contents.frontends.first { $0.key.address.description == "10.97.0.5" }?.rules.first)
        #expect(rule.nodePort == 0 && rule.kind == .clusterSetIP && rule.cluster == 0)
    }

    @Test func aServiceImportWithoutNamedClustersIsNotedAndIgnored() throws {
        let (s, d) = try InputLoader.load(contents: [("x.yaml", Array(Self.serviceImport("default", "web", ips: ["10.97.0.5"]).utf8))])
        let r = Compiler.compile(s, inputDiagnostics: d)
        #expect(r.diagnostics.contains { $0.severity == .note && $0.description.contains("read only when clusters are named") })
        #expect(r.contents.frontends.isEmpty)
    }

    @Test func clusterArgumentsAreCheckedAndGroupedByName() throws {
        let ok = try ClusterInput.parse(["east=a", "west=b", "east=c"])
        #expect(ok == [ClusterInput(name: "east", paths: ["a", "c"]), ClusterInput(name: "west", paths: ["b"])])
        for (bad, why) in [("east", "expected NAME=PATH"), ("=a", "expected NAME=PATH"), ("east=", "expected NAME=PATH"),
                           ("East=a", "invalid cluster name"), ("clusterset=a", "reserved"), ("a/b=c", "invalid cluster name")] {
            #expect {
                _ = try ClusterInput.parse([bad])
            } throws: { error in
                (error as? CompileFailure)?.description.contains(why) == true
            }
        }
    }
}
