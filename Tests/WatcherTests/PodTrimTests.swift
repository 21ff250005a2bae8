import Compiler
import Testing

/// Pods kept by the watcher are trimmed to what the compiler reads, and compile the same.
@Suite struct PodTrimTests {
    static let pod = #"""
    {"apiVersion":"v1","kind":"Pod","metadata":{"name":"nodelocaldns-x","namespace":"kube-system","uid":"u1","resourceVersion":"77",
    "labels":{"k8s-app":"node-local-dns"},"deletionTimestamp":"2026-01-01T00:00:00Z",
    "managedFields":[{"manager":"kubelet","operation":"Update","fieldsV1":{"f:status":{"f:conditions":{}}}}],
    "ownerReferences":[{"kind":"DaemonSet","name":"node-local-dns"}]},
    "spec":{"nodeName":"kind-worker","hostNetwork":true,"serviceAccountName":"x","volumes":[{"name":"cfg","configMap":{"name":"c"}}],
    "containers":[{"name":"dns","image":"registry/dns:1","env":[{"name":"A","value":"1"}],"ports":[{"name":"dns","containerPort":53,"protocol":"UDP"}],
    "resources":{"limits":{"memory":"170Mi"}}}],
    "initContainers":[{"name":"side","restartPolicy":"Always","ports":[{"name":"metrics","containerPort":9253,"protocol":"TCP"}]}]},
    "status":{"phase":"Running","podIP":"172.18.0.3","podIPs":[{"ip":"172.18.0.3"}],"hostIP":"172.18.0.3",
    "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"}],
    "containerStatuses":[{"name":"dns","ready":true,"restartCount":0,"image":"registry/dns:1"}]}}
    """#

    @Test func trimmedPodDecodesTheSame() throws {
        let full = Array(Self.pod.utf8)
        let trimmed = trimPodJSON(full)
        #expect(trimmed.count * 10 < full.count * 6, "\(trimmed.count) of \(full.count) bytes")
        let text = String(decoding: trimmed, as: UTF8.self)
        for gone in ["managedFields", "env", "volumes", "containerStatuses", "image"] { #expect(!text.contains("\"\(gone)\""), "\(gone)") }
        let (a, _) = try InputLoader.load(contents: [("full.json", full)])
        let (b, _) = try InputLoader.load(contents: [("trimmed.json", trimmed)])
        let p = try #require(a.pods.first), q = try #require(b.pods.first)
        #expect(p.meta.name == q.meta.name && p.meta.labels == q.meta.labels)
        #expect(p.nodeName == q.nodeName && p.phase == q.phase && p.podIPs == q.podIPs)
        #expect(p.ready == q.ready && p.terminating == q.terminating && p.hostNetwork == q.hostNetwork)
        #expect(p.containerPorts == q.containerPorts && q.containerPorts.count == 2)
        // Not a Pod-shaped JSON: unchanged.
        #expect(trimPodJSON(Array("[1,2]".utf8)) == Array("[1,2]".utf8))
    }
}
