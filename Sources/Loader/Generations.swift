import CBalancerABI
import Dispatch
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The datapath's pinned maps and their two generations.
///
/// A load fills the standby generation with new inner maps, inserts them into the outer
/// array-of-maps, and only then flips `bl_config.active_gen` in one map update: a program that
/// reads the generation once per call sees the whole old image or the whole new one. The old
/// generation stays in place as the rollback target. Nothing is touched before the image has been
/// verified (decoding a MapImage verifies everything), and a failure before the flip leaves the
/// live generation serving.
///
/// It opens the maps `balancer attach` (Attachment) pinned under `<pin dir>/maps/<name>`, through
/// a MapBackend: the kernel's (KernelMaps) or, in tests, memory (MemoryMaps). Images are written
/// by GenerationWriter; `load` is a one-shot writer.
public struct Datapath: Sendable {
    public let pinDir: String
    let backend: any MapBackend
    let outer: [ImageTable: any MapHandle]
    let config: any MapHandle
    /// The image digest each generation holds (loader-only; see bl_generation_value).
    let generations: any MapHandle

    static let outerNames: [ImageTable: String] = [
        .frontends: "bl_frontends", .vips: "bl_vips", .nodeAddresses: "bl_node_addrs", .nodes: "bl_nodes",
        .sets: "bl_sets", .slots: "bl_slots", .members: "bl_members", .backends: "bl_backends",
        .serviceCIDRs: "bl_service_cidrs", .sourceRanges: "bl_source_ranges",
    ]

    /// The datapath pinned under `pinDir` in the kernel.
    public init(pinDir: String) throws(BPFError) {
        try self.init(pinDir: pinDir, backend: KernelMaps())
    }

    public init(pinDir: String, backend: any MapBackend) throws(BPFError) {
        self.pinDir = pinDir
        self.backend = backend
        guard backend.isPinDirectory(pinDir) == true else {
            throw BPFError("open", pinDir, message: "not a directory on a bpffs (mount one with `mount -t bpf bpf DIR`)")
        }
        if let refusal = backend.pinDirectoryRefusal(pinDir) { throw BPFError("refuse", pinDir, message: refusal) }
        var outer: [ImageTable: any MapHandle] = [:]
        for (table, name) in Datapath.outerNames {
            let path = "\(pinDir)/maps/\(name)"
            do { outer[table] = try backend.pinned(path) } catch {
                // The rest pinned, this table not: an older version attached this datapath.
                if error.code == ENOENT, (try? backend.pinned("\(pinDir)/maps/bl_config")) != nil {
                    throw BPFError("open", path, message: "missing: \(pinDir) was attached by an older version of balancer, whose programs "
                                   + "do not read the \(table) table; detach and attach with this version")
                }
                throw error
            }
        }
        self.outer = outer
        config = try backend.pinned("\(pinDir)/maps/bl_config")
        let path = "\(pinDir)/maps/bl_generations"
        if let existing = try? backend.pinned(path) {
            generations = existing
        } else {
            let created = try backend.createArray(name: "bl_generations", valueSize: MemoryLayout<bl_generation_value>.size, maxEntries: 2)
            try created.pin(path)
            generations = created
        }
    }

    /// The SHA-256 of the image a generation holds (nil when unknown, empty or being filled).
    public func imageDigest(_ generation: UInt32) throws(BPFError) -> [UInt8]? {
        guard outer.values.allSatisfy({ $0.hasInner(generation) }) else { return nil }
        let d = try generationRecord(generation)
        guard let d, d != Datapath.unknownDigest, d != Datapath.filling else { return nil }
        return d
    }

    /// Whether a load into this generation was interrupted before it completed.
    public func isIncomplete(_ generation: UInt32) throws(BPFError) -> Bool {
        try generationRecord(generation) == Datapath.filling
    }

    /// A generation's `bl_generation_value`: an image digest, `filling` or `unknownDigest`.
    func generationRecord(_ generation: UInt32) throws(BPFError) -> [UInt8]? {
        try generations.lookup(key: arrayKey(generation), valueSize: MemoryLayout<bl_generation_value>.size)
    }

