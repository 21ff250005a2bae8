import FoundationEssentials
import HostSystem
import Loader
import Logging
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a watcher's images go.
public protocol ImageSink: Sendable {
    /// Delivers one image; returns a short description of where it went.
    func deliver(_ bytes: [UInt8], digest: String) throws -> String
    /// What the sink holds now (for the logs of a failed delivery to say what stays live).
    func liveState() -> LiveState
    /// False when what was delivered is gone from the sink since (a datapath detached and
    /// attached again has new, empty maps): the watcher then delivers the whole image again.
    func stillHolds() -> Bool
    /// Brings state that follows the host rather than the image up to date (the namespaces of
    /// skipRedirectFromBackend pods); called about every second, whether the image changed or not.
    func refreshRuntimeState()
}

/// What a sink holds live.
public enum LiveState: Sendable, Equatable {
    /// The sink cannot tell.
    case unknown
    /// Nothing: no image is live.
    case none
    /// An image, by its SHA-256 when known (nil: records written as deltas, not yet confirmed).
    case image(digest: String?)
}

extension ImageSink {
    public func liveState() -> LiveState { .unknown }
    public func stillHolds() -> Bool { true }
    public func refreshRuntimeState() {}
}

/// A sink that can also take record deltas (what an incremental compile emits) between whole
/// images.
public protocol IncrementalSink: ImageSink {
    /// Writes the records of `delta` on top of the last image or delta; returns a short
    /// description of what was written.
    func apply(_ delta: RecordDelta) throws -> String
    /// Whether the state built by deltas equals `image` record for record; when it does, the
    /// image becomes the base of later deltas and names the live state.
    func confirm(image bytes: [UInt8]) -> Bool
}

/// Loads each image into the pinned datapath through one GenerationWriter, which writes only
/// the records that differ from what each generation holds (the first image, and any image after
/// another process changed the datapath, fills the standby generation fresh).
public struct DatapathSink: IncrementalSink {
    public var pinDir: String
    public var node: String?
    public var hostMode: HostMode
    /// The host's cluster and the per-cluster host modes, for an image of several clusters.
    public var cluster: String?
    public var clusterModes: [String: HostMode] = [:]
    public var netnsScope: String?
    /// Spare capacity of fresh maps, for deltas to insert in place (see GenerationWriter).
    public var headroom: Double = 0.25
    /// Frontend id → (frontend, first rule's owner) of the live image, for the counters'
    /// labels; filled only when `nameFrontends`.
    let frontendNames = FrontendNames()
    public var nameFrontends = false
    /// Which translated sockets to terminate when their backend leaves its service.
    public var terminate: TerminationMode = .udp
    /// Terminates sockets on removed backends after each change, off the sync loop.
    let terminations = TerminationWorker()
    /// The state that follows the host's network namespaces (skipRedirectFromBackend targets,
    /// client addresses for loadBalancerSourceRanges) and the namespaces it was last written for.
    let runtime = RuntimeTracker()
    /// The default netns scope (the attached cgroup), found again when the link pins change.
    let scopeBox = ScopeBox()
    /// The writer, made on the first delivery (the datapath's maps may be pinned later than the
    /// sink is made) and shared by the sink's copies.
    let writerBox = WriterBox()

    public init(pinDir: String, node: String?, hostMode: HostMode, netnsScope: String?) {
        self.pinDir = pinDir
        self.node = node
        self.hostMode = hostMode
        self.netnsScope = netnsScope
    }

    /// The writer of the datapath pinned now. The datapath's maps may be pinned later than the
    /// sink is made (`attach` after `watch`), and replaced (`detach` and `attach` again): the
    /// writer holds the maps it opened, so it is made again when the pinned bl_config is another
    /// map than the one it was made with. A writer made again knows nothing of the datapath: its
    /// first write must be a whole image (a delta throws, and the watcher retries with one).
    func writer() throws -> GenerationWriter {
        let pinned: UInt32
        do {
            pinned = try BPFMap.pinned("\(pinDir)/maps/bl_config").info().id
        } catch {
            _ = try Datapath(pinDir: pinDir)  // its error says more (no bpffs, which map is missing)
            throw error
        }
        return try writerBox.writer.withLock { (w: inout (writer: GenerationWriter, config: UInt32)?) throws -> GenerationWriter in
            if let w, w.config == pinned { return w.writer }
            let host = HostSettings(node: node, cluster: cluster, hostMode: hostMode, clusterModes: clusterModes)
            let made = GenerationWriter(datapath: try Datapath(pinDir: pinDir), host: host, headroom: headroom)
            w = (made, pinned)
            return made
        }
    }

