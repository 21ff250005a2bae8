@testable import KubeAPI
@testable import Manifests
import Testing

/// Pods and Nodes kept by the watcher are trimmed to what the compiler reads, and compile the same;
/// an update of nothing kept leaves the kept bytes unchanged (the watcher drops it).
@Suite struct TrimTests {
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
        let trimmed = trimmedJSON(full, kind: "Pod")
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
        #expect(trimmedJSON(Array("[1,2]".utf8), kind: "Pod") == Array("[1,2]".utf8))
        // A kind kept whole: unchanged.
        #expect(trimmedJSON(full, kind: "Service") == full)
    }

    /// The trim, byte for byte: members in the declaration's order, lists reduced element by
    /// element, the rest dropped.
    @Test func trimmedBytes() {
        let trimmed = String(decoding: trimmedJSON(Array(Self.pod.utf8), kind: "Pod"), as: UTF8.self)
        #expect(trimmed == #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"nodelocaldns-x","namespace":"kube-system","labels":{"k8s-app":"node-local-dns"},"uid":"u1","deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"nodeName":"kind-worker","hostNetwork":true,"containers":[{"name":"dns","ports":[{"name":"dns","containerPort":53,"protocol":"UDP"}]}],"initContainers":[{"name":"side","ports":[{"name":"metrics","containerPort":9253,"protocol":"TCP"}],"restartPolicy":"Always"}]},"status":{"phase":"Running","podIP":"172.18.0.3","podIPs":[{"ip":"172.18.0.3"}],"conditions":[{"type":"Ready","status":"True"}]}}"#)
        // Members of the wrong shape are dropped, as the decoder would find nothing in them.
        let odd = trimmedJSON(Array(#"{"kind":"Pod","spec":[1],"status":{"conditions":{"type":"Ready"},"podIPs":7}}"#.utf8), kind: "Pod")
        #expect(String(decoding: odd, as: UTF8.self) == #"{"kind":"Pod","status":{"podIPs":7}}"#)
    }

    /// Every field the Pod decoder looks up (as ChunkDecoder decodes a Pod: kind, apiVersion,
    /// metadata, then the Pod) is one `PodFields.kept` keeps, so a watched Pod, kept trimmed,
    /// decodes as the whole Pod does. Lookups are recorded whether the field is there or not: a
    /// new read fails here even when no test Pod carries the field.
    @Test func theDecoderReadsOnlyKeptFields() throws {
        let paths = try Self.lookups(Self.pod, kind: "Pod", namespaced: true) { d, meta, source in
            #expect(d.pod(meta, source).containerPorts.count == 2)
        }
        #expect(paths.contains("spec.containers[].ports[].containerPort"))
        for path in paths { #expect(Self.keeps(PodFields.kept, path), "the Pod decoder reads \(path), which trimmedJSON drops: add it to PodFields.kept") }
    }

    /// The fields a kind's decoder looks up in `json`, decoded as ChunkDecoder decodes it (kind,
    /// apiVersion, metadata, then `decode`), with no diagnostic.
    static func lookups(_ json: String, kind: String, namespaced: Bool,
                        decode: (inout ObjectDecoder, ObjectMeta, ObjectSource) -> Void) throws -> [String] {
        let tree = try ManifestReader.parseJSON(Array(json.utf8), file: "object.json")
        let root = try #require(tree.documents.first)
        var d = ObjectDecoder(tree: tree, root: root, object: kind)
        let lookups = FieldLookups()
        d.lookups = lookups
        #expect(d.typeString(root, "kind") == kind && d.typeString(root, "apiVersion") == "v1")
        let decodedMeta = d.meta(namespaced: namespaced, nameRule: .dns1123Subdomain)
        let meta = try #require(decodedMeta)
        decode(&d, meta, ObjectSource(file: "object.json", line: 1, column: 1))
        #expect(d.diagnostics.isEmpty, "\(d.diagnostics)")
        return lookups.paths.sorted()
    }

    static func node(heartbeat: String, rv: String, image: String, zone: String = "a") -> String {
        #"""
        {"apiVersion":"v1","kind":"Node","metadata":{"name":"worker-1","uid":"n1","resourceVersion":"\#(rv)",
        "labels":{"kubernetes.io/hostname":"worker-1","topology.kubernetes.io/zone":"\#(zone)"},
        "annotations":{"balancing.elf.io/nodeId":"7","node.alpha.kubernetes.io/ttl":"0"},
        "managedFields":[{"manager":"kubelet","operation":"Update","time":"\#(heartbeat)"}],"creationTimestamp":"2026-01-01T00:00:00Z"},
        "spec":{"podCIDR":"10.244.1.0/24","providerID":"kind://docker/kind/worker-1"},
        "status":{"addresses":[{"type":"InternalIP","address":"172.18.0.3"},{"type":"Hostname","address":"worker-1"}],
        "allocatable":{"cpu":"8","memory":"32Gi"},"capacity":{"cpu":"8","memory":"32Gi"},
        "conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"\#(heartbeat)","reason":"KubeletReady"}],
        "images":[{"names":["\#(image)"],"sizeBytes":1000}],"nodeInfo":{"kubeletVersion":"v1.31.0"}}}
        """#
    }

    /// A kubelet's status update (heartbeat, images, resourceVersion, managedFields) trims to the
    /// same bytes; a zone change does not; the trimmed Node decodes as the whole one.
    @Test func nodeStatusUpdatesTrimToTheSameBytes() throws {
        let a = Array(Self.node(heartbeat: "2026-12-04T10:00:00Z", rv: "100", image: "pause:3.9").utf8)
        let b = Array(Self.node(heartbeat: "2026-12-04T10:00:10Z", rv: "101", image: "pause:3.10").utf8)
        let c = Array(Self.node(heartbeat: "2026-12-04T10:00:10Z", rv: "102", image: "pause:3.10", zone: "b").utf8)
        let ta = trimmedJSON(a, kind: "Node"), tb = trimmedJSON(b, kind: "Node"), tc = trimmedJSON(c, kind: "Node")
        #expect(a != b && ta == tb)
        #expect(tc != tb)
        let (full, _) = try InputLoader.load(contents: [("full.json", a)])
        let (kept, _) = try InputLoader.load(contents: [("kept.json", ta)])
        let n = try #require(full.nodes.first), m = try #require(kept.nodes.first)
        #expect(n.meta.name == m.meta.name && n.meta.labels == m.meta.labels && n.meta.annotations == m.meta.annotations)
        #expect(n.addresses == m.addresses && m.addresses.count == 1)
    }

    /// As for Pods: every field the Node decoder looks up is one `NodeFields.kept` keeps.
    @Test func theNodeDecoderReadsOnlyKeptFields() throws {
        let paths = try Self.lookups(Self.node(heartbeat: "t", rv: "1", image: "i"), kind: "Node", namespaced: false) { d, meta, source in
            #expect(d.node(meta, source).addresses.count == 1)
        }
        #expect(paths.contains("status.addresses[].address"))
        for path in paths { #expect(Self.keeps(NodeFields.kept, path), "the Node decoder reads \(path), which trimmedJSON drops: add it to NodeFields.kept") }
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