    func setGenerationRecord(_ generation: UInt32, _ record: [UInt8]) throws(BPFError) {
        try generations.update(key: arrayKey(generation), value: record)
    }

    public struct Config: Sendable, Equatable {
        public var activeGeneration: UInt32
        public var nodeID: UInt32
        public var hostMode: HostMode
        /// The host's cluster (0: outside every cluster) and the clusters in mode nodeport.
        public var clusterID: UInt8 = 0
        public var nodeportClusters: [UInt64] = [0, 0, 0, 0]

        init(activeGeneration: UInt32, nodeID: UInt32, hostMode: HostMode) {
            self.activeGeneration = activeGeneration
            self.nodeID = nodeID
            self.hostMode = hostMode
        }

        init(activeGeneration: UInt32, placement p: HostPlacement) {
            self.init(activeGeneration: activeGeneration, nodeID: p.nodeID, hostMode: p.hostMode)
            clusterID = p.clusterID
            nodeportClusters = p.nodeportWords
        }
    }

    public func readConfig() throws(BPFError) -> Config {
        Config(structValue(bl_config(), try config.lookup(key: arrayKey(0), valueSize: MemoryLayout<bl_config>.size)))
    }

    /// The flip (and the node and host mode): one update of one array element.
    func writeConfig(_ c: Config) throws(BPFError) {
        try config.update(key: arrayKey(0), value: structBytes(c.abi))
    }

    public struct LoadReport: Sendable {
        public var generation: UInt32
        public var digestHex: String
        public var records: [String: Int]
        /// The image was already live with the same node and host mode: nothing was written.
        public var unchanged: Bool = false
        /// skipRedirectFromBackend rules' (policy id, backend address) on this node (see syncSkips).
        public var skipTargets: [(owner: UInt32, address: IPAddress)] = []
        /// Seconds spent per step ("fill <table>", "wait for verification", "publish", "flip"), in order.
        public var phases: [(String, Double)] = []
        /// How the generation was written.
        public var method: Method = .fresh
        /// Records written (inserted or replaced) and deleted in the generation made live; a
        /// fresh fill writes every record.
        public var written = 0
        public var deleted = 0
        /// With `.delta`: tables filled into fresh maps instead (their records outgrew the
        /// maps' capacity).
        public var refilled: [String] = []
        /// Whether `skipTargets` may differ from the previous load's (always true after a whole
        /// image; a delta says it only when it touches what they depend on).
        public var skipTargetsChanged = true
        /// The last RCU grace period this loader waited for, measured in the background (seconds).
        public var gracePeriod: Double?

        public enum Method: String, Sendable {
            /// New maps filled with every record, published into the standby generation.
            case fresh = "fresh fill"
            /// Only the records that differ written into the standby generation's maps.
            case delta
            /// Nothing written to the tables (the state was already live).
            case unchanged
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Loads an image with a writer of its own (`balancer load`): verified completely before
    /// anything the datapath can see is written; the standby generation is filled with fresh
    /// maps sized to the image and flipped live; loading the live image again changes nothing
    /// (only the config when node or host mode differ). See GenerationWriter.
    public func load(imageBytes bytes: [UInt8], node: String?, hostMode: HostMode) throws(LoadError) -> LoadReport {
        try load(imageBytes: bytes, host: HostSettings(node: node, hostMode: hostMode))
    }

    public func load(imageBytes bytes: [UInt8], host: HostSettings) throws(LoadError) -> LoadReport {
        try GenerationWriter(datapath: self, host: host, headroom: 0).load(image: bytes)
    }

    /// Each table's records must have the sizes of the live generation's maps (when there is one).
    func checkRecordSizes(_ header: ImageHeader, generation: UInt32) throws(BPFError) {
        for section in header.sections {
            guard let table = ImageTable(rawValue: section.kind), let o = outer[table], let live = try o.inner(generation) else { continue }
            let (k, v) = try live.recordSizes()
            guard k == section.keySize && v == section.valueSize else {
                throw BPFError("load", pinDir, message: "the image's \(table) records are \(section.keySize)+\(section.valueSize) bytes, "
                               + "the live datapath's are \(k)+\(v): this datapath speaks another ABI (re-attach it with this balancer)")
            }
        }
    }

