import CBalancerABI
import Dispatch
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The datapath's pinned maps and their two generations (DESIGN.md decision 2).
///
/// A load fills the standby generation with new inner maps, inserts them into the outer
/// array-of-maps, and only then flips `bl_config.active_gen` in one map update: a program that
/// reads the generation once per call sees the whole old image or the whole new one. The old
/// generation stays in place as the rollback target. Nothing is touched before the image has been
/// verified (decoding a MapImage verifies everything), and a failure before the flip leaves the
/// live generation serving.
///
/// This release opens maps the datapath object has already pinned under `<pin dir>/maps/<name>`
/// (as `bpftool prog loadall … pinmaps` does); loading and attaching the programs themselves is
/// the next step of the loader.
public struct Datapath: Sendable {
    public let pinDir: String
    let outer: [ImageTable: BPFMap]
    let config: BPFMap
    /// The image digest each generation holds (loader-only; see bl_generation_value).
    let generations: BPFMap

    static let outerNames: [ImageTable: String] = [
        .frontends: "bl_frontends", .vips: "bl_vips", .nodeAddresses: "bl_node_addrs", .nodes: "bl_nodes",
        .sets: "bl_sets", .slots: "bl_slots", .members: "bl_members", .backends: "bl_backends",
    ]

    public init(pinDir: String) throws(BPFError) {
        self.pinDir = pinDir
        guard BPFFS.isBPFFS(pinDir) == true else {
            throw BPFError("open", pinDir, message: "not a directory on a bpffs (mount one with `mount -t bpf bpf DIR`)")
        }
        var outer: [ImageTable: BPFMap] = [:]
        for (table, name) in Datapath.outerNames {
            outer[table] = try BPFMap.pinned("\(pinDir)/maps/\(name)")
        }
        self.outer = outer
        config = try BPFMap.pinned("\(pinDir)/maps/bl_config")
        let path = "\(pinDir)/maps/bl_generations"
        if let existing = try? BPFMap.pinned(path) {
            generations = existing
        } else {
            let created = try BPFMap.createArray(name: "bl_generations", valueSize: MemoryLayout<bl_generation_value>.size, maxEntries: 2)
            try created.pin(path)
            generations = created
        }
    }

    /// Marks a generation being filled: a load killed half-way leaves it marked, and rollback
    /// refuses to make such a generation live.
    static let filling = [UInt8](repeating: 0xFF, count: MemoryLayout<bl_generation_value>.size)

    /// The SHA-256 of the image a generation holds (nil when unknown, empty or being filled).
    public func imageDigest(_ generation: UInt32) throws(BPFError) -> [UInt8]? {
        guard outer.values.allSatisfy({ $0.hasInner(generation) }) else { return nil }
        let d = try generations.lookup(key: le(generation), valueSize: MemoryLayout<bl_generation_value>.size)
        guard let d, d.contains(where: { $0 != 0 }), d != Datapath.filling else { return nil }
        return d
    }

    /// Whether a load into this generation was interrupted before it completed.
    public func isIncomplete(_ generation: UInt32) throws(BPFError) -> Bool {
        try generations.lookup(key: le(generation), valueSize: MemoryLayout<bl_generation_value>.size) == Datapath.filling
    }

