import Dispatch
import Loader
import Logging
import MapImage
import Synchronization

/// Socket termination for a watcher, off its sync loop. A pass walks every network namespace of
/// the cgroup (a thread enters each): milliseconds that a change waiting behind it should not pay.
/// Running it later is safe: a pass judges every socket against the image live when it runs, so a
/// backend that came back meanwhile keeps its sockets. Requests made while a pass is queued are
/// served by it; one made while a pass runs queues the next.
final class TerminationWorker: Sendable {
    private let queue = DispatchQueue(label: "balancer.terminate")
    private let queued = Atomic<Bool>(false)
    let tally = TerminationTally()
    /// Notes already logged (a missing iterator is said once, not at every change).
    private let noted = Mutex<Set<String>>([])

    func request(_ datapath: Datapath, mode: TerminationMode, scope: String) {
        guard mode != .none, !queued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in
            queued.store(false, ordering: .releasing)
            let report = datapath.terminateStaleSockets(mode, scope: scope)
            tally.add(report)
            let log = Logger(label: "balancer.watch")
            let fresh = noted.withLock { seen in report.notes.filter { seen.insert($0).inserted } }
            for note in fresh { log.warning("\(note)") }
            guard report.total > 0 || report.failed > 0 else { return }
            log.info("terminated \(report.counts) sockets on removed backends",
                     metadata: ["namespaces": "\(report.namespaces)", "seconds": "\(report.seconds)"])
        }
    }
}

/// Sockets terminated by a watcher, by protocol (balancer_terminated_sockets_total).
final class TerminationTally: Sendable {
    let counts = Mutex<(udp: Int, tcp: Int, failed: Int)>((0, 0, 0))

    func add(_ r: Datapath.TerminationReport) {
        counts.withLock { c in
            c.udp += r.terminated[.udp] ?? 0
            c.tcp += r.terminated[.tcp] ?? 0
            c.failed += r.failed
        }
    }

    func exposition() -> String {
        let c = counts.withLock { $0 }
        return "# HELP balancer_terminated_sockets_total Translated sockets destroyed after their backend left its service, by protocol.\n"
            + "# TYPE balancer_terminated_sockets_total counter\n"
            + "balancer_terminated_sockets_total{protocol=\"udp\"} \(c.udp)\n"
            + "balancer_terminated_sockets_total{protocol=\"tcp\"} \(c.tcp)\n"
            + "# HELP balancer_socket_termination_failures_total Sockets chosen for termination that the kernel refused to destroy.\n"
            + "# TYPE balancer_socket_termination_failures_total counter\n"
            + "balancer_socket_termination_failures_total \(c.failed)\n"
    }
}
