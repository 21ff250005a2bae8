import Crypto
import Dispatch
import FoundationEssentials
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads manifests from files and directories into a Snapshot: finds the files, parses each one
/// (libyaml or jansson), unwraps `List`s, decodes each object by kind, and reports every problem.
public struct InputLoader {
    public init() {}

    /// Files to read: the given files, and under each directory every `.yaml`, `.yml` and `.json`
    /// file, recursively; hidden entries (".git") are skipped. Sorted, so messages come in a
    /// stable order. Throws when an entry cannot be read (ManifestFiles says which).
    public static func expand(_ paths: [String]) throws(CompileFailure) -> [String] {
        let listing = ManifestFiles.expand(paths)
        if listing.diagnostics.contains(where: { $0.severity == .error }) { throw CompileFailure(diagnostics: listing.diagnostics) }
        return listing.files
    }

    /// The operand that means standard input, and its name in messages.
    public static let standardInput = "-"
    public static let standardInputName = "<stdin>"

    public static func readFile(_ path: String, limits: InputLimits = InputLimits()) throws(Diagnostic) -> [UInt8] {
        try ManifestFiles.read(path, limit: limits.maxFileBytes)
    }

    /// Loads every file into one snapshot. Throws with all errors found (of listing, reading
    /// and decoding alike); warnings and notes are returned with the snapshot.
    public static func load(paths: [String], limits: InputLimits = InputLimits()) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        let listing = ManifestFiles.expand(paths.filter { $0 != standardInput }, exclude: limits.exclude)
        var inputs: [(String, [UInt8])] = []
        var problems = listing.diagnostics
        for f in listing.files {
            do {
                inputs.append((f, try readFile(f, limits: limits)))
            } catch {
                problems.append(error)
            }
        }
        // `-`: standard input (`kubectl get … -o yaml | balancer compile - -o …`), named so in
        // messages; given twice it would be read once.
        if paths.contains(standardInput) {
            do {
                inputs.append((standardInputName, try readFile("/dev/stdin", limits: limits)))
            } catch {
                var e = error
                e.file = standardInputName
                problems.append(e)
            }
        }
        if problems.contains(where: { $0.severity == .error }) {
            // The files that could be read are still decoded, so one run reports every error.
            var all = problems
            do { _ = try load(contents: inputs) } catch { all += error.diagnostics }
            all.sort(by: Diagnostic.order)
            throw CompileFailure(diagnostics: all)
        }
        do {
            var (snapshot, diagnostics) = try load(contents: inputs)
            diagnostics = (problems + diagnostics).sorted(by: Diagnostic.order)
            return (snapshot, diagnostics)
        } catch {
            throw CompileFailure(diagnostics: (problems + error.diagnostics).sorted(by: Diagnostic.order))
        }
    }

    /// Loads in-memory files (path, bytes): what `load(paths:)` does after reading. Each file is
    /// split into documents and List items (ManifestSplitter); the pieces are parsed and decoded
    /// on every core, then merged in input order, so results never depend on scheduling. The
    /// split of a large file is itself a scan of every byte: pieces are decoded as it finds them.
    public static func load(contents: [(path: String, bytes: [UInt8])]) throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        try snapshot(of: decodeEach(contents))
    }
}

/// One decoded object of a chunk, before duplicates across the whole input are settled.
struct DecodedObject: Sendable {
    enum Value: Sendable {
        case service(Service), endpointSlice(EndpointSlice), node(Node), pod(Pod)
        case localRedirectPolicy(LocalRedirectPolicy), balancingPolicy(BalancingPolicy)
        case serviceCIDR(ServiceCIDRObject)
        case serviceImport(ServiceImport), serviceExport(ServiceExport)
    }

    var key: ObjectKey
    var source: ObjectSource
    var value: Value?
    var digest: [UInt8]
    var treePath: [Int]?
}

/// Parses and decodes one chunk. Positions are converted to the file's on the way out.
struct ChunkDecoder: Sendable {
    let chunk: ManifestChunk
    var objects: [DecodedObject] = []
    var diagnostics: [Diagnostic] = []
    var skipped: [String: Int] = [:]

    init(chunk: ManifestChunk) { self.chunk = chunk }

