import CBalancerABI
import MapImage
import Synchronization

/// Incremental loads for a long-running process (the watcher): it knows what each generation
/// holds, so a new image or a `RecordDelta` costs the records that differ, not a refill.
///
/// What it tracks:
/// - the state it wants live: a base image and every record changed since (`RecordState`);
/// - whether the live generation holds that state (it wrote it, and no other process has
///   flipped or replaced a table since: both are checked before every write by comparing the
///   active generation and the inner maps' ids with what it last wrote);
/// - what the standby generation lacks: the records written to the live generation since the
///   standby was live (`pending`), or nothing known;
/// - each generation's map capacities (fresh maps get headroom so later deltas fit in place).
///
/// A write goes to the standby generation only. Tables filled fresh (a generation whose content
/// is unknown, or a table whose new record count exceeds its map's capacity) are filled into new
/// maps no program can reach, alongside the image's verification. Then, after the grace period
/// that followed the last flip (the barrier is started right after each flip and waited for
/// before the next write to that generation, so it is normally over), the generation is marked
/// "filling" in bl_generations, the fresh maps are published into its slots, the other records
/// are deleted and written with batch calls, its digest record is set (the image's digest, or
/// zero = unknown after a delta), and one update of bl_config flips. Readers see the whole old
/// state or the whole new one; a failure before the flip leaves the live generation serving.
///
/// `balancer load` is a writer of one load (`Datapath.load`): with no state, it fills the
/// standby fresh.
///
/// Use it from one thread at a time; every method holds a lock for its whole duration, so
/// concurrent calls are serialised, not interleaved. Other processes (`balancer load`,
/// `balancer rollback`) may change the datapath between calls: the writer then treats what they
/// touched as unknown and fills it fresh.
public final class GenerationWriter: Sendable {
    private let core: Mutex<Core>
    public let datapath: Datapath

    /// `headroom`: fresh maps hold count × (1 + headroom) + 64 records (within the ABI's
    /// capacity), so that deltas can insert in place.
    public convenience init(datapath: Datapath, node: String?, hostMode: HostMode, headroom: Double = 0.25) {
        self.init(datapath: datapath, host: HostSettings(node: node, hostMode: hostMode), headroom: headroom)
    }

    public init(datapath: Datapath, host: HostSettings, headroom: Double = 0.25) {
        self.datapath = datapath
        core = Mutex(Core(datapath: datapath, host: host, headroom: max(0, headroom)))
    }

    /// Loads a whole image: verified completely before anything the datapath can see is written;
    /// then only the records that differ from what each generation holds are written, or, when
    /// that is not known (the first load of this process, a table beyond its capacity, another
    /// process changed the datapath), the standby is filled fresh. Loading the live image again
    /// changes nothing.
    public func load(image bytes: [UInt8]) throws(LoadError) -> Datapath.LoadReport {
        try core.withLock { (c: inout Core) throws(LoadError) -> Datapath.LoadReport in try c.load(bytes) }
    }

    /// Applies records changed since the last load or apply (what an incremental compile
    /// emits): the standby gets them and the records it lacked, then it is flipped live.
    /// Needs a state: throws when no image was loaded by this writer.
    public func apply(_ delta: RecordDelta) throws(LoadError) -> Datapath.LoadReport {
        try core.withLock { (c: inout Core) throws(LoadError) -> Datapath.LoadReport in try c.apply(delta) }
    }

    /// When the live state equals the image's tables record for record (and the live generation
    /// is the one this writer wrote), makes the image the new base and records its digest for
    /// the live generation (so `status` names it and loading it again is a no-op). Returns false
    /// and changes nothing otherwise (also when the image does not verify).
    public func confirm(image bytes: [UInt8]) -> Bool {
        core.withLock { (c: inout Core) -> Bool in c.confirm(bytes) }
    }

    /// The digest (hex) of the image the live state equals, when known.
    public var liveImageDigest: String? {
        core.withLock { (c: inout Core) -> String? in c.liveDigest.map { Hex.bytes($0) } }
    }
}


