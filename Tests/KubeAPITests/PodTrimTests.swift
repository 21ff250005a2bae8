@testable import KubeAPI
@testable import Manifests
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

    /// The trim, byte for byte: members in the declaration's order, lists reduced element by
    /// element, the rest dropped.
    @Test func trimmedBytes() {
        let trimmed = String(decoding: trimPodJSON(Array(Self.pod.utf8)), as: UTF8.self)
        #expect(trimmed == #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"nodelocaldns-x","namespace":"kube-system","labels":{"k8s-app":"node-local-dns"},"uid":"u1","resourceVersion":"77","deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"nodeName":"kind-worker","hostNetwork":true,"containers":[{"name":"dns","ports":[{"name":"dns","containerPort":53,"protocol":"UDP"}]}],"initContainers":[{"name":"side","ports":[{"name":"metrics","containerPort":9253,"protocol":"TCP"}],"restartPolicy":"Always"}]},"status":{"phase":"Running","podIP":"172.18.0.3","podIPs":[{"ip":"172.18.0.3"}],"conditions":[{"type":"Ready","status":"True"}]}}"#)
        // Members of the wrong shape are dropped, as the decoder would find nothing in them.
        let odd = trimPodJSON(Array(#"{"kind":"Pod","spec":[1],"status":{"conditions":{"type":"Ready"},"podIPs":7}}"#.utf8))
        #expect(String(decoding: odd, as: UTF8.self) == #"{"kind":"Pod","status":{"podIPs":7}}"#)
    }

    /// Every field the Pod decoder looks up (as ChunkDecoder decodes a Pod: kind, apiVersion,
    /// metadata, then the Pod) is one `PodFields.kept` keeps, so a watched Pod, kept trimmed,
    /// decodes as the whole Pod does. Lookups are recorded whether the field is there or not: a
    /// new read fails here even when no test Pod carries the field.
    @Test func theDecoderReadsOnlyKeptFields() throws {
        let tree = try ManifestReader.parseJSON(Array(Self.pod.utf8), file: "pod.json")
        let root = try #require(tree.documents.first)
        var d = ObjectDecoder(tree: tree, root: root, object: "Pod")
        let lookups = FieldLookups()
        d.lookups = lookups
        let kind = d.typeString(root, "kind"), apiVersion = d.typeString(root, "apiVersion")
        #expect(kind == "Pod" && apiVersion == "v1")
        let decodedMeta = d.meta(namespaced: true, nameRule: .dns1123Subdomain)
        let meta = try #require(decodedMeta)
        let pod = d.pod(meta, ObjectSource(file: "pod.json", line: 1, column: 1))
        #expect(d.diagnostics.isEmpty && pod.containerPorts.count == 2)
        #expect(lookups.paths.contains("spec.containers[].ports[].containerPort"))
        for path in lookups.paths.sorted() {
            let kept = Self.keeps(PodFields.kept, path)
            #expect(kept, "the Pod decoder reads \(path), which trimPodJSON drops: add it to PodFields.kept")
        }
    }

    /// Whether `selection` keeps the field at `path` ("spec.containers[].ports").
    static func keeps(_ selection: FieldSelection, _ path: String) -> Bool {
        var steps: [String] = []
        for part in path.split(separator: ".") {
            var name = Substring(part)
            var lists = 0
            while name.hasSuffix("[]") { name = name.dropLast(2); lists += 1 }
            steps.append(String(name))
            steps += Array(repeating: "[]", count: lists)
        }
        var current = selection
        for step in steps {
            switch current.shape {
            case .whole: return true
            case .array:
                guard step == "[]" else { return false }
                current = current.element
            case .object:
                guard let m = current.members.first(where: { $0.name == step }) else { return false }
                current = m.selection
            }
        }
        return true
    }
}