    /// `positions`: bytes that parse to the same tree with every node at its place in the file,
    /// when `bytes` do not (a List envelope whose items were cut out).
    mutating func decode(_ slice: ArraySlice<UInt8>, positions: (() -> [UInt8])? = nil) {
        let tree: ManifestTree
        do {
            if chunk.format == .json, let fast = slice.withUnsafeBufferPointer({ JSONFastReader.parse($0, file: chunk.file) }) {
                // The common case, read in place (JSONFastReader skips indentation itself).
                tree = fast
            } else if chunk.format == .json {
                // jansson's turn (JSONFastReader refused): a real number, or a problem to report.
                let bytes = Array(slice)
                // kubectl indents JSON by four spaces: half of a dump is whitespace, which jansson
                // reads a byte at a time. Parse a compacted copy; on a syntax error parse the
                // original again so the position is the file's.
                if JSONCompactor.isIndented(bytes) {
                    do {
                        tree = try ManifestReader.parseJSONWithJansson(JSONCompactor.compact(bytes), file: chunk.file)
                    } catch {
                        tree = try ManifestReader.parseJSONWithJansson(bytes, file: chunk.file)
                    }
                } else {
                    tree = try ManifestReader.parseJSONWithJansson(bytes, file: chunk.file)
                }
            } else {
                tree = try ManifestReader.parseYAML(slice, file: chunk.file)
            }
        } catch {
            var failure = error
            if let positions {
                do { _ = try ManifestReader.parseJSON(positions(), file: chunk.file) } catch { failure = error }
            }
            if failure.line == 0, chunk.format == .json {
                // jansson reports some errors (nesting too deep) without a position; libyaml
                // reads JSON too and finds the same problem at its place.
                do {
                    _ = try ManifestReader.parseYAML(positions?() ?? Array(slice), file: chunk.file)
                } catch {
                    if error.line > 0 { failure = error }
                }
            }
            let (l, c) = chunk.filePosition(line: failure.line, column: failure.column)
            diagnostics.append(Diagnostic(.error, file: chunk.file, line: l, column: c, message: failure.message))
            return
        }
        for doc in tree.documents {
            addNode(tree, doc, in: chunk.isListItem ? ListContext(kind: chunk.listKind.map { $0 + "List" } ?? "List", apiVersion: chunk.listAPIVersion) : nil,
                    envelopeOnly: chunk.excluded != nil)
        }
        locate(positions?() ?? Array(slice))
    }

    /// The List an object came in: items of a typed list (`ServiceList`) carry no kind or
    /// apiVersion on the wire and take the list's; any they do carry must agree with it.
    struct ListContext {
        var kind: String
        var apiVersion: String?
        var itemKind: String? { kind == "List" ? nil : String(kind.dropLast(4)) }
    }

    /// A document or list item: a List (its items are decoded in turn, nested Lists included) or
    /// one object. `envelopeOnly`: the list's own members are checked, its items were split off.
    private mutating func addNode(_ tree: ManifestTree, _ root: NodeID, in list: ListContext?, envelopeOnly: Bool = false) {
        var d = ObjectDecoder(tree: tree, root: root, object: list.map { "\($0.kind) item" } ?? "")
        guard tree.kind(root) == .mapping else {
            d.error(root, "expected a Kubernetes object (a mapping), found \(d.describe(root))")
            diagnostics += d.diagnostics
            return
        }
        let ownKind = d.typeString(root, "kind")
        let ownAPIVersion = d.typeString(root, "apiVersion")
        if let list, let itemKind = list.itemKind {
            if let k = ownKind, k != itemKind, let n = d.field(root, "kind") {
                d.error(n, "an item of kind \(shown(k)) in a \(list.kind) (its items are \(itemKind)s)")
            }
            if let a = ownAPIVersion, let expected = list.apiVersion, a != expected, let n = d.field(root, "apiVersion") {
                d.error(n, "an item of apiVersion \(shown(a)) in a \(list.kind) of apiVersion \(shown(expected))")
            }
        }
        // A document that is no object at all (a Helm values file, a README in YAML): a note, so
        // one stray file in a GitOps tree stops nothing. One with half an identity is an error.
        if d.diagnostics.isEmpty, list == nil, ownKind == nil, ownAPIVersion == nil {
            d.report(.note, root, "not a Kubernetes object (no apiVersion or kind): skipped")
            diagnostics += d.diagnostics
            skipped["(no kind)", default: 0] += 1
            return
        }
        if d.diagnostics.isEmpty, ownKind == nil, list?.itemKind == nil { d.missing(root, "kind") }
        if d.diagnostics.isEmpty, ownKind == "", let n = d.field(root, "kind") { d.error(n, "must not be empty") }
        guard d.diagnostics.isEmpty, let kind = ownKind ?? list?.itemKind else {
            diagnostics += d.diagnostics
            return
        }
        if kind == "List" || (kind.hasSuffix("List") && tree.value(root, "items") != nil) {
            d.object = kind
            guard let items = d.field(root, "items") else { return }
            guard tree.kind(items) == .sequence else {
                d.error(items, "expected a list, found \(d.describe(items))")
                diagnostics += d.diagnostics
                return
            }
            if envelopeOnly { return }
            let context = ListContext(kind: kind, apiVersion: kind == "List" ? nil : ownAPIVersion ?? list?.apiVersion)
            for item in tree.items(items) { addNode(tree, item, in: context) }
            return
        }
        addObject(tree, root, d, kind: kind, apiVersion: ownAPIVersion ?? (list?.itemKind != nil ? list?.apiVersion : nil))
    }