extension GenerationWriter {
    /// The writer's state; only touched under the lock.
    struct Core {
        let datapath: Datapath
        let host: HostSettings
        let headroom: Double
        static let slack = 64

        /// The host's node (0 on a host that is not a node), cluster and modes in the images' ids.
        var placement: HostPlacement
        var nodeID: UInt32 { placement.nodeID }
        /// The state this writer makes live (base image ⊕ records since).
        var state: RecordState?
        /// The generation that holds `state`, when it does.
        var live: UInt32?
        /// What the standby lacks to hold `state` (nil: unknown).
        var pending: RecordDelta?
        /// The digest of the image `state` equals, when known.
        var liveDigest: [UInt8]?
        /// Inner map ids per generation and table, as this writer last saw or wrote them.
        var ids: [UInt32: [ImageTable: UInt32]] = [:]
        /// Capacity (max_entries) per generation and table.
        var capacity: [UInt32: [ImageTable: Int]] = [:]
        /// The grace period after the last flip, running in the background, and the generation
        /// it protects.
        var barrier: (generation: UInt32, wait: Background<Double, BPFError>)?
        var lastGracePeriod: Double?
        /// The writer's own grace-period barrier (see GracePeriod).
        var gracePeriod: (any GracePeriodWaiting)?
        var skip: SkipIndex?

        init(datapath: Datapath, host: HostSettings, headroom: Double) {
            self.datapath = datapath
            self.host = host
            self.headroom = headroom
            placement = HostPlacement(hostMode: host.hostMode)
        }

        // MARK: whole images

        mutating func load(_ bytes: [UInt8]) throws(LoadError) -> Datapath.LoadReport {
            var phases: [(String, Double)] = []
            var t = Datapath.now()
            let header: ImageHeader
            do { header = try ImageDecoder.decodeLayout(bytes) } catch { throw .image(error) }
            let host = self.host
            let verification = Background { () throws(ImageError) -> VerifiedImage in try ImageDecoder.verify(bytes, nodes: host.needsNames) }
            func verified() throws(LoadError) -> (VerifiedImage, HostPlacement) {
                let image: VerifiedImage
                do { image = try verification.wait() } catch { throw .image(error) }
                guard host.needsNames else { return (image, HostPlacement(hostMode: host.hostMode)) }
                do { return (image, try image.place(host)) } catch { throw .node(error) }
            }
            let config: Datapath.Config
            do {
                config = try observe()
                try datapath.checkRecordSizes(header, generation: config.activeGeneration)
            } catch {
                _ = try? verification.wait()
                throw .bpf(error)
            }
            let image = RecordState(header: header, bytes: bytes)
            var records: [String: Int] = [:]
            for t in ImageTable.allCases { records[t.description] = image.counts[t] ?? 0 }

            // The live image already (by its digest record): at most node and host mode change.
            if (try? datapath.imageDigest(config.activeGeneration)) == header.digest {
                let (verifiedImage, placement) = try verified()
                phases.append(("verify", Datapath.now() - t))
                _ = verifiedImage
                self.placement = placement
                let adopted = !(live == config.activeGeneration && liveDigest == header.digest)
                if adopted {
                    // Written by another process (or before this one started): its content is
                    // the image; the standby is not known.
                    state = image
                    live = config.activeGeneration
                    pending = nil
                    liveDigest = header.digest
                    do { try remember(generation: config.activeGeneration) } catch { throw .bpf(error) }
                    skip = nodeID == 0 ? nil : SkipIndex.compute(nodeID: nodeID, state: image)
                }
                let wanted = Datapath.Config(activeGeneration: config.activeGeneration, placement: placement)
                if wanted != config { do { try datapath.writeConfig(wanted) } catch { throw .bpf(error) } }
                return Datapath.LoadReport(generation: config.activeGeneration, digestHex: header.digestHex, records: records,
                                           unchanged: wanted == config, skipTargets: skip?.targets ?? [], phases: phases, method: .unchanged,
                                           skipTargetsChanged: adopted, gracePeriod: lastGracePeriod)
            }

            // A process that flipped just before this one started may still have readers on the
            // standby: without a barrier of this writer's own, start one now.
            if barrier == nil { startBarrier(generation: config.activeGeneration ^ 1) }
            // What differs from the live state, when it is known (the sorted merge needs only
            // the layout; nothing is written before the verification has succeeded).
            var delta: RecordDelta?
            if let state, live == config.activeGeneration {
                delta = state.delta(to: header, bytes)
                phases.append(("diff", Datapath.now() - t))
            }

            if let delta, delta.isEmpty, let live {
                // The live state is the image already, record for record: name it.
                t = Datapath.now()
                let (_, placement) = try verified()
                phases.append(("wait for verification", Datapath.now() - t))
                self.placement = placement
                do {
                    try datapath.setGenerationRecord(live, header.digest)
                    let wanted = Datapath.Config(activeGeneration: live, placement: placement)
                    if wanted != config { try datapath.writeConfig(wanted) }
                } catch {
                    throw .bpf(error)
                }
                state = image
                liveDigest = header.digest
                return Datapath.LoadReport(generation: live, digestHex: header.digestHex, records: records, skipTargets: skip?.targets ?? [],
                                           phases: phases, method: .unchanged, skipTargetsChanged: false, gracePeriod: lastGracePeriod)
            }
            var write: RecordDelta?
            if let delta, var p = pending {
                p.merge(delta)
                write = p
            }
            var report = try writeStandby(target: image, write: write, digest: header.digest, active: config.activeGeneration, phases: phases) {
                () throws(LoadError) -> HostPlacement? in try verified().1
            }
            // The generation left standby holds the old state: it lacks exactly `delta`.
            pending = delta
            state = image
            liveDigest = header.digest
            skip = nodeID == 0 ? nil : SkipIndex.compute(nodeID: nodeID, state: image)
            report.digestHex = header.digestHex
            report.records = records
            report.skipTargets = skip?.targets ?? []
            report.skipTargetsChanged = true
            return report
        }

