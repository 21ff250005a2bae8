import Crypto
import Manifests
import MapImage

/// What a compile produced: the image's contents, the diagnostics that did not stop it (warnings
/// and notes), and where the time went.
public struct CompileResult: Sendable {
    public var contents: ImageContents
    public var diagnostics: [Diagnostic]
    /// The contents do not fit the datapath (the errors say where): no image of them can be
    /// written, not even with --keep-going.
    public var exceedsCapacity = false
}

/// Snapshot → image contents: a pure function. The same objects give the same contents whatever
/// their order; ids are stable across unrelated changes.
/// What a compile may be told beyond its inputs.
public struct CompileOptions: Sendable {
    /// Redirects per second per node for LocalRedirectPolicies that set no redirectRateLimit;
    /// 0: none.
    public var defaultRedirectRateLimit: UInt32
    /// Service CIDRs given on the command line (`--service-cidr`), besides ServiceCIDR objects.
    public var serviceCIDRs: [IPPrefix]
    /// `--allowed-external-cidrs`: the only addresses externalIPs, LoadBalancer ingress IPs and
    /// policy addresses may take (nil: any). At the socket a frontend captures every connect of
    /// every process and pod to it, so whoever may create a Service could otherwise take any
    /// address's traffic (CVE-2020-8554); one outside is an error, left out under --keep-going.
    public var allowedExternalCIDRs: [IPPrefix]?

    public init(defaultRedirectRateLimit: UInt32 = 0, serviceCIDRs: [IPPrefix] = [], allowedExternalCIDRs: [IPPrefix]? = nil) {
        self.defaultRedirectRateLimit = defaultRedirectRateLimit
        self.serviceCIDRs = serviceCIDRs
        self.allowedExternalCIDRs = allowedExternalCIDRs
    }

    /// The reason `address` may not be a frontend, or nil when it may.
    func refusal(of address: IPAddress) -> String? {
        guard let allowed = allowedExternalCIDRs, !allowed.contains(where: { $0.contains(address) }) else { return nil }
        return "\(address) is outside --allowed-external-cidrs (\(allowed.map(\.description).joined(separator: ", "))): refused, as it would capture every connect to it on this host (CVE-2020-8554)"
    }
}

public enum Compiler {
    /// Errors in the result's diagnostics mean objects (or policy frontends) were left out; the
    /// contents are still the best image of the rest (what `compile --keep-going` writes).
    public static func compile(_ snapshot: Snapshot, inputDiagnostics: [Diagnostic] = [],
                               options: CompileOptions = CompileOptions()) -> CompileResult {
        compile(snapshot, inputDiagnostics: inputDiagnostics, options: options, retainPlans: false).0
    }

    /// A full compile, and an incremental compiler that follows changes from it (nil when this
    /// snapshot has something it does not follow: then every change takes a full compile).
    public static func compileIncrementally(_ snapshot: Snapshot, inputDiagnostics: [Diagnostic] = [],
                                            options: CompileOptions = CompileOptions()) -> (CompileResult, IncrementalCompiler?) {
        let (result, sc) = compile(snapshot, inputDiagnostics: inputDiagnostics, options: options, retainPlans: true)
        return (result, IncrementalCompiler(sc, contents: result.contents, snapshot: snapshot, options: options))
    }

    static func compile(_ snapshot: Snapshot, inputDiagnostics: [Diagnostic], options: CompileOptions,
                        retainPlans: Bool) -> (CompileResult, ServiceCompiler) {
        var sc = ServiceCompiler(snapshot: snapshot)
        sc.options = options
        sc.retainPlans = retainPlans

        // Service ids: the seed system's annotation is honoured; otherwise derived from the name.
        let services = snapshot.services
        let serviceNames = services.map { "\($0.meta.namespace)/\($0.meta.name)" }
        let hashes = services.map { ServiceCompiler.serviceHash($0.meta.namespace, $0.meta.name) }
        var explicit: [Int: UInt32] = [:]
        for (i, s) in services.enumerated() {
            guard let a = s.meta.annotations["balancing.elf.io/serviceId"] else { continue }
            if let v = UInt32(a), v != 0 {
                explicit[i] = v
            } else {
                sc.diagnostics.append(Diagnostic(.warning, file: s.source.file, line: s.source.line, column: s.source.column,
                                                 object: "Service \(serviceNames[i])", field: "metadata.annotations",
                                                 message: "balancing.elf.io/serviceId \(shown(a)) is not a non-zero 32-bit number; a derived id is used"))
            }
        }
        var idConflicts: [Diagnostic] = []
        let ids = StableID.assignPositions(serviceNames, hashes: hashes, explicit: explicit) { first, second, id in
            let s = services[second]
            idConflicts.append(Diagnostic(.warning, file: s.source.file, line: s.source.line, column: s.source.column,
                                          object: "Service \(serviceNames[second])", field: "metadata.annotations",
                                          message: "balancing.elf.io/serviceId \(id) is already the id of Service \(serviceNames[first]); a derived id is used"))
        }
        var serviceIDs: [String: UInt32] = [:]
        serviceIDs.reserveCapacity(services.count)
        for (i, name) in serviceNames.enumerated() { serviceIDs[name] = ids[i] }
        sc.diagnostics += idConflicts
        sc.compileServices(serviceIDs: serviceIDs)
        sc.compilePolicies(defaultRedirectRateLimit: options.defaultRedirectRateLimit)
        sc.diagnostics += withoutNodePorts(snapshot, clusters: sc.clusters)
        if snapshot.clusters.isEmpty {
            for i in snapshot.serviceImports {
                sc.diagnostics.append(Diagnostic(.note, file: i.source.file, line: i.source.line, column: i.source.column,
                                                 object: "ServiceImport \(i.meta.namespace)/\(i.meta.name)",
                                                 message: "read only when clusters are named (compile --cluster NAME=PATH); ignored"))
            }
        }
        return (assemble(sc, snapshot: snapshot, inputDiagnostics: inputDiagnostics, serviceCIDRs: options.serviceCIDRs), sc)
    }

