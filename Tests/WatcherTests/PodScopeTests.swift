import Foundation
@testable import KubeAPI
import Testing
@testable import Watcher

/// Which Pods a node asks the API server for (the API server double honours spec.nodeName field
/// selectors and key=value label selectors as the real one does): none without policies, its own
/// with a LocalRedirectPolicy, its selector's on any node with a BalancingPolicy, every Pod for a
/// selector that selects everything, none again when they go; the store follows, so the image
/// holds only the Pods the policies need.
@Suite(.serialized) struct PodScopeTests {
    static let podsPath = "/api/v1/pods"
    static let lrpPath = "/apis/balancing.elf.io/v1beta1/localredirectpolicies"
    static let bpPath = "/apis/balancing.elf.io/v1beta1/balancingpolicies"

    static func pod(_ name: String, node: String, ip: String, app: String = "dns") -> String {
        #"{"metadata":{"name":"\#(name)","namespace":"kube-system","labels":{"app":"\#(app)"}},"spec":{"nodeName":"\#(node)"},"status":{"phase":"Running","podIP":"\#(ip)","podIPs":[{"ip":"\#(ip)"}]}}"#
    }

    static let lrp = #"{"metadata":{"name":"node-local-dns"},"spec":{"frontend":{"addressMatcher":{"ip":"169.254.20.10","toPorts":[{"port":"53","protocol":"UDP","name":"dns"}]}},"backend":{"endpointSelector":{"matchLabels":{"app":"dns"}},"toPorts":[{"port":"53","protocol":"UDP","name":"dns"}]}}}"#
    static let bp = #"{"metadata":{"name":"to-dns"},"spec":{"frontend":{"addressMatcher":{"ip":"169.254.20.11","toPorts":[{"port":"53","protocol":"UDP","name":"dns"}]}},"backend":{"serviceEndpoint":{"endpointSelector":{"matchLabels":{"app":"dns"}},"toPorts":[{"port":"53","protocol":"UDP","name":"dns"}]}}}}"#

    /// (Generous: on a loaded 2-core machine, tests that block threads can starve the pool for 20 s.)
    func until(_ seconds: Double = 60, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    @Test func podsAreAskedForOnlyAsThePoliciesNeedThem() async throws {
        let h = try ApiFaultTests.Harness(resources: KubeResource.all, pods: .asNeeded(node: "node-a"))
        h.api.state.withLock { $0.crds.formUnion([Self.lrpPath, Self.bpPath]) }
        h.api.put(Self.podsPath, kind: "Pod", apiVersion: "v1", Self.pod("dns-a", node: "node-a", ip: "10.244.1.5"))
        h.api.put(Self.podsPath, kind: "Pod", apiVersion: "v1", Self.pod("dns-b", node: "node-b", ip: "10.244.2.5"))
        h.api.put(Self.podsPath, kind: "Pod", apiVersion: "v1", Self.pod("web-b", node: "node-b", ip: "10.244.2.6", app: "web"))
        h.start()
        func selectors() -> [String] { h.api.state.withLock { $0.fieldSelectors[Self.podsPath] ?? [] } }
        func labelSelectors() -> [String] { h.api.state.withLock { $0.labelSelectors[Self.podsPath] ?? [] } }
        func stored() -> Set<String> { h.watcher.stores.withLock { Set(($0["Pod"]?.objects.keys ?? [:].keys).map(\.name)) } }
        func scope() -> String? {
            h.metrics.exposition().split(separator: "\n").first { $0.hasPrefix("balancer_pods_watched_info{") }.map(String.init)
        }

        // No policy: an image is delivered, and Pods were never asked for.
        #expect(await until { h.latest() != nil })
        #expect(selectors().isEmpty, "\(selectors())")
        #expect(scope() == #"balancer_pods_watched_info{scope="none"} 1.0"#)

        // A LocalRedirectPolicy: this node's Pods, by field selector; the other node's are not held.
        h.api.put(Self.lrpPath, kind: "LocalRedirectPolicy", apiVersion: "balancing.elf.io/v1beta1", Self.lrp)
        #expect(await until { stored() == ["dns-a"] }, "\(stored())")
        #expect(selectors().allSatisfy { $0 == "spec.nodeName=node-a" } && !selectors().isEmpty, "\(selectors())")

        // A BalancingPolicy selecting app=dns on any node: its Pods beside this node's, each Pod once;
        // the web Pod of the other node is not asked for.
        h.api.put(Self.bpPath, kind: "BalancingPolicy", apiVersion: "balancing.elf.io/v1beta1", Self.bp)
        #expect(await until { stored() == ["dns-a", "dns-b"] }, "\(stored())")
        #expect(labelSelectors().contains("app=dns"), "\(labelSelectors())")
        #expect(scope() == #"balancer_pods_watched_info{scope="node+selector"} 1.0"#)
        #expect(h.log.contains("watching Pods: this node's (spec.nodeName=node-a) and selected (app=dns)"))

        // A selector that selects everything: every Pod, in one request.
        h.api.put(Self.bpPath, kind: "BalancingPolicy", apiVersion: "balancing.elf.io/v1beta1",
                  Self.bp.replacingOccurrences(of: #""endpointSelector":{"matchLabels":{"app":"dns"}}"#, with: #""endpointSelector":{}"#))
        #expect(await until { stored() == ["dns-a", "dns-b", "web-b"] }, "\(stored())")
        #expect(scope() == #"balancer_pods_watched_info{scope="all"} 1.0"#)

        // Both gone: no Pods held, none asked for from then on.
        h.api.delete(Self.bpPath, kind: "BalancingPolicy", apiVersion: "balancing.elf.io/v1beta1", name: "to-dns")
        h.api.delete(Self.lrpPath, kind: "LocalRedirectPolicy", apiVersion: "balancing.elf.io/v1beta1", name: "node-local-dns")
        #expect(await until { stored().isEmpty }, "\(stored())")
        let asked = selectors().count
        try await Task.sleep(for: .milliseconds(500))
        #expect(selectors().count == asked, "no Pod request once no policy needs them")
        #expect(h.log.contains("watching Pods: none"))
        await h.finish()
    }

    /// A policy's endpointSelector as the API's label-selector syntax.
    @Test func selectorsAreWrittenInTheAPIsSyntax() throws {
        func query(_ json: String) throws -> String {
            try JSONDecoder().decode(PodScope.Selector.self, from: Data(json.utf8)).query
        }
        #expect(try query(#"{"matchLabels":{"tier":"edge","app":"dns"}}"#) == "app=dns,tier=edge")
        #expect(try query(#"{"matchExpressions":[{"key":"app","operator":"In","values":["b","a"]},{"key":"env","operator":"NotIn","values":["dev"]},"#
                          + #"{"key":"canary","operator":"Exists"},{"key":"legacy","operator":"DoesNotExist"}]}"#)
                == "app in (a,b),env notin (dev),canary,!legacy")
        #expect(try query(#"{"matchExpressions":[{"key":"app","operator":"Near","values":["x"]}]}"#) == "", "unknown operator: every Pod")
        #expect(try query("{}") == "")
    }
}