    /// Whether the pinned bl_config is still the map the writer wrote (one open and one info
    /// call): a `detach` and `attach` since pins new, empty maps. True before any delivery.
    public func stillHolds() -> Bool {
        guard let written = writerBox.writer.withLock({ $0?.config }) else { return true }
        return (try? BPFMap.pinned("\(pinDir)/maps/bl_config").info().id) == written
    }

    /// Nothing when the maps are not pinned or hold no image; else the live image's digest
    /// (nil when written as deltas and not yet confirmed).
    public func liveState() -> LiveState {
        guard let datapath = try? Datapath(pinDir: pinDir) else { return .none }
        if let config = try? datapath.readConfig(), let digest = (try? datapath.imageDigest(config.activeGeneration)) ?? nil {
            return .image(digest: Hex.bytes(digest))
        }
        // No digest: nothing loaded, or records written as deltas (the tables tell which).
        guard let status = try? datapath.status(links: []) else { return .none }
        return status.tables.isEmpty ? .none : .image(digest: nil)
    }

    public func deliver(_ bytes: [UInt8], digest: String) throws -> String {
        let writer = try writer()
        // Client addresses before the flip when the image brings loadBalancerSourceRanges: no
        // client is refused for want of them (as `load` does).
        if !runtime.ranged, ((try? ImageDecoder.decodeLayout(bytes))?.sections.first { $0.kind == ImageTable.sourceRanges.rawValue }?.count ?? 0) > 0,
           let scope = netnsScope ?? scopeBox.scope(pinDir: pinDir) {
            _ = try writer.datapath.syncClientAddresses(scope: scope)
        }
        let report = try writer.load(image: bytes)
        try syncRuntime(writer.datapath, report, skipsChanged: true)
        if report.method != .unchanged { terminateStale(writer.datapath) }
        if nameFrontends, let image = try? MapImage(bytes: bytes) {
            let resolver = Resolver(image.contents)
            var names: [UInt32: (String, String)] = [:]
            var groups: [UInt32: String] = [:]
            for g in image.contents.metadata.groups { groups[g.id] = g.label }
            for f in image.contents.frontends {
                names[f.id] = (f.key.description, f.rules.first.map { resolver.ownerName($0) } ?? "")
            }
            frontendNames.value.withLock { $0 = names }
            frontendNames.groups.withLock { $0 = groups }
        }
        return DatapathSink.describe(report)
    }

    public func apply(_ delta: RecordDelta) throws -> String {
        let writer = try writer()
        let report = try writer.apply(delta)
        if report.skipTargetsChanged || runtime.ranged != DatapathSink.ranged(report) {
            try syncRuntime(writer.datapath, report, skipsChanged: report.skipTargetsChanged)
        } else {
            refreshRuntimeState()
        }
        // Only a delta that deletes or rewrites a membership, backend or frontend record can
        // take a backend out of its service.
        let removes = [ImageTable.members, .backends, .frontends].contains { table in
            delta.changes[table]?.contains { key, value in value == nil || table != .members } ?? false
        }
        if report.method != .unchanged && removes { terminateStale(writer.datapath) }
        if nameFrontends, let changes = delta.changes[.frontends], !changes.isEmpty {
            // Frontends written by the delta, named from the last whole image's groups (a group
            // new since then is named by its id until the next image).
            let groups = frontendNames.groups.withLock { $0 }
            var named: [UInt32: (String, String)] = [:]
            for (key, value) in changes {
                guard let value, let f = FrontendRecord(key: key, value: value) else { continue }
                named[f.id] = (f.key.description, f.groupIDs.first.map { groups[$0] ?? "group \($0)" } ?? "")
            }
            frontendNames.value.withLock { $0.merge(named) { _, new in new } }
        }
        return DatapathSink.describe(report)
    }

