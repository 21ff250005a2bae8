import ArgumentParser
import Loader

struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach every datapath program to a cgroup, through bpf_links pinned in the pin dir.",
        discussion: """
        Loads the datapath object built into balancer, reusing the maps pinned under PIN-DIR/maps \
        (pinning them on first use; PIN-DIR is created on a bpffs, which is mounted on its parent \
        when absent). The links are pinned under PIN-DIR/links, so the programs stay attached when \
        no balancer process runs. Attaching again is a no-op (but for the scope below, which every \
        attach sets). The cgroup is always explicit.

        --host-netns-only translates only sockets of the network namespace balancer attach runs \
        in (the host's: run it there), leaving pods' sockets alone for a sidecar mesh that needs \
        the original ClusterIP (Istio), as Cilium's socketLB.hostNamespaceOnly. Pods then need \
        another service path (kube-proxy or the CNI's). Attach again without it to translate every \
        socket.
        """)

    @Option(help: "The cgroup (v2) directory to attach to.")
    var cgroup: String

    @OptionGroup var pinDir: PinDirOption

    @Flag(help: "Translate only sockets of this network namespace (the host's), not pods'.")
    var hostNetnsOnly = false

    @Option(help: ArgumentHelp("Translated sockets open at once that keep their entry (getpeername, UDP stickiness); default 131072.",
                               valueName: "n"))
    var maxTranslatedSockets: Int?

    func validate() throws {
        if let n = maxTranslatedSockets, !(1...(1 << 24)).contains(n) {
            throw ValidationError("--max-translated-sockets \(n): must be between 1 and 16777216")
        }
    }

    func run() throws {
        let r = try CommandError.wrapping {
            try Attachment.attach(cgroup: cgroup, pinDir: pinDir.path, hostNetnsOnly: hostNetnsOnly, translatedSockets: maxTranslatedSockets)
        }
        print("attached \(r.attached.count) programs to \(cgroup)" + (r.alreadyAttached.isEmpty ? "" : "; \(r.alreadyAttached.count) already attached")
              + (r.updated.isEmpty ? "" : "; \(r.updated.count) updated in place from another version (\(r.updated.joined(separator: " ")))"))
        if let want = maxTranslatedSockets, let have = r.reverseEntries, have != want {
            print("translated sockets kept: \(have), the size of the pinned map (an attach over existing pins keeps it; detach and remove PIN-DIR/maps/bl_reverse to resize)")
        }
        if let cookie = r.hostNetnsCookie {
            print("translating only sockets of this network namespace (netns cookie \(cookie)); other namespaces' sockets are left alone")
        }
        if let why = r.terminationUnavailable {
            print("socket termination unavailable: \(why)")
        } else if !r.iterators.isEmpty {
            print("socket termination ready: \(r.iterators.count) socket iterators pinned under \(pinDir.path)/links")
        }
    }
}
