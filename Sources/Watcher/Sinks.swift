import FoundationEssentials
import Loader
import MapImage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a watcher's images go.
public protocol ImageSink: Sendable {
    /// Delivers one image; returns a short description of where it went.
    func deliver(_ bytes: [UInt8], digest: String) throws -> String
}

/// Loads each image into the pinned datapath (as `balancer load` does).
public struct DatapathSink: ImageSink {
    public var pinDir: String
    public var node: String?
    public var hostMode: HostMode
    public var netnsScope: String?
    /// Frontend id → (frontend, first rule's owner) of the live image, for the counters'
    /// labels; filled only when `nameFrontends`.
    let frontendNames = FrontendNames()
    public var nameFrontends = false

    public init(pinDir: String, node: String?, hostMode: HostMode, netnsScope: String?) {
        self.pinDir = pinDir
        self.node = node
        self.hostMode = hostMode
        self.netnsScope = netnsScope
    }

    public func deliver(_ bytes: [UInt8], digest: String) throws -> String {
        let datapath = try Datapath(pinDir: pinDir)
        let report = try datapath.load(imageBytes: bytes, node: node, hostMode: hostMode)
        if node != nil, let scope = netnsScope ?? Attachment.cgroup2Root() {
            _ = try datapath.syncSkips(report.skipTargets, scope: scope)
        }
        if nameFrontends, let image = try? MapImage(bytes: bytes) {
            let resolver = Resolver(image.contents)
            var names: [UInt32: (String, String)] = [:]
            for f in image.contents.frontends {
                names[f.id] = (f.key.description, f.rules.first.map { resolver.ownerName($0) } ?? "")
            }
            frontendNames.value.withLock { $0 = names }
        }
        return "generation \(report.generation)\(report.unchanged ? " (unchanged)" : "")"
    }
}

/// Writes each image to a directory for a pipeline: `<sha256>.image` (content-addressed, written
/// atomically) and a `latest` symlink swapped atomically onto it.
public struct DirectorySink: ImageSink {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func deliver(_ bytes: [UInt8], digest: String) throws -> String {
        let name = "\(digest).image"
        try ImageFile.writeAtomically(bytes, to: "\(directory)/\(name)")
        let temporary = "\(directory)/.latest.\(getpid())"
        unlink(temporary)
        guard symlink(name, temporary) == 0 else { throw SinkError("symlink \(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, "\(directory)/latest") == 0 else {
            let e = errno
            unlink(temporary)
            throw SinkError("rename to \(directory)/latest: \(String(cString: strerror(e)))")
        }
        return "\(directory)/\(name)"
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
        let outcomes = ["translated", "rejected", "unreachable", "fallthrough"]
        for (id, values) in status.counters.sorted(by: { $0.key < $1.key }) {
            let (frontend, owner) = names[id] ?? (id == 0 ? ("unknown port of a ClusterIP", "") : ("frontend \(id)", ""))
            for (i, outcome) in outcomes.enumerated() where i < values.count {
                out += "balancer_frontend_connects_total{frontend=\"\(escape(frontend))\",owner=\"\(escape(owner))\",outcome=\"\(outcome)\"} \(values[i])\n"
            }
        }
        return out
    }
}

/// Shared between a sink's copies (the scrape reads what the last delivery wrote).
final class FrontendNames: Sendable {
    let value = Mutex<[UInt32: (String, String)]>([:])
}