    /// Asks for a pass that terminates the sockets left on removed backends (after the flip; it
    /// runs beside the sync loop and logs what it did).
    func terminateStale(_ datapath: Datapath) {
        guard terminate != .none, let scope = netnsScope ?? scopeBox.scope(pinDir: pinDir) else { return }
        terminations.request(datapath, mode: terminate, scope: scope)
    }

    /// Whether the live image has loadBalancerSourceRanges (client addresses are then needed).
    static func ranged(_ report: Datapath.LoadReport) -> Bool { (report.records[ImageTable.sourceRanges.description] ?? 0) > 0 }

    /// Writes the state that follows the namespaces for the image just made live.
    func syncRuntime(_ datapath: Datapath, _ report: Datapath.LoadReport, skipsChanged: Bool) throws {
        guard let scope = netnsScope ?? scopeBox.scope(pinDir: pinDir) else { return }
        let ranged = DatapathSink.ranged(report)
        var targets = runtime.targets
        if node != nil && skipsChanged {
            _ = try datapath.syncSkips(report.skipTargets, scope: scope)
            targets = report.skipTargets
        }
        if ranged {
            _ = try datapath.syncClientAddresses(scope: scope)
        } else if runtime.ranged {
            // Clears the addresses; an older attach has no bl_client_addrs, with nothing to clear.
            _ = try? datapath.syncClientAddresses(scope: scope, wanted: false)
        }
        runtime.record(targets: targets, ranged: ranged, namespaces: Datapath.namespaces(under: scope))
    }

    /// A pod restarted with the same address (a new network namespace, the same image), a new
    /// pod or a new process in a namespace not seen yet: the state that follows namespaces is
    /// written again within a second — bl_skip, so a restarted skipRedirectFromBackend pod skips
    /// its policy again instead of looping back to itself, and bl_client_addrs, so a new pod's
    /// address is checked against loadBalancerSourceRanges. At most once a second, and only when
    /// the namespaces under the scope changed.
    public func refreshRuntimeState() {
        guard let due = runtime.due(), let scope = netnsScope ?? scopeBox.scope(pinDir: pinDir), let writer = try? writer() else { return }
        let now = Datapath.namespaces(under: scope)
        guard now != due.namespaces else { return }
        let log = Logger(label: "balancer.watch")
        do {
            if node != nil && !due.targets.isEmpty {
                let r = try writer.datapath.syncSkips(due.targets, scope: scope)
                log.info("skipRedirectFromBackend: the network namespaces changed", metadata: ["entries": "\(r.entries)", "unmatched": "\(r.unmatched.count)"])
            }
            if due.ranged {
                let r = try writer.datapath.syncClientAddresses(scope: scope)
                log.info("loadBalancerSourceRanges: the network namespaces changed", metadata: ["namespaces": "\(r.entries)"])
            }
            runtime.record(targets: due.targets, ranged: due.ranged, namespaces: now)
        } catch {
            log.warning("runtime state: \(error)")
        }
    }

    public func confirm(image bytes: [UInt8]) -> Bool {
        guard let writer = try? writer() else { return false }
        return writer.confirm(image: bytes)
    }

    static func describe(_ report: Datapath.LoadReport) -> String {
        switch report.method {
        case .unchanged: "generation \(report.generation) (unchanged)"
        case .delta:
            "generation \(report.generation) (delta: \(report.written) written, \(report.deleted) deleted"
                + (report.refilled.isEmpty ? ")" : "; refilled \(report.refilled.joined(separator: " ")))")
        case .fresh: "generation \(report.generation) (fresh fill: \(report.written) records)"
        }
    }
}

/// The netns scope a DatapathSink defaults to (Attachment.defaultNetnsScope), kept while the
/// datapath's link pins stay the same.
final class ScopeBox: Sendable {
    private let cached = Mutex<(links: [String], scope: String?)?>(nil)

    func scope(pinDir: String) -> String? {
        let links = Attachment.links(pinDir: pinDir).sorted()
        if let c = cached.withLock({ $0 }), c.links == links { return c.scope }
        let scope = Attachment.defaultNetnsScope(pinDir: pinDir)
        cached.withLock { $0 = (links, scope) }
        return scope
    }
}

