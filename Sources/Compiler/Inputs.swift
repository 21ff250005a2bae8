import Crypto
import FoundationEssentials
import MapImage

#if canImport(Glibc)
import Glibc
#endif

/// Reads manifests from files and directories into a Snapshot: finds the files, parses each one
/// (libyaml or jansson), unwraps `List`s, decodes each object by kind, and reports every problem.
public struct InputLoader {
    public init() {}

    /// Files to read: the given files, and under each directory every `.yaml`, `.yml` and `.json`
    /// file, recursively; hidden entries (".git") are skipped. Sorted, so messages come in a
    /// stable order.
    public static func expand(_ paths: [String]) throws(CompileFailure) -> [String] {
        var files: [String] = []
        var problems: [Diagnostic] = []
        for p in paths {
            var st = stat()
            guard stat(p, &st) == 0 else {
                problems.append(Diagnostic(.error, file: p, message: "cannot read: \(String(cString: strerror(errno)))"))
                continue
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                walk(p, into: &files)
            } else {
                files.append(p)
            }
        }
        if !problems.isEmpty { throw CompileFailure(diagnostics: problems) }
        return Array(Set(files)).sorted()
    }

    private static func walk(_ dir: String, into files: inout [String]) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for name in entries.sorted() where !name.hasPrefix(".") {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                walk(path, into: &files)
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") {
                files.append(path)
            }
        }
    }

    public static func readFile(_ path: String) throws(Diagnostic) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Diagnostic(.error, file: path, message: "cannot read file")
        }
        return Array(data)
    }

    /// Loads every file into one snapshot. Throws with all errors found; warnings and notes are
    /// returned with the snapshot.
    public static func load(paths: [String]) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        let files = try expand(paths)
        var inputs: [(String, [UInt8])] = []
        var problems: [Diagnostic] = []
        for f in files {
            do {
                inputs.append((f, try readFile(f)))
            } catch {
                problems.append(error)
            }
        }
        if !problems.isEmpty { throw CompileFailure(diagnostics: problems) }
        return try load(contents: inputs)
    }

    /// Loads in-memory files (path, bytes): what `load(paths:)` does after reading.
    public static func load(contents: [(path: String, bytes: [UInt8])]) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        var builder = SnapshotBuilder()
        for (path, bytes) in contents {
            let tree: ManifestTree
            do {
                tree = try ManifestReader.parse(bytes, file: path)
            } catch {
                builder.diagnostics.append(Diagnostic(.error, file: error.file, line: error.line, column: error.column, message: error.message))
                continue
            }
            builder.add(tree: tree, bytes: bytes)
        }
        return try builder.finish()
    }
}

struct SnapshotBuilder {
    var snapshot = Snapshot()
    var diagnostics: [Diagnostic] = []
    var seen: [ObjectKey: ObjectSource] = [:]
    /// JSON files with diagnostics that still need a line:column.
    var jsonSources: [String: [UInt8]] = [:]

    mutating func add(tree: ManifestTree, bytes: [UInt8]) {
        let before = diagnostics.count
        for doc in tree.documents {
            addDocument(tree, doc)
        }
        if diagnostics[before...].contains(where: { $0.treePath != nil }) {
            jsonSources[tree.file] = bytes
        }
    }

    private mutating func addDocument(_ tree: ManifestTree, _ doc: NodeID) {
        guard tree.kind(doc) == .mapping else {
            var d = ObjectDecoder(tree: tree, root: doc, object: "")
            d.error(doc, "expected a Kubernetes object (a mapping), found \(d.describe(doc))")
            diagnostics += d.diagnostics
            return
        }
        let kindNode = tree.value(doc, "kind")
        let kind = kindNode.flatMap { tree.kind($0) == .scalar ? tree.text($0) : nil } ?? ""
        if kind == "List" || (kind.hasSuffix("List") && tree.value(doc, "items") != nil) {
            let itemKind = kind == "List" ? nil : String(kind.dropLast(4))
            let apiVersion = tree.value(doc, "apiVersion").map { tree.text($0) }
            guard let items = tree.value(doc, "items") else { return }
            var d = ObjectDecoder(tree: tree, root: doc, object: kind)
            if tree.kind(items) != .sequence {
                if !d.isNull(items) { d.error(items, "expected a list, found \(d.describe(items))") }
                diagnostics += d.diagnostics
                return
            }
            for item in tree.items(items) {
                addObject(tree, item, defaultKind: itemKind, defaultAPIVersion: kind == "List" ? nil : apiVersion)
            }
            return
        }
        addObject(tree, doc, defaultKind: nil, defaultAPIVersion: nil)
    }