    static func assemble(_ sc: ServiceCompiler, snapshot: Snapshot, inputDiagnostics: [Diagnostic], serviceCIDRs: [IPPrefix]) -> CompileResult {
        let catalogue = sc.nodes
        // Nodes: Node objects, and names that only endpoints or hints mention.
        var entries = catalogue.entries
        for name in sc.nodeNames where entries[name] == nil {
            entries[name] = NodeCatalogue.Entry(name: name, zone: nil, addresses: [], fromObject: false, explicitID: nil)
        }
        let nodeNames = Array(entries.keys)
        var explicitNodes: [String: UInt32] = [:]
        for (name, e) in entries { if let id = e.explicitID { explicitNodes[name] = id } }
        var diagnostics = inputDiagnostics + sc.diagnostics
        let nodeIDs = StableID.assign(nodeNames, explicit: explicitNodes, hash: { StableID.hash("node/\($0)") }) { first, second, id in
            diagnostics.append(Diagnostic(.warning, file: nil, object: "Node \(second)", field: "metadata.annotations",
                                          message: "balancing.elf.io/nodeId \(id) is already the id of Node \(first); a derived id is used"))
        }
        var zoneNames = catalogue.zoneNames
        for s in sc.sets where s.scope == .zone { zoneNames.insert(s.scopeName) }
        let zoneIDs = StableID.assign(Array(zoneNames), hash: { StableID.hash("zone/\($0)") })

        var contents = ImageContents()
        var nodeInfos: [NodeInfo] = []
        for (name, e) in entries {
            guard let id = nodeIDs[name] else { continue }
            contents.nodes.append(e.imageNode(id: id, zoneIDs: zoneIDs))
            var info = NodeInfo(id: id, name: name, zone: e.zone, addresses: e.addresses.map { "\($0.address)" }, object: e.fromObject)
            info.cluster = sc.clusters.cluster(of: name)
            nodeInfos.append(info)
        }
        let nodeIDByIndex = sc.nodeNames.map { nodeIDs[$0] ?? 0 }
        for (addr, name) in catalogue.ownerOfAddress {
            if let id = nodeIDs[name] { contents.nodeAddresses.append(NodeAddress(address: addr, nodeID: id, cluster: sc.clusters.id(of: name))) }
        }

        // Backends: every endpoint in order of (id hash, identity), so that the same address is
        // adjacent wherever it was listed and identities are met in the dense-id order. Only an
        // identity some set uses becomes a backend; its node is the least name it was listed under.
        let endpoints = sc.endpoints, hashes = sc.endpointHashes
        let count = endpoints.count
        var inSet = [Bool](repeating: false, count: count)
        for s in sc.sets { for b in s.backends { inSet[Int(b)] = true } }
        var packed = (0..<count).map { UInt64(hashes[$0]) << 32 | UInt64($0) }
        packed.sort()
        var order = packed.map { Int($0 & 0xFFFF_FFFF) }
        var runStart = 0
        for k in stride(from: 1, through: count, by: 1) where k == count || hashes[order[k]] != hashes[order[runStart]] {
            if k - runStart > 1 { order[runStart..<k].sort { endpoints[$0] < endpoints[$1] } }
            runStart = k
        }
        var backendID = [UInt32](repeating: 0, count: count)
        var allocator = DenseIDAllocator()
        var k = 0
        while k < count {
            let first = order[k]
            var j = k + 1
            while j < count && hashes[order[j]] == hashes[first] && endpoints[order[j]] == endpoints[first] { j += 1 }
            let same = order[k..<j]
            if same.contains(where: { inSet[$0] }) {
                let id = allocator.next(hashes[first])
                var node: Int32 = -1
                for m in same {
                    let n = sc.endpointNodes[m]
                    if n >= 0 && n != node && (node < 0 || sc.nodeNames[Int(n)] < sc.nodeNames[Int(node)]) { node = n }
                    backendID[m] = id
                }
                let identity = endpoints[first]
                contents.backends.append(Backend(id: id, address: identity.address, proto: identity.proto,
                                                 nodeID: node >= 0 ? nodeIDByIndex[Int(node)] : 0, cluster: identity.cluster))
            }
            k = j
        }

        // Sets.
        contents.sets.reserveCapacity(sc.sets.count)
        for s in sc.sets {
            let key = SetKey(groupID: s.groupID, scope: s.scope, scopeName: s.scopeName, zoneIDs: zoneIDs, nodeIDs: nodeIDs)
            contents.sets.append(BackendSet(key: key, flags: s.flags, backends: s.backends.map { backendID[Int($0)] }))
        }

        // Frontends: ids by the same collision rule (keys are unique: the dense path).
        var owners: [UInt32: String] = [:]
        if !sc.clusters.isEmpty { for g in sc.groups { owners[g.id] = g.ownerName.contains(" ") ? g.ownerName : "Service \(g.ownerName)" } }
        let frontendEntries = ClusterFrontends.fold(sc.mergedFrontends(), clusters: sc.clusters, owners: owners, diagnostics: &diagnostics)
        let frontendIDs = StableID.assignDense(frontendEntries.map(\.key)) { $0.stableHash }
        contents.frontends.reserveCapacity(frontendEntries.count)
        for (k, entry) in frontendEntries.enumerated() {
            var f = entry
            f.id = frontendIDs[k]
            contents.frontends.append(f)
        }
        contents.vips = sc.vips.values.map(\.0)

        // Table order is the encoder's business (it sorts every table by key bytes).
        contents.vips.sort { $0.address < $1.address }
        // Service CIDRs: ServiceCIDR objects and --service-cidr, each range once.
        contents.serviceCIDRs = Set(serviceCIDRs + snapshot.serviceCIDRs.flatMap(\.cidrs)).sorted()
        contents.sourceRanges = Set(sc.sourceRanges).sorted()

        diagnostics.sort(by: Diagnostic.order)
        // Sorted by their first eight bytes (as a big-endian word), whole bytes on a tie.
        let digestsIn = snapshot.objectDigests
        let prefixes = digestsIn.map { d in d.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        let digests = digestsIn.indices.sorted { a, b in
            prefixes[a] != prefixes[b] ? prefixes[a] < prefixes[b] : digestsIn[a].lexicographicallyPrecedes(digestsIn[b])
        }.map { digestsIn[$0] }
        var hasher = SHA256()
        for d in digests { hasher.update(data: d) }
        let inputDigest = Hex.bytes(hasher.finalize())

        contents.metadata = ImageMetadata(
            inputs: InputSummary(objects: digests.count, digest: inputDigest),
            counts: snapshot.counts,
            nodes: nodeInfos.sorted { $0.name < $1.name },
            zones: zoneIDs.map { ZoneInfo(id: $0.value, name: $0.key) }.sorted { $0.name < $1.name },
            // Both are produced in service-name order (ports in spec order, then family).
            services: sc.services,
            groups: sc.groups,
            diagnostics: diagnostics.map(\.info).sorted { ($0.object, $0.field, $0.severity, $0.message) < ($1.object, $1.field, $1.severity, $1.message) })
        if !sc.clusters.isEmpty {
            contents.metadata.clusters = sc.clusters.names.prefix(ABI.maxClusters).enumerated().map { ClusterInfo(id: UInt8($0.offset + 1), name: $0.element) }
        }
        var result = CompileResult(contents: contents, diagnostics: diagnostics)
        // Last: the errors name objects through the metadata, and no image of them is written.
        let capacity = capacityDiagnostics(contents, snapshot: snapshot)
        if !capacity.isEmpty {
            result.diagnostics += capacity
            result.exceedsCapacity = true
        }
        return result
    }
}

extension Compiler {
    /// One note per named cluster listing its proxied Services without a NodePort: a host that
    /// reaches that cluster through NodePorts (`--cluster-mode NAME=nodeport`) cannot reach them.
    static func withoutNodePorts(_ snapshot: Snapshot, clusters: ClusterIndex) -> [Diagnostic] {
        guard !clusters.isEmpty else { return [] }
        var byCluster: [String: [String]] = [:]
        for svc in snapshot.services where ServiceCompiler.skipReason(svc) == nil && !svc.ports.contains(where: { $0.nodePort != nil }) {
            guard let c = clusters.cluster(of: svc.meta.namespace) else { continue }
            byCluster[c, default: []].append("\(Clusters.local(svc.meta.namespace))/\(svc.meta.name)")
        }
        return byCluster.keys.sorted().map { c in
            let names = (byCluster[c] ?? []).sorted()
            let shown = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", …" : "")
            return Diagnostic(.note, file: nil, object: "cluster \(c)", field: "",
                              message: "\(names.count) Service\(names.count == 1 ? " has" : "s have") no NodePort, so a host that reaches cluster \(c) through NodePorts (--cluster-mode \(c)=nodeport) cannot reach \(names.count == 1 ? "it" : "them"): \(shown)")
        }
    }
}

extension Diagnostic {
    /// The form kept in an image: no file paths (images carry no paths).
    var info: DiagnosticInfo {
        DiagnosticInfo(severity: severity.rawValue, object: object, field: field, message: message)
    }
}