        // MARK: deltas

        mutating func apply(_ delta: RecordDelta) throws(LoadError) -> Datapath.LoadReport {
            var phases: [(String, Double)] = []
            let t = Datapath.now()
            guard let current = state else {
                throw .bpf(BPFError("apply a delta to", datapath.pinDir, message: "no image has been loaded by this process yet: load a whole image first"))
            }
            for (table, changes) in delta.changes {
                for (key, value) in changes where key.count != ABI.keySize(table) || (value.map { $0.count != ABI.valueSize(table) } ?? false) {
                    throw .image(ImageError("delta: a \(table) record of \(key.count)+\(value?.count ?? 0) bytes; this ABI's are \(ABI.keySize(table))+\(ABI.valueSize(table))"))
                }
            }
            let config: Datapath.Config
            do { config = try observe() } catch { throw .bpf(error) }
            let effective = current.effective(delta)
            var next = current
            next.apply(effective)
            var records: [String: Int] = [:]
            for table in ImageTable.allCases {
                let n = next.counts[table] ?? 0
                guard n <= ABI.maxEntries(table) else {
                    throw .image(ImageError("delta: \(table) would hold \(n) records, beyond the datapath's capacity of \(ABI.maxEntries(table))"))
                }
                records[table.description] = n
            }
            phases.append(("check", Datapath.now() - t))
            if effective.isEmpty, live == config.activeGeneration {
                return Datapath.LoadReport(generation: config.activeGeneration, digestHex: liveDigest.map { Hex.bytes($0) } ?? "",
                                           records: records, unchanged: true, skipTargets: skip?.targets ?? [], phases: phases, method: .unchanged,
                                           skipTargetsChanged: false, gracePeriod: lastGracePeriod)
            }
            var write: RecordDelta?
            if live == config.activeGeneration, var p = pending {
                p.merge(effective)
                write = p
            }
            let liveHeldCurrent = live == config.activeGeneration
            var report = try writeStandby(target: next, write: write, digest: nil, active: config.activeGeneration, phases: phases) {
                () throws(LoadError) -> HostPlacement? in nil
            }
            pending = liveHeldCurrent ? effective : nil
            state = next
            liveDigest = nil
            report.records = records
            if let index = skip, index.affected(by: effective, in: current) {
                skip = SkipIndex.compute(nodeID: nodeID, state: next)
                report.skipTargetsChanged = true
            } else {
                report.skipTargetsChanged = skip == nil && nodeID != 0
                if skip == nil && nodeID != 0 { skip = SkipIndex.compute(nodeID: nodeID, state: next) }
            }
            report.skipTargets = skip?.targets ?? []
            return report
        }