/// What a DatapathSink last wrote of the state that follows network namespaces, shared by its
/// copies.
final class RuntimeTracker: Sendable {
    struct State {
        var targets: [(owner: UInt32, address: IPAddress)] = []
        var ranged = false
        var namespaces: Set<String> = []
        var checked = ContinuousClock.now
    }
    private let state = Mutex(State())

    func record(targets: [(owner: UInt32, address: IPAddress)], ranged: Bool, namespaces: Set<String>) {
        state.withLock { s in
            s.targets = targets
            s.ranged = ranged
            s.namespaces = namespaces
            s.checked = .now
        }
    }

    var targets: [(owner: UInt32, address: IPAddress)] { state.withLock { $0.targets } }
    var ranged: Bool { state.withLock { $0.ranged } }

    /// The state, when some follows namespaces and the last look is a second old.
    func due() -> State? {
        state.withLock { s in
            guard !s.targets.isEmpty || s.ranged, ContinuousClock.now - s.checked >= .seconds(1) else { return nil }
            s.checked = .now
            return s
        }
    }
}

/// The GenerationWriter a DatapathSink and its copies share.
final class WriterBox: Sendable {
    /// The writer and the id of the bl_config map it writes.
    let writer = Mutex<(writer: GenerationWriter, config: UInt32)?>(nil)
}

/// Writes each image to a directory for a pipeline: `<sha256>.image` (content-addressed, written
/// atomically) and a `latest` symlink swapped atomically onto it.
public struct DirectorySink: ImageSink {
    public var directory: String
    /// `--sign-key`: each image gets `<sha256>.image.sig` (ImageSignature), written before
    /// `latest` moves, so whoever follows `latest` finds the signature with the image.
    public var signer: SigningKey?

    public init(directory: String, signer: SigningKey? = nil) {
        self.directory = directory
        self.signer = signer
    }

    public func deliver(_ bytes: [UInt8], digest: String) throws -> String {
        let name = "\(digest).image"
        // Verified before it is written: no file here that `inspect` or `load` would refuse.
        try ImageFile.writeImage(bytes, to: "\(directory)/\(name)")
        if let signer {
            let signature = try signer.sign(bytes)
            do { try FileContents.writeAtomically(Array(ImageSignature.text(signature).utf8), to: "\(directory)/\(name).sig") } catch {
                throw SinkError(error.description)
            }
        }
        do { try FileSystem.replaceLink("\(directory)/latest", to: name) } catch { throw SinkError(error.description) }
        return "\(directory)/\(name)"
    }

    public func liveState() -> LiveState {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/latest") else { return .none }
        return .image(digest: target.hasSuffix(".image") ? String(target.dropLast(6)) : nil)
    }
}

public struct SinkError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

extension DatapathSink {
    /// The datapath's per-frontend counters in the Prometheus text format.
    public func countersExposition() -> String {
        guard let status = try? Datapath(pinDir: pinDir).status(links: []) else { return "" }
        let names = frontendNames.value.withLock { $0 }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        var out = "# HELP balancer_frontend_connects_total Connects (and unconnected sends) per frontend and outcome, counted by the datapath.\n"
        out += "# TYPE balancer_frontend_connects_total counter\n"
        for (id, counters) in status.counters.sorted(by: { $0.key < $1.key }) {
            let (frontend, owner) = names[id] ?? (id == 0 ? ("unknown port of a ClusterIP", "") : ("frontend \(id)", ""))
            for (outcome, value) in counters.outcomes {
                out += "balancer_frontend_connects_total{frontend=\"\(escape(frontend))\",owner=\"\(escape(owner))\",outcome=\"\(outcome)\"} \(value)\n"
            }
        }
        out += "# HELP balancer_decision_reasons_total Decisions that did not translate, or handed a connect on to the next rule, by reason (all frontends).\n"
        out += "# TYPE balancer_decision_reasons_total counter\n"
        for reason in DecisionReason.allCases {
            out += "balancer_decision_reasons_total{reason=\"\(reason)\"} \(status.reasons[reason] ?? 0)\n"
        }
        out += terminations.tally.exposition()
        return out
    }
}


/// Shared between a sink's copies (the scrape reads what the last delivery wrote).
final class FrontendNames: Sendable {
    let value = Mutex<[UInt32: (String, String)]>([:])
    /// Group id → owner label of the last whole image.
    let groups = Mutex<[UInt32: String]>([:])
}