    private mutating func addObject(_ tree: ManifestTree, _ root: NodeID, _ decoder: ObjectDecoder, kind: String, apiVersion: String?) {
        var d = decoder
        d.object = ""
        let namespaced: Bool
        let expectedAPI: String
        var names = ObjectDecoder.NameRule.dns1123Subdomain
        switch kind {
        case "Service": namespaced = true; expectedAPI = "v1"; names = .dns1035Label
        case "Pod": namespaced = true; expectedAPI = "v1"
        case "Node": namespaced = false; expectedAPI = "v1"
        case "EndpointSlice": namespaced = true; expectedAPI = "discovery.k8s.io/v1"
        case "LocalRedirectPolicy", "BalancingPolicy": namespaced = false; expectedAPI = "balancing.elf.io/v1beta1"
        case "ServiceCIDR": namespaced = false; expectedAPI = "networking.k8s.io/v1"
        case "ServiceImport", "ServiceExport": namespaced = true; expectedAPI = "multicluster.x-k8s.io/v1alpha1"; names = .dns1035Label
        default:
            skipped[kind, default: 0] += 1
            diagnostics += d.diagnostics
            return
        }
        guard apiVersion == expectedAPI else {
            d.report(.warning, root, "\(kind) of apiVersion \(apiVersion.map { shown($0) } ?? "(none)") is not read (expected \(expectedAPI)); skipped", field: "apiVersion")
            d.diagnostics[d.diagnostics.count - 1].object = kind
            diagnostics += d.diagnostics
            skipped[kind, default: 0] += 1
            return
        }
        guard let meta = d.meta(namespaced: namespaced, nameRule: names) else {
            for i in d.diagnostics.indices where d.diagnostics[i].object.isEmpty { d.diagnostics[i].object = kind }
            diagnostics += d.diagnostics
            return
        }
        let key = ObjectKey(kind: kind, namespace: meta.namespace, name: meta.name)
        d.object = key.description
        var m = tree.mark(root)
        if m.line == 0 && tree.parent(root) == nil {
            // A JSON chunk whose root is the object: the chunk's own position.
            m = SourceMark(line: 1, column: 1)
        }
        let (l, c) = chunk.filePosition(line: m.line, column: m.column)
        let source = ObjectSource(file: tree.file, line: l, column: c)

        let errorsBefore = d.diagnostics.filter { $0.severity == .error }.count
        var value: DecodedObject.Value?
        switch kind {
        case "Service": value = d.service(meta, source).map(DecodedObject.Value.service)
        case "EndpointSlice": value = d.endpointSlice(meta, source).map(DecodedObject.Value.endpointSlice)
        case "Node": value = .node(d.node(meta, source))
        case "Pod": value = .pod(d.pod(meta, source))
        case "LocalRedirectPolicy": value = d.localRedirectPolicy(meta, source).map(DecodedObject.Value.localRedirectPolicy)
        case "BalancingPolicy": value = d.balancingPolicy(meta, source).map(DecodedObject.Value.balancingPolicy)
        case "ServiceCIDR": value = d.serviceCIDR(meta, source).map(DecodedObject.Value.serviceCIDR)
        case "ServiceImport": value = d.serviceImport(meta, source).map(DecodedObject.Value.serviceImport)
        case "ServiceExport": value = .serviceExport(ServiceExport(meta: meta, source: source))
        default: break
        }
        if d.diagnostics.filter({ $0.severity == .error }).count != errorsBefore { value = nil }
        objects.append(DecodedObject(key: key, source: source, value: value,
                                     digest: value == nil ? [] : objectDigest(tree, root, kind: kind, apiVersion: expectedAPI),
                                     treePath: m.line == 0 ? tree.path(root) : nil))
        if m.line == 0 && d.diagnostics.isEmpty { objects[objects.count - 1].treePath = nil }
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

    /// Converts marks to file positions. JSON trees have no marks (jansson keeps none): the chunk
    /// is parsed again with libyaml, which reads JSON, only when it has something to report, and
    /// the node is found by its path.
    mutating func locate(_ bytes: @autoclosure () -> [UInt8]) {
        let needsYAML = diagnostics.contains { $0.treePath != nil } || objects.contains { $0.treePath != nil }
        let marked = needsYAML ? try? ManifestReader.parseYAML(bytes(), file: chunk.file) : nil
        func position(_ path: [Int]?) -> (Int, Int)? {
            guard let path, let t = marked, let n = t.node(atPath: path) else { return nil }
            let m = t.mark(n)
            return chunk.filePosition(line: m.line, column: m.column)
        }
        for i in diagnostics.indices {
            if let p = diagnostics[i].treePath {
                if let (l, c) = position(p) { diagnostics[i].line = l; diagnostics[i].column = c }
                diagnostics[i].treePath = nil
            } else if diagnostics[i].line > 0 {
                (diagnostics[i].line, diagnostics[i].column) = chunk.filePosition(line: diagnostics[i].line, column: diagnostics[i].column)
            }
        }
        for i in objects.indices where objects[i].treePath != nil {
            if let (l, c) = position(objects[i].treePath) { objects[i].source.line = l; objects[i].source.column = c }
            objects[i].treePath = nil
        }
    }
}

/// Merges decoded chunks in input order: settles duplicates and builds the snapshot.
struct SnapshotBuilder {
    var snapshot = Snapshot()
    var diagnostics: [Diagnostic] = []
    var seen: [ObjectKey: ObjectSource] = [:]

