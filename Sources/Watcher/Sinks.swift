import FoundationEssentials
import Loader
import MapImage

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