    /// A generation's tables in fresh maps that no program can reach yet.
    struct Standby {
        var generation: UInt32
        var inners: [(ImageTable, any MapHandle)]
        var phases: [(String, Double)]
    }

    /// One table's records for a fresh map: `records` holds `count` records of key then value.
    struct FillSource: Sendable {
        var table: ImageTable
        var keySize: Int
        var valueSize: Int
        var count: Int
        var capacity: Int
        var records: ArraySlice<UInt8>
    }

    func fill(generation: UInt32, sources: [FillSource]) throws(BPFError) -> Standby {
        var out = Standby(generation: generation, inners: [], phases: [])
        var t = Datapath.now()
        // Preallocated: inserting into a preallocated hash takes an element from a free list
        // instead of allocating one (a third of the time, measured). Preallocating is itself
        // work (zeroed pages), spread over the cores.
        let created = Mutex<[Int: Result<any MapHandle, BPFError>]>([:])
        DispatchQueue.concurrentPerform(iterations: sources.count) { i in
            let source = sources[i]
            let r = Result { () throws(BPFError) -> any MapHandle in
                let name = "bl_g\(generation)_\(source.table.rawValue)", capacity = max(source.capacity, 1)
                return source.table == .serviceCIDRs || source.table == .sourceRanges
                    ? try backend.createLPM(name: name, keySize: source.keySize, valueSize: source.valueSize, maxEntries: capacity)
                    : try backend.createHash(name: name, keySize: source.keySize, valueSize: source.valueSize, maxEntries: capacity)
            }
            created.withLock { $0[i] = r }
        }
        for (i, source) in sources.enumerated() {
            guard let r = created.withLock({ $0[i] }) else { continue }
            out.inners.append((source.table, try r.get()))
        }
        out.phases.append(("create", Datapath.now() - t))
        t = Datapath.now()
        // Insertion is the kernel's work, per record; chunks of every table go to every core.
        let chunkRecords = 32768
        var chunks: [(table: Int, first: Int, count: Int)] = []
        for (i, source) in sources.enumerated() {
            var first = 0
            while first < source.count {
                chunks.append((i, first, min(chunkRecords, source.count - first)))
                first += chunkRecords
            }
        }
        let failures = Mutex<[BPFError]>([])
        let inners = out.inners
        let chunkList = chunks
        DispatchQueue.concurrentPerform(iterations: chunks.count) { c in
            let chunk = chunkList[c]
            let source = sources[chunk.table]
            let stride = source.keySize + source.valueSize
            let from = source.records.startIndex + chunk.first * stride
            do throws(BPFError) {
                try inners[chunk.table].1.updateRecords(source.records[from..<(from + chunk.count * stride)],
                                                        keySize: source.keySize, valueSize: source.valueSize)
            } catch {
                failures.withLock { $0.append(error) }
            }
        }
        if let first = failures.withLock({ $0.first }) { throw first }
        out.phases.append(("fill", Datapath.now() - t))
        return out
    }

    /// Makes the previous generation live again.
    public func rollback() throws(BPFError) -> UInt32 {
        var c = try readConfig()
        let previous = c.activeGeneration ^ 1
        for (table, o) in outer where !o.hasInner(previous) {
            throw BPFError("rollback", pinDir, message: "generation \(previous) has no \(table) table: there is nothing to roll back to")
        }
        if try isIncomplete(previous) {
            throw BPFError("rollback", pinDir, message: "generation \(previous) is incomplete (a load was interrupted); load an image instead")
        }
        c.activeGeneration = previous
        try writeConfig(c)
        return previous
    }

