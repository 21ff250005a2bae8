import ArgumentParser
import FoundationEssentials
import HostSystem
import Loader
import Manifests
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM: the monitor stops between two polls.
let monitorStopRequested = Atomic<Bool>(false)

struct Monitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream the datapath's decisions as they happen: translate, reject, unreachable, fall-through, terminated.",
        discussion: """
        One line (or one JSON object) per decision of a connect() or an unconnected sendmsg() to a \
        service address, and per socket terminated on a removed backend: the address asked for, the \
        backend chosen, the rule that decided (Service, LocalRedirectPolicy, BalancingPolicy) and \
        why it refused or handed on, the process (pid, command), its cgroup, and the pod it belongs \
        to (from the kubelet's cgroup path; named with --pods). The datapath produces events only \
        while a monitor runs: one array lookup per decision otherwise. One monitor at a time: a \
        second one sees part of the events (it says so).
        """)

    @OptionGroup var pinDir: PinDirOption

    @OptionGroup var output: OutputOption

    @Option(help: "Stop after this many events.")
    var count: Int?

    @Option(help: ArgumentHelp("The live image: frontends and rule owners are named from it.", valueName: "IMAGE"))
    var image: String?

    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("Files or directories holding Pod objects (kubectl get pods -A -o yaml): a process in a pod's cgroup is named namespace/pod.", valueName: "PATH"))
    var pods: [String] = []

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let names = try image.map { (path: String) throws(CommandError) -> EventNames in EventNames(try loadImage(path)) } ?? EventNames()
        var podNames: [String: String] = [:]
        if !pods.isEmpty {
            let (snapshot, _) = try CommandError.wrapping { try InputLoader.load(paths: pods) }
            for p in snapshot.pods where !p.meta.uid.isEmpty { podNames[p.meta.uid] = "\(p.meta.namespace)/\(p.meta.name)" }
        }
        let monitor = try CommandError.wrapping { try EventMonitor(pinDir: pinDir.path) }
        if (try? monitor.otherListenerUntil()) != nil {
            printError("warning: another monitor is listening on \(pinDir.path): each event goes to one of them")
        }
        try CommandError.wrapping { try monitor.arm(seconds: 3) }
        defer { monitor.disarm() }
        // Events the ring could not hold are counted by the datapath: said, never silently lost.
        let lostAtStart = monitor.lostEvents()
        var lostSaid = lostAtStart
        func sayLost() {
            let lost = monitor.lostEvents()
            if lost > lostSaid {
                printError("monitor: \(lost - lostSaid) events lost (the ring buffer was full; \(lost - lostAtStart) since this monitor started)")
                lostSaid = lost
            }
        }
        defer { sayLost() }
        signal(SIGINT) { _ in monitorStopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in monitorStopRequested.store(true, ordering: .relaxed) }
        let cgroups = CgroupNames(root: Attachment.cgroup2Root())
        let clock = WallClock()
        var seen = 0
        var lastArm = EventMonitor.monotonicNow()
        while !monitorStopRequested.load(ordering: .relaxed) {
            let events = try CommandError.wrapping { try monitor.poll(timeoutMs: 200) }
            for e in events {
                let cgroup = e.cgroupID == 0 ? nil : cgroups.path(of: e.cgroupID)
                let podUID = cgroup.flatMap(CgroupNames.podUID)
                let line = EventLine(e, names: names, time: clock.iso8601(monotonicNs: e.timeNs), cgroup: cgroup,
                                     pod: podUID.map { podNames[$0] ?? "pod uid \($0)" })
                switch output.format {
                case .json, .yaml: try printStructured(line, format: output.format)
                case .text: printLine(line.text)
                }
                seen += 1
                if let count, seen >= count { return }
            }
            let now = EventMonitor.monotonicNow()
            if now - lastArm > 1_000_000_000 {
                try CommandError.wrapping { try monitor.arm(seconds: 3) }
                lastArm = now
                sayLost()
            }
        }
    }
}

/// Names for an event's ids, from the live image when one is given.
struct EventNames {
    var frontends: [UInt32: String] = [:]
    var owners: [UInt32: String] = [:]