        // MARK: confirm

        mutating func confirm(_ bytes: [UInt8]) -> Bool {
            guard let state, let live else { return false }
            guard let verified = try? ImageDecoder.verify(bytes, nodes: false) else { return false }
            guard let config = try? observe(), config.activeGeneration == live, self.live == live else { return false }
            guard state.matches(verified.header, bytes) else { return false }
            guard (try? datapath.setGenerationRecord(live, verified.header.digest)) != nil else { return false }
            self.state = RecordState(header: verified.header, bytes: bytes)
            liveDigest = verified.header.digest
            return true
        }

        // MARK: what the kernel holds

        /// Reads the config and checks that the generations hold what this writer last wrote
        /// there (same inner maps, same active generation); forgets what another process changed.
        mutating func observe() throws(BPFError) -> Datapath.Config {
            let config = try datapath.readConfig()
            for generation in [UInt32(0), 1] {
                guard let known = ids[generation] else { continue }
                var same = true
                for table in ImageTable.allCases {
                    guard let o = datapath.outer[table] else { continue }
                    if try o.innerID(generation) != known[table] { same = false }
                }
                if !same {
                    ids[generation] = nil
                    capacity[generation] = nil
                    if generation == live { live = nil }
                    pending = nil
                }
            }
            if let l = live, l != config.activeGeneration {
                // Another process flipped (a rollback): neither generation's content is known.
                live = nil
                pending = nil
            }
            if live == nil {
                pending = nil
                liveDigest = nil
            }
            return config
        }

        /// Records the inner maps' ids and capacities of a generation.
        mutating func remember(generation: UInt32) throws(BPFError) {
            var gids: [ImageTable: UInt32] = [:], caps: [ImageTable: Int] = [:]
            for table in ImageTable.allCases {
                guard let o = datapath.outer[table], let inner = try o.inner(generation) else { continue }
                let info = try inner.info()
                gids[table] = info.id
                caps[table] = info.maxEntries
            }
            ids[generation] = gids
            capacity[generation] = caps
        }

        /// Starts the wait for a grace period after which no program uses `generation`: an
        /// update of a private map-in-map (GracePeriod), so a concurrent writer of the datapath's
        /// slots is never overwritten by a stale re-insert. The only grace-period mechanism of
        /// the loader: without a private map (which needs the privileges a fresh fill needs)
        /// the next write fails before it touches anything.
        mutating func startBarrier(generation: UInt32) {
            let source: Result<any GracePeriodWaiting, BPFError>
            if let gracePeriod {
                source = .success(gracePeriod)
            } else {
                let backend = datapath.backend
                source = Result { () throws(BPFError) -> any GracePeriodWaiting in try backend.gracePeriod() }
                gracePeriod = try? source.get()
            }
            barrier = (generation, Background { () throws(BPFError) -> Double in
                let t = Datapath.now()
                try source.get().wait()
                return Datapath.now() - t
            })
        }

        mutating func waitForBarrier(generation: UInt32) throws(BPFError) {
            if let b = barrier {
                barrier = nil
                let d = try b.wait.wait()
                if b.generation == generation {
                    lastGracePeriod = d
                    return
                }
            }
            // None for this generation (a process flipped without this writer): wait here.
            startBarrier(generation: generation)
            if let b = barrier {
                barrier = nil
                lastGracePeriod = try b.wait.wait()
            }
        }
    }
}