    public struct Status: Sendable {
        public var config: Config
        /// Records per table in the live generation; nil when that generation has no table.
        public var tables: [String: Int]
        public var previousGeneration: Bool
        /// Summed over CPUs, by frontend id.
        public var counters: [UInt32: Counters]
        /// Link pins: "cg<cgroup inode>-<program>".
        public var links: [String]
        /// SHA-256 (hex) of the live image, when balancer loaded it.
        public var liveImage: String?
        /// skipRedirectFromBackend namespace entries (netns cookie, policy id) in bl_skip.
        public var skipEntries: Int = 0
        /// `attach --host-netns-only`: the cookie of the only network namespace translated.
        public var hostNetnsOnly: UInt64?
        /// Decisions by reason (bl_reasons), summed over CPUs; empty in a pin dir an older
        /// version attached.
        public var reasons: [DecisionReason: UInt64] = [:]
    }

    public func status(links: [String]) throws(BPFError) -> Status {
        let c = try readConfig()
        var tables: [String: Int] = [:]
        var previous = true
        for (table, o) in outer {
            if let inner = try o.inner(c.activeGeneration) {
                tables[table.description] = try inner.keys(keySize: ABI.keySize(table)).count
            }
            if !o.hasInner(c.activeGeneration ^ 1) { previous = false }
        }
        var counters: [UInt32: Counters] = [:]
        if let map = try? backend.pinned("\(pinDir)/maps/bl_counters") {
            for key in try map.keys(keySize: MemoryLayout<UInt32>.size) {
                guard let perCPU = try map.lookupPerCPU(key: key, valueSize: MemoryLayout<bl_counters>.size) else { continue }
                var sum = Counters()
                for v in perCPU { sum.add(Counters(structValue(bl_counters(), v))) }
                counters[UInt32(littleEndian: structValue(UInt32(0), key))] = sum
            }
        }
        let digest = try imageDigest(c.activeGeneration).map { Hex.bytes($0) }
        let skips = (try? backend.pinned("\(pinDir)/maps/bl_skip")).flatMap { try? $0.keys(keySize: MemoryLayout<bl_skip_key>.size).count } ?? 0
        // Absent in a pin dir no attach of this version made: every socket.
        let scope = (try? backend.pinned("\(pinDir)/maps/bl_attach_scope"))
            .flatMap { try? $0.lookup(key: arrayKey(0), valueSize: MemoryLayout<bl_attach_scope>.size) }
            .map { structValue(bl_attach_scope(), $0) }
        let hostOnly = scope.flatMap { UInt32(littleEndian: $0.flags) & UInt32(BL_ATTACH_HOST_NETNS_ONLY) != 0 ? UInt64(littleEndian: $0.netns_cookie) : nil }
        var status = Status(config: c, tables: tables, previousGeneration: previous, counters: counters, links: links.sorted(), liveImage: digest,
                            skipEntries: skips, hostNetnsOnly: hostOnly)
        if let map = try? backend.pinned("\(pinDir)/maps/bl_reasons") {
            for reason in DecisionReason.allCases {
                guard let perCPU = try map.lookupPerCPU(key: arrayKey(reason.rawValue), valueSize: 8) else { continue }
                status.reasons[reason] = perCPU.reduce(0) { $0 &+ UInt64(littleEndian: structValue(UInt64(0), $1)) }
            }
        }
        return status
    }
}

/// Why a load failed: the image, the node name, or the kernel.
public enum LoadError: Error, Sendable, CustomStringConvertible {
    case image(ImageError)
    case node(ResolverError)
    case bpf(BPFError)

    public var description: String {
        switch self {
        case .image(let e): e.description
        case .node(let e): e.description
        case .bpf(let e): e.description
        }
    }
}

/// A computation running on another thread, joined with `wait`.
final class Background<T: Sendable, E: Error>: Sendable {
    private let result = Mutex<Result<T, E>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws(E) -> T) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let r: Result<T, E>
            do throws(E) { r = .success(try body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
    }

    /// Blocks until the body has finished (once; later calls return the same result).
    func wait() throws(E) -> T {
        if let r = result.withLock({ $0 }) { return try r.get() }
        done.wait()
        guard let r = result.withLock({ $0 }) else { preconditionFailure("signalled without a result") }
        return try r.get()
    }
}
