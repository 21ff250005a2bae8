import CBalancerABI
import HostSystem
import MapImage

#if canImport(Glibc)
import Glibc
#endif

/// Which translated sockets a load terminates when their backend left the service
/// (`--terminate-sockets`). Connected UDP sockets by default: nothing else tells a DNS client
/// that its pod is gone. TCP only when asked: TCP notices a dead peer by itself, and cutting a
/// healthy connection to a backend that merely left the set is a choice an operator makes.
public enum TerminationMode: String, CaseIterable, Sendable {
    case udp, all, none

    var protocols: [TransportProtocol] {
        switch self {
        case .udp: [.udp]
        case .all: [.udp, .tcp]
        case .none: []
        }
    }
}

/// The socket iterators that terminate sockets (bpf/lib/terminate.h), by protocol: attached by
/// `balancer attach` as bpf_links pinned at `<pin dir>/links/iter-<program>`.
public enum TerminationIterator {
    static let programs: [TransportProtocol: String] = [.udp: "bl_terminate_udp", .tcp: "bl_terminate_tcp"]
    static let prefix = "iter-"

    public static func pin(pinDir: String, program: String) -> String { "\(pinDir)/links/\(prefix)\(program)" }
}

extension Datapath {
    /// What one termination pass did.
    public struct TerminationReport: Sendable {
        /// Sockets destroyed, by protocol.
        public var terminated: [TransportProtocol: Int] = [:]
        /// Sockets the iterator chose but the kernel refused to destroy.
        public var failed = 0
        /// Network namespaces walked.
        public var namespaces = 0
        /// Why some protocol was not handled (no iterator pinned: attached by an older version or
        /// on a kernel without bpf_sock_destroy); namespaces that could not be walked.
        public var notes: [String] = []
        public var seconds = 0.0

        public var total: Int { terminated.values.reduce(0, +) }

        /// "1 UDP, 2 TCP, 1 refused by the kernel"; "0" when nothing was chosen.
        public var counts: String {
            var parts: [String] = []
            for (proto, n) in terminated.sorted(by: { $0.key < $1.key }) where n > 0 { parts.append("\(n) \(proto)") }
            if failed > 0 { parts.append("\(failed) refused by the kernel") }
            return parts.isEmpty ? "0" : parts.joined(separator: ", ")
        }
    }

    /// Destroys the translated sockets whose backend is no longer a member of their service in
    /// the live image (terminate.h has the rules), in every network namespace used by a process
    /// in the cgroup `scope` or below. Run after a flip: the application's next call fails and its
    /// reconnect goes through the new image. Never throws: the image is live already, and what
    /// could not be done is in the report's notes.
    public func terminateStaleSockets(_ mode: TerminationMode, scope: String) -> TerminationReport {
        var report = TerminationReport()
        let t = Datapath.now()
        defer { report.seconds = Datapath.now() - t }
        var links: [(TransportProtocol, Int32)] = []
        defer { for (_, fd) in links { close(fd) } }
        for proto in mode.protocols {
            guard let program = TerminationIterator.programs[proto] else { continue }
            let pin = TerminationIterator.pin(pinDir: pinDir, program: program)
            let fd = openPinnedObject(pin)
            if fd < 0 {
                report.notes.append("\(proto) sockets not terminated: no iterator pinned at \(pin) (attach again with this version; "
                                    + "the kernel needs bpf_sock_destroy, Linux 6.5 or later)")
                continue
            }
            links.append((proto, fd))
        }
        guard !links.isEmpty else { return report }
        var seen = Set<String>()
        for pid in Datapath.processes(under: scope) {
            let path = "/proc/\(pid)/ns/net"
            guard let ns = FileSystem.linkTarget(path), seen.insert(ns).inserted else { continue }
            report.namespaces += 1
            for (proto, fd) in links {
                let output: [UInt8]
                do { output = try NetworkNamespace.readIterator(in: path, linkFD: fd) } catch {
                    // A process that ended since the listing took its namespace along.
                    if error.errno != .noSuchFileOrDirectory && error.errno != .noSuchProcess { report.notes.append(error.description) }
                    continue
                }
                for record in Datapath.terminatedRecords(output) {
                    if record.result == 0 { report.terminated[proto, default: 0] += 1 } else { report.failed += 1 }
                }
            }
        }
        return report
    }

    /// The iterator's output: whole bl_terminated records.
    static func terminatedRecords(_ bytes: [UInt8]) -> [bl_terminated] {
        let size = MemoryLayout<bl_terminated>.size
        return bytes.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count - raw.count % size, by: size).map { raw.loadUnaligned(fromByteOffset: $0, as: bl_terminated.self) }
        }
    }
}