    private mutating func addObject(_ tree: ManifestTree, _ root: NodeID, defaultKind: String?, defaultAPIVersion: String?) {
        var d = ObjectDecoder(tree: tree, root: root, object: "")
        guard tree.kind(root) == .mapping else {
            d.error(root, "expected a Kubernetes object (a mapping), found \(d.describe(root))")
            diagnostics += d.diagnostics
            return
        }
        let kind = d.string(root, "kind") ?? defaultKind
        let apiVersion = d.string(root, "apiVersion") ?? defaultAPIVersion
        guard let kind, !kind.isEmpty else {
            d.missing(root, "kind")
            diagnostics += d.diagnostics
            return
        }
        let namespaced: Bool
        let expectedAPI: String
        switch kind {
        case "Service", "Pod": namespaced = true; expectedAPI = "v1"
        case "Node": namespaced = false; expectedAPI = "v1"
        case "EndpointSlice": namespaced = true; expectedAPI = "discovery.k8s.io/v1"
        case "LocalRedirectPolicy", "BalancingPolicy": namespaced = false; expectedAPI = "balancing.elf.io/v1beta1"
        default:
            snapshot.counts["skipped/\(kind)", default: 0] += 1
            diagnostics += d.diagnostics
            return
        }
        guard apiVersion == expectedAPI else {
            let m = tree.mark(root)
            diagnostics.append(Diagnostic(.warning, file: tree.file, line: m.line, column: m.column, object: kind, field: "apiVersion",
                                          message: "\(kind) of apiVersion \(apiVersion ?? "(none)") is not read (expected \(expectedAPI)); skipped"))
            snapshot.counts["skipped/\(kind)", default: 0] += 1
            return
        }
        guard let meta = d.meta(namespaced: namespaced) else {
            d.object = kind
            diagnostics += d.diagnostics
            return
        }
        let key = ObjectKey(kind: kind, namespace: meta.namespace, name: meta.name)
        d.object = key.description
        let m = tree.mark(root)
        let source = ObjectSource(file: tree.file, line: m.line, column: m.column)
        if let first = seen[key] {
            var dup = Diagnostic(.error, file: tree.file, line: m.line, column: m.column, object: key.description,
                                 message: "duplicate object: already defined at \(first.file)\(first.line > 0 ? ":\(first.line):\(first.column)" : "")")
            if m.line == 0 { dup.treePath = tree.path(root) }
            diagnostics.append(dup)
            return
        }
        seen[key] = source

        let errorsBefore = d.diagnostics.filter { $0.severity == .error }.count
        switch kind {
        case "Service": if let s = d.service(meta, source) { snapshot.services.append(s) }
        case "EndpointSlice": if let s = d.endpointSlice(meta, source) { snapshot.endpointSlices.append(s) }
        case "Node": snapshot.nodes.append(d.node(meta, source))
        case "Pod": snapshot.pods.append(d.pod(meta, source))
        case "LocalRedirectPolicy": if let p = d.localRedirectPolicy(meta, source) { snapshot.localRedirectPolicies.append(p) }
        case "BalancingPolicy": if let p = d.balancingPolicy(meta, source) { snapshot.balancingPolicies.append(p) }
        default: break
        }
        if d.diagnostics.filter({ $0.severity == .error }).count == errorsBefore {
            snapshot.counts[kind, default: 0] += 1
            snapshot.objectDigests.append(objectDigest(tree, root, kind: kind, apiVersion: expectedAPI))
        }
        diagnostics += d.diagnostics
    }

    /// The digest of one object, the same whichever container it came in: a List item carries no
    /// kind or apiVersion on the wire, so those are taken from the decoded object and the rest of
    /// the top-level members are digested member by member in key order.
    func objectDigest(_ tree: ManifestTree, _ root: NodeID, kind: String, apiVersion: String) -> [UInt8] {
        var members: [(String, [UInt8])] = []
        for (k, v) in tree.entries(root) {
            let key = tree.text(k)
            if key == "kind" || key == "apiVersion" { continue }
            members.append((key, tree.canonicalDigest(v)))
        }
        members.sort { $0.0 < $1.0 }
        var h = SHA256()
        h.update(data: Array("\(kind)\u{0}\(apiVersion)\u{0}".utf8))
        for (k, d) in members {
            h.update(data: Array(k.utf8) + [0])
            h.update(data: d)
        }
        return Array(h.finalize())
    }

    /// Fills in line:column of diagnostics in JSON files (jansson keeps no positions) by parsing
    /// those files again with libyaml, which reads JSON, and finding the same node by its path.
    mutating func locateJSONDiagnostics() {
        var trees: [String: ManifestTree] = [:]
        for (file, bytes) in jsonSources {
            if let t = try? ManifestReader.parseYAML(bytes, file: file) { trees[file] = t }
        }
        for i in diagnostics.indices {
            guard let path = diagnostics[i].treePath, let file = diagnostics[i].file, let t = trees[file],
                  let n = t.node(atPath: path) else { continue }
            let m = t.mark(n)
            diagnostics[i].line = m.line
            diagnostics[i].column = m.column
        }
    }

    mutating func finish() throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        locateJSONDiagnostics()
        diagnostics.sort(by: Diagnostic.order)
        if diagnostics.contains(where: { $0.severity == .error }) {
            throw CompileFailure(diagnostics: diagnostics)
        }
        return (snapshot, diagnostics)
    }
}
