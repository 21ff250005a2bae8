import CBalancerABI
import MapImage

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
public struct Datapath {
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
        public var records: [String: Int]
        /// The image was already live with the same node and host mode: nothing was written.
        public var unchanged: Bool = false
    }

    /// Fills the standby generation from `image` and makes it live.
    public func load(_ image: MapImage, nodeID: UInt32, hostMode: HostMode) throws(BPFError) -> LoadReport {
        let current = try readConfig()
        var records: [String: Int] = [:]
        for section in image.header.sections {
            if let table = ImageTable(rawValue: section.kind) { records[table.description] = section.count }
        }
        // Loading the live image again changes nothing (and only the config when node or host
        // mode differ).
        if try imageDigest(current.activeGeneration) == image.header.digest {
            let wanted = Config(activeGeneration: current.activeGeneration, nodeID: nodeID, hostMode: hostMode)
            if wanted == current { return LoadReport(generation: current.activeGeneration, records: records, unchanged: true) }
            try writeConfig(wanted)
            return LoadReport(generation: current.activeGeneration, records: records)
        }
        let standby = current.activeGeneration ^ 1
        var inners: [(ImageTable, BPFMap)] = []
        for section in image.header.sections {
            guard let table = ImageTable(rawValue: section.kind) else { continue }
            let inner = try BPFMap.createHash(name: "bl_g\(standby)_\(table.rawValue)", keySize: section.keySize, valueSize: section.valueSize,
                                              maxEntries: ABI.maxEntries(table), noPrealloc: true)
            try inner.updateRecords(image.bytes[section.offset..<(section.offset + section.length)],
                                    keySize: section.keySize, valueSize: section.valueSize)
            inners.append((table, inner))
        }
        try generations.update(key: le(standby), value: Datapath.filling)
        for (table, inner) in inners {
            guard let o = outer[table] else { continue }
            try o.setInner(standby, inner)
        }
        try generations.update(key: le(standby), value: image.header.digest)
        // The flip: one update of one array element.
        try writeConfig(Config(activeGeneration: standby, nodeID: nodeID, hostMode: hostMode))
        return LoadReport(generation: standby, records: records)
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
        return Status(config: c, tables: tables, previousGeneration: previous, counters: counters, links: links.sorted(), liveImage: digest)
    }
}