    init() {}

    init(_ image: MapImage) {
        for f in image.contents.frontends { frontends[f.id] = f.key.description }
        for g in image.contents.metadata.groups where owners[g.owner] == nil { owners[g.owner] = g.ownerName }
        for s in image.contents.metadata.services where owners[s.id] == nil { owners[s.id] = s.qualifiedName }
    }
}

/// One event as printed: JSON fields, or one text line.
struct EventLine: Encodable {
    var time: String
    var kind: String
    var proto: String
    var call: String?
    var destination: String
    var backend: String?
    var origin: String?
    var owner: String?
    var ownerID: UInt32?
    var frontend: String?
    var frontendID: UInt32
    var backendID: UInt32?
    var reason: String?
    var fellThrough: Bool
    var rateLimited: Bool
    var fromBackend: Bool
    var pid: UInt32?
    var command: String?
    var cgroupID: UInt64?
    var cgroup: String?
    var pod: String?
    var netnsCookie: UInt64?
    var socketCookie: UInt64

    enum CodingKeys: String, CodingKey {
        case time, kind, call, destination, backend, origin, owner, frontend, reason, fellThrough, rateLimited, fromBackend, pid, command, cgroup, pod
        case proto = "protocol", ownerID = "ownerId", frontendID = "frontendId", backendID = "backendId", cgroupID = "cgroupId"
        case netnsCookie, socketCookie
    }

    init(_ e: DecisionEvent, names: EventNames, time: String, cgroup: String?, pod: String?) {
        self.time = time
        kind = e.kind.description
        proto = e.proto.description
        call = e.kind == .terminated ? nil : e.sendmsg ? "sendmsg" : "connect"
        destination = e.destination.description
        backend = e.backend?.description
        origin = e.origin.map(EventLine.originName)
        ownerID = e.origin == nil ? nil : e.ownerID
        owner = e.origin == nil ? nil : names.owners[e.ownerID]
        frontendID = e.frontendID
        frontend = e.frontendID == 0 ? nil : names.frontends[e.frontendID]
        backendID = e.backend == nil ? nil : e.backendID
        reason = e.reason?.description
        fellThrough = e.fellThrough
        rateLimited = e.rateLimited
        fromBackend = e.fromBackend
        let process = e.kind != .terminated
        pid = process ? e.pid : nil
        command = process ? e.command : nil
        cgroupID = process ? e.cgroupID : nil
        self.cgroup = cgroup
        self.pod = pod
        netnsCookie = process ? e.netnsCookie : nil
        socketCookie = e.socketCookie
    }

    static func originName(_ o: RuleOrigin) -> String {
        switch o {
        case .service: "Service"
        case .localRedirect: "LocalRedirectPolicy"
        case .balancing: "BalancingPolicy"
        }
    }

    var text: String {
        var s = "\(time) \(kind) \(proto) \(destination)"
        if let backend { s += " -> \(backend)" }
        if let origin { s += " by \(origin) \(owner ?? "id \(ownerID ?? 0)")" }
        if let reason { s += " (\(reason.replacingOccurrences(of: "_", with: " ")))" }
        var handed: [String] = []
        if rateLimited { handed.append("rate limit") }
        if fromBackend { handed.append("from a backend") }
        if fellThrough { s += handed.isEmpty ? " after a fall-through" : " after a fall-through (\(handed.joined(separator: ", ")))" }
        if let frontend { s += " [\(frontend)]" }
        if let pid { s += " pid \(pid) \(command ?? "")" }
        if let call, call == "sendmsg" { s += " sendmsg" }
        if let pod { s += " pod \(pod)" } else if let cgroup { s += " cgroup \(cgroup)" }
        return s
    }
}

/// Converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall-clock time.
struct WallClock {
    let offsetNs: Int64

    init() {
        offsetNs = WallTime.nowNanoseconds() - Int64(EventMonitor.monotonicNow())
    }

    func iso8601(monotonicNs: UInt64) -> String {
        WallTime.rfc3339(nanoseconds: Int64(monotonicNs) + offsetNs, digits: 6)
    }
}
