import Compiler
import Manifests
import MapImage
import TestSupport
import Testing

/// A synthetic cluster as JSON object bodies (without kind/apiVersion), so tests can write the
/// same objects in every container shape kubectl produces.
struct SyntheticCluster {
    struct Object {
        var kind: String
        var apiVersion: String
        var body: String  // JSON members after kind/apiVersion, without braces
        var json: String { "{\"kind\":\"\(kind)\",\"apiVersion\":\"\(apiVersion)\",\(body)}" }
        var bare: String { "{\(body)}" }
    }

    var objects: [Object] = []

    init(services: Int, nodes: Int = 4, skip: Set<Int> = []) {
        for n in 0..<nodes {
            objects.append(Object(kind: "Node", apiVersion: "v1", body: """
            "metadata":{"name":"node-\(n)","labels":{"topology.kubernetes.io/zone":"zone-\(n % 2)"}},\
            "status":{"addresses":[{"type":"InternalIP","address":"172.18.0.\(n + 2)"},{"type":"Hostname","address":"node-\(n)"}]}
            """))
        }
        for i in 0..<services where !skip.contains(i) {
            let type = ["ClusterIP", "NodePort", "LoadBalancer"][i % 3]
            let nodePort = type == "ClusterIP" ? "" : ",\"nodePort\":\(30000 + i)"
            let itp = i % 5 == 0 ? ",\"internalTrafficPolicy\":\"Local\"" : ""
            let affinity = i % 4 == 0 ? ",\"sessionAffinity\":\"ClientIP\"" : ""
            let status = type == "LoadBalancer" ? ",\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.\(i % 250)\"}]}}" : ""
            objects.append(Object(kind: "Service", apiVersion: "v1", body: """
            "metadata":{"name":"svc-\(i)","namespace":"ns-\(i % 3)"},\
            "spec":{"type":"\(type)","clusterIP":"10.96.\(i / 250).\(i % 250)","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080\(nodePort)},{"name":"dns","port":53,"protocol":"UDP"}]\(itp)\(affinity)}\(status)
            """))
            var eps: [String] = []
            for e in 0..<3 {
                let shared = e == 0 ? "10.244.200.1" : "10.244.\(i / 250).\(i % 250 * 0 + e + 10 * (i % 20))"
                let ip = e == 0 && i % 7 == 0 ? shared : "10.245.\(i % 250).\(e + 1)"
                let ready = e == 2 && i % 3 == 0 ? "false" : "true"
                eps.append("{\"addresses\":[\"\(ip)\"],\"conditions\":{\"ready\":\(ready)},\"nodeName\":\"node-\((i + e) % nodes)\",\"zone\":\"zone-\((i + e) % 2)\"}")
            }
            objects.append(Object(kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", body: """
            "metadata":{"name":"svc-\(i)-abc","namespace":"ns-\(i % 3)","labels":{"kubernetes.io/service-name":"svc-\(i)"}},\
            "addressType":"IPv4","endpoints":[\(eps.joined(separator: ","))],\
            "ports":[{"name":"http","port":8080,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"}]
            """))
        }
    }

    /// One file per object.
    func filePerObject(_ order: [Int]) -> [(String, String)] {
        order.map { ("obj-\($0).json", objects[$0].json) }
    }

    /// One multi-document YAML stream (JSON documents are YAML).
    func yamlStream(_ order: [Int]) -> [(String, String)] {
        [("all.yaml", order.map { "---\n" + objects[$0].json + "\n" }.joined())]
    }

    /// `kind: List` files and typed `*List` files whose items carry no kind, as on the wire.
    func lists(_ order: [Int], rng: inout SplitMix) -> [(String, String)] {
        var out: [(String, String)] = []
        let half = order.count / 2
        let generic = order[..<half].map { objects[$0].json }
        out.append(("generic.json", "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[\(generic.joined(separator: ","))]}"))
        var byKind: [String: [Object]] = [:]
        for i in order[half...] { byKind[objects[i].kind, default: []].append(objects[i]) }
        for (kind, objs) in byKind.sorted(by: { $0.key < $1.key }).shuffled(using: &rng) {
            let api = objs[0].apiVersion
            out.append(("\(kind).json", "{\"kind\":\"\(kind)List\",\"apiVersion\":\"\(api)\",\"metadata\":{},\"items\":[\(objs.map(\.bare).joined(separator: ","))]}"))
        }
        return out
    }
}

@Suite struct DeterminismTests {
    @Test func sameObjectsSameBytesWhateverTheOrder() throws {
        let cluster = SyntheticCluster(services: 40)
        var rng = SplitMix(state: 42)
        let identity = Array(cluster.objects.indices)
        let (reference, result) = try compileContents(cluster.filePerObject(identity))
        #expect(result.contents.frontends.count > 80)
        for round in 0..<6 {
            let order = identity.shuffled(using: &rng)
            var files: [(String, String)]
            switch round % 3 {
            case 0: files = cluster.filePerObject(order).shuffled(using: &rng)
            case 1: files = cluster.yamlStream(order)
            default: files = cluster.lists(order, rng: &rng)
            }
            let (bytes, _) = try compileContents(files)
            let same = bytes == reference
            if !same, let x = try? MapImage(bytes: reference), let y = try? MapImage(bytes: bytes) {
                let diff = lineDiff(expected: TextRenderer.render(x), actual: TextRenderer.render(y))
                Issue.record("round \(round): permuted input gave different bytes:\n\(diff)")
            }
            #expect(same)
        }
    }

    @Test(arguments: Repo.fixtureCases)
    func fixtureFileOrderDoesNotMatter(_ name: String) throws {
        // A multi-cluster case's clusters are each one unnamed cluster here.
        let clusters = try FixtureDirectives.parse(readText(Repo.fixtures + "/\(name)/expect.txt") ?? "").clusters
        for dir in clusters.isEmpty ? [name] : clusters.map({ "\(name)/\($0)" }) { try fileOrderDoesNotMatter(dir) }
    }

    func fileOrderDoesNotMatter(_ name: String) throws {
        let files = try InputLoader.expand([Repo.fixtures + "/" + name])
        let contents = try files.map { ($0, try InputLoader.readFile($0)) }
        let (a, da) = try InputLoader.load(contents: contents)
        let (b, db) = try InputLoader.load(contents: contents.reversed().map { ("renamed/" + $0.0, $0.1) })
        let x = ImageEncoder.encode(Compiler.compile(a, inputDiagnostics: da).contents)
        let y = ImageEncoder.encode(Compiler.compile(b, inputDiagnostics: db).contents)
        let same = x == y
        #expect(same)
    }

    /// Adding or removing one Service leaves every other record byte-identical.
    @Test func stableIDs() throws {
        let full = SyntheticCluster(services: 40)
        let without = SyntheticCluster(services: 40, skip: [17])
        let (a, _) = try compileContents(without.filePerObject(Array(without.objects.indices)))
        let (b, _) = try compileContents(full.filePerObject(Array(full.objects.indices)))
        let recordsA = try records(a), recordsB = try records(b)
        for (table, recs) in recordsA {
            let missing = recs.subtracting(recordsB[table] ?? [])
            #expect(missing.isEmpty, "\(missing.count) \(table) records of the smaller image changed when a service was added")
        }
        // And the added service did add records.
        #expect(recordsB.values.map(\.count).reduce(0, +) > recordsA.values.map(\.count).reduce(0, +))
    }

    /// Every record (key and value bytes) of each table section.
    func records(_ bytes: [UInt8]) throws -> [String: Set<[UInt8]>] {
        let header = try ImageDecoder.decodeHeader(bytes)
        var out: [String: Set<[UInt8]>] = [:]
        for s in header.sections where s.keySize > 0 {
            let stride = s.keySize + s.valueSize
            out[s.name] = Set((0..<s.count).map { Array(bytes[(s.offset + $0 * stride)..<(s.offset + ($0 + 1) * stride)]) })
        }
        return out
    }
}