    private func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }

    public struct Config: Sendable, Equatable {
        public var activeGeneration: UInt32
        public var nodeID: UInt32
        public var hostMode: HostMode
    }

    public func readConfig() throws(BPFError) -> Config {
        let raw = try config.lookup(key: [0, 0, 0, 0], valueSize: MemoryLayout<bl_config>.size) ?? []
        func word(_ i: Int) -> UInt32 {
            guard raw.count >= 4 * (i + 1) else { return 0 }
            return raw[(4 * i)..<(4 * i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        return Config(activeGeneration: word(0) & 1, nodeID: word(1), hostMode: word(2) == BL_HOST_MODE_NODEPORT.rawValue ? .nodeport : .pod)
    }

    func writeConfig(_ c: Config) throws(BPFError) {
        var value: [UInt8] = []
        for w in [c.activeGeneration, c.nodeID, c.hostMode == .nodeport ? BL_HOST_MODE_NODEPORT.rawValue : BL_HOST_MODE_POD.rawValue, 0] {
            value += [UInt8(w & 0xFF), UInt8(w >> 8 & 0xFF), UInt8(w >> 16 & 0xFF), UInt8(w >> 24)]
        }
        try config.update(key: [0, 0, 0, 0], value: value)
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

    /// Loads an image: verifies it, fills the standby generation, flips.
    ///
    /// The container's layout (versions, section table, record sizes) is checked first, because
    /// it says what to write. The rest of the verification (SHA-256, key order, enums, padding,
    /// every reference) then runs on another core while the standby generation is filled with
    /// fresh maps: maps no program can reach until they are published, so nothing the datapath
    /// sees is touched before the whole image has been verified. A failure anywhere drops the
    /// fresh maps and leaves the live generation serving.
    public func load(imageBytes bytes: [UInt8], node: String?, hostMode: HostMode) throws(LoadError) -> LoadReport {
        let header: ImageHeader
        do { header = try ImageDecoder.decodeLayout(bytes) } catch { throw .image(error) }
        var records: [String: Int] = [:]
        for section in header.sections {
            if let table = ImageTable(rawValue: section.kind) { records[table.description] = section.count }
        }
        let barrier = gracePeriodBarrier
        let verification = Background { () throws(ImageError) -> VerifiedImage in
            barrier()
            return try ImageDecoder.verify(bytes, nodes: node != nil)
        }
        func verified() throws(LoadError) -> (VerifiedImage, UInt32) {
            let image: VerifiedImage
            do { image = try verification.wait() } catch { throw .image(error) }
            guard let node else { return (image, 0) }
            do { return (image, try image.nodeID(named: node)) } catch { throw .node(error) }
        }
        var skipTargets: [(owner: UInt32, address: IPAddress)] = []
        let current: Config
        do { current = try readConfig() } catch {
            _ = try? verification.wait()
            throw .bpf(error)
        }
        // Loading the live image again changes nothing (only the config when node or host mode
        // differ).
        if (try? imageDigest(current.activeGeneration)) == header.digest {
            let (image, nodeID) = try verified()
            skipTargets = image.skipTargets(nodeID: nodeID)
            let wanted = Config(activeGeneration: current.activeGeneration, nodeID: nodeID, hostMode: hostMode)
            if wanted == current {
                return LoadReport(generation: current.activeGeneration, digestHex: header.digestHex, records: records, unchanged: true,
                                  skipTargets: skipTargets, method: .unchanged)
            }
            do { try writeConfig(wanted) } catch { throw .bpf(error) }
            return LoadReport(generation: current.activeGeneration, digestHex: header.digestHex, records: records, skipTargets: skipTargets,
                              method: .unchanged)
        }
        let standby = current.activeGeneration ^ 1
        // Record sizes against the live maps, before anything is created: a datapath of another
        // ABI would refuse the tables only when they are inserted.
        do { try checkRecordSizes(header, generation: current.activeGeneration) } catch {
            _ = try? verification.wait()
            throw .bpf(error)
        }
        let filled: Standby
        do { filled = try fill(generation: standby, header: header, bytes: bytes) } catch {
            _ = try? verification.wait()
            throw .bpf(error)
        }
        var phases = filled.phases
        var t = Datapath.now()
        let (image, nodeID) = try verified()
        phases.append(("wait for verification", Datapath.now() - t))
        skipTargets = image.skipTargets(nodeID: nodeID)
        t = Datapath.now()
        do { try publish(filled, digest: header.digest) } catch { throw .bpf(error) }
        phases.append(("publish", Datapath.now() - t))
        t = Datapath.now()
        // The flip: one update of one array element.
        do { try writeConfig(Config(activeGeneration: standby, nodeID: nodeID, hostMode: hostMode)) } catch { throw .bpf(error) }
        phases.append(("flip", Datapath.now() - t))
        return LoadReport(generation: standby, digestHex: header.digestHex, records: records, skipTargets: skipTargets, phases: phases,
                          written: records.values.reduce(0, +))
    }

    /// Waits until no program still uses the standby generation.
    ///
    /// A program reads `active_gen` once and then looks tables up in that generation; one that
    /// read it just before the last flip may still be running. Replacing its tables under it
    /// would mix two images. The kernel waits for an RCU grace period (every program that had
    /// started has finished) after any update of a map-in-map, so setting one standby slot to
    /// the map it already holds is that wait, with no other effect. It runs alongside the fill,
    /// long before publish.
    var gracePeriodBarrier: @Sendable () -> Void {
        let outer = self.outer
        let generation: UInt32? = try? readConfig().activeGeneration ^ 1
        return {
            guard let generation, let o = outer[.frontends], let inner = try? o.inner(generation) else { return }
            try? o.setInner(generation, inner)
        }
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
        var inners: [(ImageTable, BPFMap)]
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

    func fill(generation: UInt32, header: ImageHeader, bytes: [UInt8]) throws(BPFError) -> Standby {
        // Sized to the image: a generation `load` writes is never written again.
        let sources = header.sections.compactMap { s -> FillSource? in
            guard let table = ImageTable(rawValue: s.kind) else { return nil }
            return FillSource(table: table, keySize: s.keySize, valueSize: s.valueSize, count: s.count, capacity: max(s.count, 1),
                              records: bytes[s.offset..<(s.offset + s.length)])
        }
        return try fill(generation: generation, sources: sources)
    }

    func fill(generation: UInt32, sources: [FillSource]) throws(BPFError) -> Standby {
        var out = Standby(generation: generation, inners: [], phases: [])
        var t = Datapath.now()
        // Preallocated: inserting into a preallocated hash takes an element from a free list
        // instead of allocating one (a third of the time, measured). Preallocating is itself
        // work (zeroed pages), spread over the cores.
        let created = Mutex<[Int: Result<BPFMap, BPFError>]>([:])
        DispatchQueue.concurrentPerform(iterations: sources.count) { i in
            let source = sources[i]
            let r = Result { () throws(BPFError) -> BPFMap in
                try BPFMap.createHash(name: "bl_g\(generation)_\(source.table.rawValue)", keySize: source.keySize,
                                      valueSize: source.valueSize, maxEntries: max(source.capacity, 1), noPrealloc: false)
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

    /// Puts the filled maps into the outer maps' standby slots, bracketed by the generation's
    /// digest record: "filling" first, so a load killed in between leaves a generation rollback
    /// refuses.
    func publish(_ standby: Standby, digest: [UInt8]) throws(BPFError) {
        try generations.update(key: le(standby.generation), value: Datapath.filling)
        try BPFMap.setInners(standby.inners.compactMap { (table, inner) in outer[table].map { ($0, standby.generation, inner) } })
        try generations.update(key: le(standby.generation), value: digest)
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
        /// Summed over CPUs, by frontend id: translated, rejected, unreachable, fall-through.
        public var counters: [UInt32: [UInt64]]
        /// Link pins: "cg<cgroup inode>-<program>".
        public var links: [String]
        /// SHA-256 (hex) of the live image, when balancer loaded it.
        public var liveImage: String?
        /// skipRedirectFromBackend namespace entries (netns cookie, policy id) in bl_skip.
        public var skipEntries: Int = 0
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
        var counters: [UInt32: [UInt64]] = [:]
        if let map = try? BPFMap.pinned("\(pinDir)/maps/bl_counters") {
            for key in try map.keys(keySize: 4) {
                guard let perCPU = try map.lookupPerCPU(key: key, valueSize: MemoryLayout<bl_counters>.size) else { continue }
                var sum = [UInt64](repeating: 0, count: 4)
                for v in perCPU {
                    for i in 0..<4 {
                        sum[i] &+= v[(8 * i)..<(8 * i + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    }
                }
                let id = key.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                counters[id] = sum
            }
        }
        let digest = try imageDigest(c.activeGeneration).map { $0.map { b in String(b >> 4, radix: 16) + String(b & 0xF, radix: 16) }.joined() }
        let skips = (try? BPFMap.pinned("\(pinDir)/maps/bl_skip")).flatMap { try? $0.keys(keySize: 16).count } ?? 0
        return Status(config: c, tables: tables, previousGeneration: previous, counters: counters, links: links.sorted(), liveImage: digest,
                      skipEntries: skips)
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