    mutating func merge(_ r: ChunkDecoder) {
        diagnostics += r.diagnostics
        for (k, n) in r.skipped { snapshot.counts["skipped/\(k)", default: 0] += n }
        for o in r.objects {
            if let first = seen[o.key] {
                let at = first.line > 0 ? "\(first.file):\(first.line):\(first.column)" : first.file
                diagnostics.append(Diagnostic(.error, file: o.source.file, line: o.source.line, column: o.source.column,
                                              object: o.key.description, message: "duplicate object: already defined at \(at)"))
                continue
            }
            seen[o.key] = o.source
            guard let v = o.value else { continue }
            switch v {
            case .service(let x): snapshot.services.append(x)
            case .endpointSlice(let x): snapshot.endpointSlices.append(x)
            case .node(let x): snapshot.nodes.append(x)
            case .pod(let x): snapshot.pods.append(x)
            case .localRedirectPolicy(let x): snapshot.localRedirectPolicies.append(x)
            case .balancingPolicy(let x): snapshot.balancingPolicies.append(x)
            case .serviceCIDR(let x): snapshot.serviceCIDRs.append(x)
            case .serviceImport(let x): snapshot.serviceImports.append(x)
            case .serviceExport(let x): snapshot.serviceExports.append(x)
            }
            snapshot.counts[o.key.kind, default: 0] += 1
            snapshot.objectDigests.append(o.digest)
        }
    }

    mutating func finish() throws(CompileFailure) -> (Snapshot, [Diagnostic]) {
        diagnostics.sort(by: Diagnostic.order)
        if diagnostics.contains(where: { $0.severity == .error }) {
            throw CompileFailure(diagnostics: diagnostics)
        }
        return (snapshot, diagnostics)
    }
}
